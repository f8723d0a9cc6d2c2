import { afterEach, describe, expect, it } from 'vitest';
import { createLongPollClient, createTestRouter, recorder, startServer, type TestPost, type TestServer } from '../src';

let server: TestServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe('smoke', () => {
  it('delivers tracked events end to end', async () => {
    const fixture = createTestRouter();
    server = await startServer({ router: fixture.router, createContext: () => ({ user: 'ann' }) });
    const client = createLongPollClient<typeof fixture.router>(server.url);
    const rec = recorder<TestPost>();
    const sub = client.post.onAdd.subscribe(undefined, rec.callbacks);
    await rec.untilStarted();
    await client.post.add.mutate({ text: 'hi' });
    await client.post.add.mutate({ text: 'there' });
    const received = await rec.untilData(2);
    expect(received.map((d) => d.data.text)).toEqual(['hi', 'there']);
    sub.unsubscribe();
  });
});
