import type { Cursor, SubscriptionResult } from '@trpc-longpoll/protocol';
import type { WireFailure } from '../failures';

/*
 * What the tabs sharing one poll say to each other over their
 * BroadcastChannel. Everything here survives structured clone: results stay
 * as the server sent them, so each tab decodes them with its own transformer.
 */

/** A subscription as its tab announces it to the leader. */
export interface SharedSub {
  /** Unique within its tab; on the wire it becomes `${tab}.${key}`. */
  key: string;
  path: string;
  /** Already serialized with the input transformer. */
  input?: unknown;
  cursor?: Cursor;
  healthy: boolean;
}

export type TabMessage =
  /** Follower → leader: one more subscription. */
  | { type: 'subscribe'; tab: string; sub: SharedSub }
  /** Follower → leader: the subscription ended or was unsubscribed. */
  | { type: 'unsubscribe'; tab: string; key: string }
  /** A tab's whole set, when it joins and when a new leader asks; `client` and `lastPoll` are what it knows of the shared poll. */
  | { type: 'announce'; tab: string; subs: SharedSub[]; client?: string; lastPoll: number }
  /** A new leader asks every tab to announce its set. */
  | { type: 'elected'; tab: string }
  /** The tab is closing: its subscriptions go. */
  | { type: 'leave'; tab: string }
  /** Leader → all: a poll went out; `roster` lists the tabs it carried. */
  | { type: 'poll'; tab: string; client: string; poll: number; roster: string[] }
  /** Leader → one tab: a poll that carried its subscriptions `keys` was answered; results by the tab's keys. */
  | { type: 'answer'; to: string; keys: string[]; results: Record<string, SubscriptionResult> }
  /** Leader → one tab: the poll that carried `keys` failed. */
  | { type: 'failure'; to: string; keys: string[]; failure: WireFailure };

/** The part of the Web Locks API the leader election uses; `navigator.locks` fits. */
export interface LockManagerLike {
  request(name: string, options: { signal?: AbortSignal }, callback: (lock: unknown) => Promise<void>): Promise<unknown>;
}

export function wireKey(tab: string, key: string): string {
  return `${tab}.${key}`;
}

export function splitWireKey(wire: string): [tab: string, key: string] {
  const dot = wire.indexOf('.');
  return [wire.slice(0, dot), wire.slice(dot + 1)];
}
