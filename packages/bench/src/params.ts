import type { ScenarioParams } from './loadgen/scenarios';

/** A seconds-long smoke of every scenario: CI runs it to prove the harness works, not to measure. */
export const QUICK: ScenarioParams = {
  latency: { warmup: 10, count: 30, intervalMs: 10 },
  throughput: { warmup: 200, count: 2_000, burst: 100 },
  fanout: { clients: 100, warmup: 2, count: 20, burst: 5, intervalMs: 10 },
  many: { subscriptions: 50, warmup: 2, count: 20, burst: 10 },
  idle: { polls: 500, holdMs: 1_000, windowMs: 1_000, batch: 250 },
  redis: { warmup: 10, latencyCount: 30, intervalMs: 10, count: 500, burst: 50 },
  logs: { warmup: 20, count: 500, burst: 20 },
  pad: 64,
  deliverTimeoutMs: 10_000,
};

export const FULL: ScenarioParams = {
  latency: { warmup: 50, count: 300, intervalMs: 15 },
  throughput: { warmup: 5_000, count: 100_000, burst: 100 },
  fanout: { clients: 100, warmup: 20, count: 300, burst: 10, intervalMs: 10 },
  many: { subscriptions: 50, warmup: 20, count: 2_000, burst: 20 },
  // The default hold (20 s): shorter holds make 10,000 clients cycle faster than one load-generator process can re-poll.
  idle: { polls: 10_000, holdMs: 20_000, windowMs: 5_000, batch: 500 },
  redis: { warmup: 50, latencyCount: 300, intervalMs: 15, count: 10_000, burst: 100 },
  logs: { warmup: 200, count: 5_000, burst: 20 },
  pad: 64,
  deliverTimeoutMs: 120_000,
};
