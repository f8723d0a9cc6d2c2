export { createLongPollHandler, type LongPollFetchHandler, type LongPollHandlerOptions } from './adapters/fetch';
export { createLongPollNodeHandler, type LongPollNodeHandler, type LongPollNodeHandlerOptions } from './adapters/node';
export type { LongPollOptions } from './core/options';
export type { LongPollTelemetry, TelemetryMeter, TelemetryTracer } from './core/telemetry';
export {
  createLongPollCore,
  type BudgetUse,
  type CoreResponse,
  type HttpRequest,
  type LongPollCore,
  type LongPollCounters,
  type LongPollStats,
  type PollBody,
  type PollOutcome,
  type RefusalReason,
} from './core/pipeline';
export type { ClusterChannel, EventLog, EventLogSubscribeOptions, EventLogTopics, TopicName } from './log/types';
export { bookmark, claimBookmarks, isBookmark, markBookmarks, takesBookmarks, type BookmarkClaim, type BookmarkData, type BookmarkHooks } from './log/bookmarks';
export { EventLogGoneError, EventLogResetError, isEventLogCursorError, type EventLogCursorReason } from './log/errors';
export { createMemoryEventLog, type MemoryEventLogOptions } from './log/memory';
export { newEpoch } from './log/epoch';
