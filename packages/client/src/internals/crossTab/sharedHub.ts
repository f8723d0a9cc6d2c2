import type { Operation } from '@trpc/client';
import { randomId, waitUntil } from '@trpc-longpoll/protocol';
import { dispatch } from '../dispatch';
import { errorFromWire } from '../failures';
import type { SubscriptionHub } from '../hub';
import type { PollerOptions } from '../options';
import { Poller, type PollEntry, type PollOutcome } from '../poller';
import { Subscription, type SubscriptionObserver } from '../subscription';
import { splitWireKey, wireKey, type LockManagerLike, type SharedSub, type TabMessage } from './messages';

export interface SharedHubOptions extends PollerOptions {
  /** Tabs with the same name share one poll. */
  name: string;
  locks: LockManagerLike;
  /** Aborting it is this tab closing (tests; browsers use `pagehide`). */
  closeSignal?: AbortSignal;
  /** How long a new leader waits for the tabs it knows of to announce their subscriptions. Default 1 000 ms. */
  handoverMs?: number;
}

/** How long a tab that has heard of no other waits, as a new leader, for one that knows the client id. */
const DISCOVERY_MS = 50;

/** A poll number above any the previous leaders used, also when they are gone and could not tell. */
function nextSharedPoll(last: number): number {
  return Math.max(last + 1, Date.now() * 1000);
}

type Role = 'idle' | 'follower' | 'electing' | 'leader';

/**
 * One tab's part in a poll that the tabs of a browser share (docs/protocol.md
 * §8, "Sharing one poll across tabs"). The tab holding the Web Lock leads: it
 * runs the one HTTP poll loop, for its own subscriptions and the ones the
 * other tabs announce over the BroadcastChannel, and sends each tab the raw
 * results for its subscriptions. Every tab turns results into envelopes
 * itself (`Subscription`), so the envelopes are the ones a poll of its own
 * would give. All tabs use one client id and ever higher poll numbers, so
 * when the leader goes, the next one continues the server's session.
 */
export class SharedHub implements SubscriptionHub {
  private readonly tab = randomId(6);
  private readonly subs = new Map<string, Subscription>();
  private nextKey = 0;
  private role: Role = 'idle';
  private channel: BroadcastChannel | null = null;
  private poller: Poller | null = null;
  /** Resolving it gives up the lead (and the lock). */
  private release: (() => void) | null = null;
  private lockAbort: AbortController | null = null;
  /** Resolving it releases this tab's own lock, whose release tells the leader the tab is gone. */
  private releaseTabLock: (() => void) | null = null;
  private tabLockHeld = false;
  /** Leader or electing: waits on the other tabs' own locks; aborting it stops watching. */
  private watchAbort: AbortController | null = null;
  private readonly watched = new Set<string>();
  private left = false;

  /** What this tab knows of the shared poll. */
  private client: string | undefined;
  private lastPoll = 0;
  private leader: string | undefined;
  private roster: string[] = [];

  /** While electing: the other tabs' subscriptions by wire key, and which tabs announced. */
  private pending = new Map<string, SharedSub>();
  private announced = new Set<string>();
  private announcedChanged: (() => void) | null = null;

  constructor(private readonly opts: SharedHubOptions) {}

  add(op: Operation, observer: SubscriptionObserver): () => void {
    this.join();
    const key = (this.nextKey++).toString(36);
    const input = op.input === undefined ? undefined : this.opts.transformer.input.serialize(op.input);
    const drop = () => {
      if (!this.subs.delete(key)) return;
      if (this.role === 'leader') this.poller?.remove(wireKey(this.tab, key));
      else if (this.role === 'follower') this.post({ type: 'unsubscribe', tab: this.tab, key });
    };
    const sub = new Subscription(key, op.path, input, observer, this.opts.transformer, drop);
    this.subs.set(key, sub);
    if (this.role === 'leader') this.poller?.add({ key: wireKey(this.tab, key), path: op.path, input });
    else if (this.role === 'follower') this.post({ type: 'subscribe', tab: this.tab, sub: describe(sub) });
    return () => {
      sub.close();
      drop();
    };
  }

