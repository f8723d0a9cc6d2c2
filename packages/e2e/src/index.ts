/*
 * Everything the tests share, from one entry: `../src` inside this package,
 * `@trpc-longpoll/e2e` elsewhere (the root vitest config and tsconfig map it
 * to this file). Not for scripts run on their own (chaos/*, attack/server.ts,
 * instance.ts): some of these modules import vitest, so those import the
 * files they need directly.
 */
export * from './client';
export * from './feed';
export * from './router';
export * from './server';
export * from './proxy';
export * from './listen';
export * from './cleanup';
export * from './raw';
export * from './rawHttp';
export * from './instanceRouter';
export * from './instanceProcess';
export * from './redisEnv';
export * from './postgresEnv';
export * from './eventLogSuite';
export { formatReport, runSoak, type SoakOptions, type SoakReport } from './chaos/soak';
export type { LeakReport } from './chaos/leakCycles';
export type { AttackRouter } from './attack/server';
export * from './locks';
export * from './runCounter';
