export { longPollLink, type LongPollLinkOptions, type ShareAcrossTabsOptions } from './longPollLink';
export { LongPollCursorError, isLongPollCursorError } from './errors';
export type { RetryOptions } from './internals/backoff';
export type {
  PollAnsweredInfo,
  PollFailedInfo,
  PollFailureReason,
  PollOutcomeInfo,
  PollStaleInfo,
} from './internals/outcomes';
