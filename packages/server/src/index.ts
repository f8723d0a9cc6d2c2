export { createLongPollHandler, type LongPollFetchHandler, type LongPollHandlerOptions } from './adapters/fetch';
export { createLongPollNodeHandler, type LongPollNodeHandler, type LongPollNodeHandlerOptions } from './adapters/node';
export type { LongPollOptions } from './core/options';
export { createLongPollCore, type CoreRequest, type CoreResponse, type LongPollCore } from './core/core';
