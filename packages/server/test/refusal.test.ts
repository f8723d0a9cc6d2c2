import { createHook } from 'node:async_hooks';
import { initTRPC, TRPCError } from '@trpc/server';
import { afterEach, describe, expect, it } from 'vitest';
import { createLongPollCore, type LongPollCore } from '../src';

const cores: LongPollCore[] = [];
afterEach(async () => {
  await Promise.all(cores.splice(0).map((core) => core.close()));
});

/** A core whose createContext refuses once `revoked` is set, as a revoked credential does. */
function setUp() {
  const t = initTRPC.create();
  const state = { revoked: false, live: 0 };
  const router = t.router({
    waits: t.procedure.subscription(async function* ({ signal }) {
      state.live++;
      try {
        await new Promise((resolve) => signal?.addEventListener('abort', resolve, { once: true }));
        yield 0;
      } finally {
        state.live--;
      }
    }),
  });
  // Idle expiry far away: only the refusal may stop the run.
  const core = createLongPollCore({ router, holdMs: 0, idleTimeoutMs: 60_000 });
  cores.push(core);
  const poll = (number: number) =>
    core.serve({
      method: 'POST',
      url: '/',
      header: (name) => (name === 'content-type' ? 'application/json' : undefined),
      body: { text: JSON.stringify({ v: 1, client: 'victim', poll: number, hold: 0, subscriptions: [{ key: 'w', path: 'waits' }] }) },
      signal: new AbortController().signal,
      req: null,
      createContext: () => {
        if (state.revoked) throw new TRPCError({ code: 'UNAUTHORIZED' });
        return {};
      },
    });
  return { state, poll, core };
}

describe('refused clients', () => {
  it('a flood of refusals for one client costs one timer, and its runs still stop within the grace', async () => {
    const { state, poll, core } = setUp();
    expect((await poll(1)).status).toBe(200);
    expect(state.live).toBe(1);
    state.revoked = true;

    let timers = 0;
    const hook = createHook({ init: (_id, type) => void (type === 'Timeout' && timers++) }).enable();
    try {
      for (let i = 0; i < 2_000; i++) expect((await poll(2 + i)).status).toBe(401);
    } finally {
      hook.disable();
    }
    // Each refusal used to schedule a sweep of every session of the process.
    expect(timers).toBeLessThanOrEqual(1);
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    expect(state.live).toBe(0);
    expect(core.stats().sessions).toBe(0);
  });

  it('a refusal racing a served poll of the same client stops nothing', async () => {
    const { state, poll, core } = setUp();
    expect((await poll(1)).status).toBe(200);
    state.revoked = true;
    expect((await poll(2)).status).toBe(401);
    state.revoked = false;
    expect((await poll(3)).status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 1_200));
    expect(state.live).toBe(1);
    expect(core.stats().sessions).toBe(1);
  });
});
