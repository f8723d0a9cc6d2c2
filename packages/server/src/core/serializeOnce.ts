/*
 * Serialize once (docs/protocol.md §5, "Fan-out"): when many runs yield the
 * same object — an event log's entry, an emitter's event — in the same
 * event-loop turn, its JSON is made once and shared by every run's buffer
 * (100 subscribers of one topic: one superjson pass, not 100).
 *
 * The rule that keeps it safe: a yielded object is taken as it is at its
 * first serialization in the turn. Runs that yield it later in the same turn
 * share that JSON; from the next turn on it is serialized afresh, so a value
 * mutated and yielded again later is seen as it is then. Values that are
 * equal but not the same object are serialized each on its own.
 */

import { afterTurn } from '@trpc-longpoll/protocol';

/** A value's JSON as it goes on the wire (`undefined` for a value JSON leaves out). */
export type JsonOf = (value: unknown) => string | undefined;


export function serializeOnce(serialize: (value: unknown) => unknown): JsonOf {
  let cache: WeakMap<object, string | undefined> | null = null;
  return (value) => {
    if (typeof value !== 'object' || value === null) return JSON.stringify(serialize(value));
    if (cache?.has(value)) return cache.get(value);
    const json = JSON.stringify(serialize(value));
    if (!cache) {
      cache = new WeakMap();
      afterTurn(() => {
        cache = null;
      });
    }
    cache.set(value, json);
    return json;
  };
}
