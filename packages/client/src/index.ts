export { longPollLink, type LongPollLinkOptions } from './longPollLink';
export { LongPollCursorError, isLongPollCursorError } from './errors';
export type { RetryOptions } from './internals/backoff';
