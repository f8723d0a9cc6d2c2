export * from './types';
export * from './errors';
export * from './validate';

/** Default and ceiling of the hold, in ms: under API Gateway's 29 s and nginx/ALB's 60 s. */
export const DEFAULT_HOLD_MS = 20_000;
export { afterTurn, randomId, timeoutSignal, waitUntil, type WaitOptions } from './runtime';
