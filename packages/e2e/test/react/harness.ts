import { createLongPollClient, createTestRouter, startServer, type TestRouter, type TestServer } from '../../src';

/**
 * A real server with the fixture router, and a tRPC client whose subscriptions
 * go through the real `longPollLink` (jsdom keeps Node's fetch, so the link
 * reaches the server as it would from a browser).
 */
export async function startHookFixture() {
  const fixture = createTestRouter();
  const server: TestServer = await startServer({ router: fixture.router, createContext: () => ({ user: 'ann' }) });
  const client = createLongPollClient<TestRouter>(server.url);
  return { fixture, server, client };
}

/** The statuses a hook rendered, in order, with repeats of the same status collapsed. */
export function statusHistory() {
  const seen: string[] = [];
  return {
    seen,
    record(status: string) {
      if (seen[seen.length - 1] !== status) seen.push(status);
    },
  };
}
