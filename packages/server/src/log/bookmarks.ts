import { tracked, type TrackedEnvelope } from '@trpc/server';

/**
 * Bookmarks: position-only events, as Kubernetes watch has. A bookmark moves
 * the client's `lastEventId` and never reaches the application. Only a
 * long-poll run whose client said it takes them (protocol §3, `minor`) marks
 * its procedure's signal; under tRPC's own SSE and WebSocket transports the
 * signal is unmarked, so event logs yield nothing extra there.
 *
 * The marks live on the signal under global symbols, so two copies of this
 * package (a log built against another version) still understand each other.
 */
const DATA = Symbol.for('@trpc-longpoll/bookmark');
const CLAIM = Symbol.for('@trpc-longpoll/bookmarks');

/** What a bookmark carries as its data: nothing but its brand. */
export interface BookmarkData {
  readonly [DATA]: true;
}

const bookmarkData: BookmarkData = Object.freeze({ [DATA]: true as const });

/**
 * What the server hangs on the signal of a run that takes bookmarks. `claim`
 * is called when a source promises a start position, `settle` once it is out
 * (yielded, or passed over by the procedure).
 */
export interface BookmarkHooks {
  claim(): void;
  settle(): void;
}

/** A source's promise of a start position, made with {@link claimBookmarks}. */
export interface BookmarkClaim {
  /**
   * The start position has been yielded (call it when the generator resumes
   * after yielding it) or there is none to give: the server stops waiting for
   * it before it announces the subscription.
   */
  settle(): void;
}

/** A position-only event for `id`. Yield it only where {@link claimBookmarks} returned a claim. */
export function bookmark(id: string): TrackedEnvelope<never> {
  return tracked(id, bookmarkData) as unknown as TrackedEnvelope<never>;
}

/** Whether a yielded value (or a tracked envelope's data) is a bookmark; procedures that filter events pass these on. */
export function isBookmark(value: unknown): boolean {
  if (Array.isArray(value)) value = value[1];
  return typeof value === 'object' && value !== null && (value as Partial<BookmarkData>)[DATA] === true;
}

/**
 * For event logs and custom procedures: called with the procedure's `signal`
 * before the first `await`, returns a claim when the long-poll transport
 * serving it takes bookmarks, and `null` anywhere else (tRPC's SSE and
 * WebSocket transports, a direct call). With a claim, yield
 * `bookmark(position)` for where a subscription without `lastEventId` starts,
 * then call `claim.settle()`; the server holds the subscription's
 * announcement until then (at most two seconds), so the client has a
 * position from the moment it is told the subscription started.
 */
export function claimBookmarks(signal: AbortSignal | undefined): BookmarkClaim | null {
  const hooks = (signal as { [CLAIM]?: BookmarkHooks } | undefined)?.[CLAIM];
  if (!hooks) return null;
  hooks.claim();
  return { settle: () => hooks.settle() };
}

/** Whether bookmarks may be yielded under this signal, without claiming anything (for periodic bookmarks). */
export function takesBookmarks(signal: AbortSignal | undefined): boolean {
  return (signal as { [CLAIM]?: BookmarkHooks } | undefined)?.[CLAIM] !== undefined;
}

/**
 * Transport side: marks a run's signal as taking bookmarks (the long-poll core
 * does it for revision-1 clients). Exported for other transports and for
 * event-log tests that play the transport.
 */
export function markBookmarks(signal: AbortSignal, hooks: BookmarkHooks): void {
  Object.defineProperty(signal, CLAIM, { value: hooks, enumerable: false });
}