  /** Opens the channel and queues for the lead, on the first subscription. */
  private join(): void {
    if (this.role !== 'idle' || this.left) return;
    this.role = 'follower';
    this.channel = new BroadcastChannel(this.opts.name);
    this.channel.onmessage = (event: MessageEvent<TabMessage>) => this.receive(event.data);
    this.opts.closeSignal?.addEventListener('abort', () => this.leave(), { once: true });
    if (typeof addEventListener === 'function' && typeof removeEventListener === 'function') {
      // Saying goodbye spares the others a wait; a tab that cannot (crash, discard) is noticed by its lock.
      addEventListener('pagehide', this.onPageHide);
    }
    this.lockAbort = new AbortController();
    const { signal } = this.lockAbort;
    // Held for the tab's life: a tab that dies without `pagehide` (crash, discard) releases it all the same.
    this.opts.locks
      .request(tabLockName(this.opts.name, this.tab), { signal }, () => {
        this.tabLockHeld = true;
        // A leader already running learns this tab's set now (one being elected asks anyway).
        this.announce();
        return new Promise<void>((release) => (this.releaseTabLock = release));
      })
      .catch(() => {
        // Aborted by `leave()` while queued.
      });
    this.opts.locks
      .request(this.opts.name, { signal }, () => this.lead())
      .catch(() => {
        // Aborted by `leave()` while queued.
      });
  }

  private readonly onPageHide = (event: Event) => {
    // A page kept in the back/forward cache may come back; it then joins again and announces its set.
    this.leave();
    if ((event as PageTransitionEvent).persisted) addEventListener('pageshow', this.onPageShow, { once: true });
  };

  private readonly onPageShow = () => {
    this.left = false;
    this.role = 'idle';
    if (this.subs.size > 0) this.join();
  };

  private leave(): void {
    if (this.left || this.role === 'idle') return;
    this.left = true;
    this.post({ type: 'leave', tab: this.tab });
    this.poller?.stop();
    this.poller = null;
    this.release?.();
    this.release = null;
    this.watchAbort?.abort();
    this.watchAbort = null;
    this.watched.clear();
    this.releaseTabLock?.();
    this.releaseTabLock = null;
    this.tabLockHeld = false;
    this.lockAbort?.abort();
    this.channel?.close();
    this.channel = null;
    if (typeof removeEventListener === 'function') removeEventListener('pagehide', this.onPageHide);
  }

  private post(message: TabMessage): void {
    this.channel?.postMessage(message);
  }

  private announce(): void {
    // Before its own lock is held, the leader could take the tab for gone; the lock's grant announces.
    if (!this.tabLockHeld) return;
    this.post({
      type: 'announce',
      tab: this.tab,
      subs: [...this.subs.values()].map(describe),
      ...(this.client ? { client: this.client } : {}),
      lastPoll: this.lastPoll,
    });
  }

  /** Runs while this tab holds the lock; the returned promise settles when it stops leading. */
  private lead(): Promise<void> {
    if (this.left) return Promise.resolve();
    return new Promise<void>((release) => {
      this.release = release;
      void this.takeOver();
    });
  }

  private async takeOver(): Promise<void> {
    const previous = this.leader;
    this.role = 'electing';
    this.leader = this.tab;
    this.pending = new Map();
    this.announced = new Set();
    this.watchAbort = new AbortController();
    this.post({ type: 'elected', tab: this.tab });
    // Polling before every tab has announced would leave their subscriptions out, which cancels them.
    const expected = this.roster.filter((tab) => tab !== previous && tab !== this.tab);
    const heardFromAll = () => this.left || (expected.length > 0 && expected.every((tab) => this.announced.has(tab)));
    await waitUntil({
      ms: expected.length > 0 ? (this.opts.handoverMs ?? 1_000) : this.client ? 0 : DISCOVERY_MS,
      register: (wake) => {
        this.announcedChanged = () => {
          if (heardFromAll()) wake();
        };
        this.announcedChanged();
        return () => {
          this.announcedChanged = null;
        };
      },
    });
    if (!this.left) this.startPolling();
  }

  private startPolling(): void {
    this.role = 'leader';
    const poller = new Poller(
      {
        ...this.opts,
        client: this.client ?? randomId(),
        nextPoll: nextSharedPoll,
        // The poller may replace a client id that someone else has taken over; the tabs learn the new one here.
        onPoll: (poll, client) => {
          this.lastPoll = poll;
          this.client = client;
          this.post({ type: 'poll', tab: this.tab, client, poll, roster: this.carriedTabs(poller) });
        },
        deliver: (outcome, entries) => this.deliver(outcome, entries),
      },
      this.lastPoll,
    );
    this.client = poller.client;
    this.poller = poller;
    for (const sub of this.subs.values()) poller.add({ ...describe(sub), key: wireKey(this.tab, sub.key) });
    for (const [wire, sub] of this.pending) poller.add({ ...sub, key: wire });
    this.pending.clear();
  }

  private carriedTabs(poller: Poller): string[] {
    const tabs = new Set([this.tab]);
    for (const wire of poller.keys()) tabs.add(splitWireKey(wire)[0]);
    return [...tabs];
  }

