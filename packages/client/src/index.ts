export { longPollLink, type LongPollLinkOptions } from './longPollLink';
export { LongPollResumeError, isLongPollResumeError } from './errors';
export type { RetryOptions } from './internals/backoff';
