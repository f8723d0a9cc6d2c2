/**
 * Wire types of protocol v1. `docs/protocol.md` is the normative description;
 * these types are its machine-checked half.
 */

export const PROTOCOL_VERSION = 1 as const;
export type ProtocolVersion = typeof PROTOCOL_VERSION;

/**
 * The revision of version 1 this package speaks (docs/protocol.md, "Versions"). A client
 * sends it as `minor`; a server uses the fields and values a revision adds only with
 * clients that sent at least that revision, and a server that predates them ignores
 * the field, so every pairing of old and new works. 1: bookmarks, `via`/`prev`, and
 * the `no-affinity` cursor error.
 */
export const PROTOCOL_MINOR = 1 as const;

/**
 * A subscription's position, minted by the server and echoed by the client.
 * It is the only thing a server needs to continue a subscription, so any
 * instance can answer any poll.
 */
export interface Cursor {
  /** The server-side run that numbered the events the client holds. */
  run: string;
  /** Highest sequence number of `run` the client has received. Acknowledges every event up to it. */
  seq: number;
  /** Id of the last `tracked()` event received, carried across runs. */
  lastEventId?: string;
  /** The client saw `run` end with a retryable error and asks for a new run. */
  restart?: true;
}

export interface PollSubscription {
  /** Chosen by the client, unique among the client's subscriptions, stable for a subscription's life. */
  key: string;
  /** Dotted procedure path, as in `Operation.path`. */
  path: string;
  /** The input, serialized with the router's input transformer. Omitted when undefined. */
  input?: unknown;
  /** Absent until the server has answered for this subscription. */
  cursor?: Cursor;
}

export interface PollRequest {
  v: ProtocolVersion;
  /** Random id of one client (one link instance); scopes `key`. */
  client: string;
  /** Increases with every poll a client sends; older polls are superseded. */
  poll: number;
  /** The longest hold the client will wait for, in ms. The server may hold less. */
  hold?: number;
  connectionParams?: Record<string, string> | null;
  /** Every active subscription of the client. A subscription left out is cancelled. */
  subscriptions: PollSubscription[];
  /** The revision of version 1 the client speaks; absent means 0. */
  minor?: number;
  /** The `via` of the last answer the client got: the instance that served its previous poll. */
  prev?: string;
}

/** One event, as the procedure yielded it. */
export interface WireEvent {
  /** 1, 2, 3, … within a run. */
  seq: number;
  /** The `tracked()` id, if the procedure yielded a tracked event. */
  id?: string;
  /** The yielded value (for tracked events the inner data), serialized with the output transformer. */
  data?: unknown;
  /**
   * A position-only event (revision 1): it moves the cursor's `lastEventId` to `id` and
   * is never delivered to the application. It has no `data`.
   */
  bookmark?: true;
}

/**
 * Why a subscription could not be continued from its cursor:
 * - `resume-lost`: the server lost the run and the procedure is untracked, so it cannot be resumed;
 * - `gone`: the cursor is older than the event log's retention;
 * - `reset`: the cursor is ahead of the event log (the log was flushed or restored from an older copy);
 * - `no-affinity` (revision 1): as `resume-lost`, and the reason is known: the load balancer sent
 *   the client's poll to another instance than the one running the untracked procedure.
 */
export type CursorErrorReason = 'resume-lost' | 'gone' | 'reset' | 'no-affinity';
export const CURSOR_ERROR_REASONS: readonly CursorErrorReason[] = ['resume-lost', 'gone', 'reset', 'no-affinity'];

export type WireEnd =
  | { type: 'stopped' }
  | {
      type: 'error';
      /** The tRPC error shape (errorFormatter applied), serialized with the output transformer. */
      error: unknown;
      /** Set when the error is the transport's own verdict on a cursor. */
      reason?: CursorErrorReason;
      /**
       * Set when the server refused to start the run for lack of capacity (a budget): the
       * subscription is worth trying again, no sooner than this many ms from now.
       */
      retryAfterMs?: number;
    };

export interface SubscriptionResult {
  /** The run now serving the subscription. Absent when the subscription failed before a run started. */
  run?: string;
  /** Events not yet acknowledged, in order. */
  events?: WireEvent[];
  /** The run has ended; every event it produced is in `events`. */
  end?: WireEnd;
}

export interface PollResponse {
  v: ProtocolVersion;
  /** Results by subscription key. A subscription with nothing new is left out. */
  results: Record<string, SubscriptionResult>;
  /** The batch limit cut this response short: poll again at once. */
  more?: true;
  /**
   * The poll was stale: the server has seen a poll of this client with a number at least as
   * high, so it changed nothing. A client whose polls keep coming back stale has lost its
   * numbering (its client id is used elsewhere) and should continue under a fresh client id.
   */
  stale?: true;
  /**
   * The instance that answered (revision 1), for the client to send back as `prev`: an
   * instance that sees another's name there knows the balancer moved the client.
   */
  via?: string;
}

/** A poll-wide failure (bad request, context error, overload). */
export interface PollErrorResponse {
  v: ProtocolVersion;
  /** The tRPC error shape, serialized with the output transformer. */
  error: unknown;
}