  /** Leader: the outcome of a poll, to this tab's subscriptions and, raw, to the other tabs. */
  private deliver(outcome: PollOutcome, entries: PollEntry[]): void {
    const byTab = new Map<string, Array<[key: string, wire: string]>>();
    for (const entry of entries) {
      const [tab, key] = splitWireKey(entry.key);
      let keys = byTab.get(tab);
      if (!keys) byTab.set(tab, (keys = []));
      keys.push([key, entry.key]);
    }
    for (const [tab, keys] of byTab) {
      if (tab === this.tab) {
        dispatch(outcome, keys, this.subs);
      } else if (outcome.kind === 'answer') {
        const results: Record<string, (typeof outcome.results)[string]> = {};
        for (const [key, wire] of keys) {
          const result = outcome.results[wire];
          if (result) results[key] = result;
        }
        this.post({ type: 'answer', to: tab, keys: keys.map(([key]) => key), results });
      } else {
        this.post({ type: 'failure', to: tab, keys: keys.map(([key]) => key), failure: outcome.wire });
      }
    }
  }

  private receive(message: TabMessage): void {
    if (this.left) return;
    switch (message.type) {
      case 'subscribe':
        this.adopt(message.tab, message.sub);
        return;
      case 'unsubscribe':
        this.drop(wireKey(message.tab, message.key));
        return;
      case 'announce': {
        if (message.client && !this.client) this.client = message.client;
        this.lastPoll = Math.max(this.lastPoll, message.lastPoll);
        if (this.role !== 'leader' && this.role !== 'electing') return;
        // The announcement is the tab's whole set: anything else of it is stale.
        const keys = new Set(message.subs.map((sub) => wireKey(message.tab, sub.key)));
        for (const wire of this.keysOf(message.tab)) if (!keys.has(wire)) this.drop(wire);
        for (const sub of message.subs) this.adopt(message.tab, sub);
        this.watch(message.tab);
        this.announced.add(message.tab);
        this.announcedChanged?.();
        return;
      }
      case 'elected':
        this.leader = message.tab;
        this.announce();
        return;
      case 'leave':
        this.gone(message.tab);
        return;
      case 'poll':
        // A late message of the previous leader's; this tab knows better now.
        if (this.role === 'leader' || this.role === 'electing') return;
        this.leader = message.tab;
        this.client = message.client;
        this.lastPoll = Math.max(this.lastPoll, message.poll);
        this.roster = message.roster;
        return;
      case 'answer':
        if (message.to !== this.tab) return;
        dispatch({ kind: 'answer', results: message.results }, message.keys.map((key) => [key, key]), this.subs);
        return;
      case 'failure': {
        if (message.to !== this.tab) return;
        const error = errorFromWire(this.opts.transformer, message.failure);
        const outcome: PollOutcome =
          message.failure.kind === 'transient'
            ? { kind: 'transient', error, wire: message.failure }
            : { kind: 'fatal', error, wire: message.failure };
        dispatch(outcome, message.keys.map((key) => [key, key]), this.subs);
      }
    }
  }

  /** A tab left or died: its subscriptions go from the next poll, and no new leader waits for it. */
  private gone(tab: string): void {
    this.roster = this.roster.filter((other) => other !== tab);
    for (const wire of this.keysOf(tab)) this.drop(wire);
    this.announced.add(tab);
    this.announcedChanged?.();
  }

  /** Leader or electing: learns when `tab` is gone, by waiting for the lock it holds while it lives. */
  private watch(tab: string): void {
    const signal = this.watchAbort?.signal;
    if (!signal || this.watched.has(tab)) return;
    this.watched.add(tab);
    this.opts.locks
      .request(tabLockName(this.opts.name, tab), { signal }, async () => {
        this.watched.delete(tab);
        if (!signal.aborted) this.gone(tab);
      })
      .catch(() => {
        // This tab stopped leading.
      });
  }

  /** Leader or electing: carries another tab's subscription, keeping the cursor this tab already has for it. */
  private adopt(tab: string, sub: SharedSub): void {
    const wire = wireKey(tab, sub.key);
    if (this.role === 'leader') {
      if (!this.poller?.has(wire)) this.poller?.add({ ...sub, key: wire });
    } else if (this.role === 'electing') {
      this.pending.set(wire, sub);
    }
  }

  private drop(wire: string): void {
    if (this.role === 'leader') this.poller?.remove(wire);
    else if (this.role === 'electing') this.pending.delete(wire);
  }

  private keysOf(tab: string): string[] {
    const keys = this.role === 'leader' ? (this.poller?.keys() ?? []) : [...this.pending.keys()];
    return keys.filter((wire) => splitWireKey(wire)[0] === tab);
  }
}

function tabLockName(name: string, tab: string): string {
  return `${name}:tab:${tab}`;
}

function describe(sub: Subscription): SharedSub {
  const shared: SharedSub = { key: sub.key, path: sub.path, healthy: sub.healthy };
  if (sub.input !== undefined) shared.input = sub.input;
  if (sub.cursor) shared.cursor = sub.cursor;
  return shared;
}
