/**
 * A `fetch` for `longPollLink` that keeps many tabs of one site from using up
 * the browser's connections.
 *
 * Over HTTP/1.1 a browser profile opens at most 6 connections to a host
 * (Chromium, Firefox), and a held poll keeps one busy. With more tabs than
 * that, the extra tabs' polls, page loads and mutations queue until some
 * held poll ends. Here only `slots` tabs of the origin hold a poll at a time,
 * each holding a Web Lock for the length of its request; every other tab asks
 * for an answer right away (`hold: 0`), at most once per `intervalMs`. A tab
 * takes a free slot on its next poll, so the tabs that hold change as tabs
 * close. A poll that adds or drops a subscription goes out without the wait.
 * Without Web Locks (an insecure origin), every tab holds as usual.
 */

export interface SharedHoldsOptions {
  /** How many tabs may hold a poll at once; leave the rest of the 6 for everything else. Default 4. */
  slots?: number;
  /** How often a tab without a slot polls, in ms. Default 1 000. */
  intervalMs?: number;
  /** Lock names start with this; tabs that share it share the slots. */
  name?: string;
}

type Fetch = (input: string, init: RequestInit) => Promise<Response>;

const MISSED = Symbol('missed');

export function sharedHoldsFetch(opts: SharedHoldsOptions = {}, inner: Fetch = (input, init) => fetch(input, init)): Fetch {
  const slots = opts.slots ?? 4;
  const intervalMs = opts.intervalMs ?? 1_000;
  const name = opts.name ?? 'trpc-longpoll-hold';

  let lastSet = '';

  return async (input, init) => {
    const locks = typeof navigator === 'undefined' ? undefined : navigator.locks;
    if (!locks) return inner(input, init);
    const set = subscriptionSet(init.body);
    const changed = set !== lastSet;
    lastSet = set;
    for (let slot = 0; slot < slots; slot++) {
      // The lock is released when the callback's promise settles: after the whole answer is read.
      const answer = await locks.request(`${name}:${slot}`, { ifAvailable: true }, async (lock) =>
        lock ? readFully(await inner(input, init)) : MISSED,
      );
      if (answer !== MISSED) return answer;
    }
    if (!changed) await pause(intervalMs, init.signal);
    return readFully(await inner(input, { ...init, body: withoutHold(init.body) }));
  };
}

async function readFully(response: Response): Promise<Response> {
  const body = await response.arrayBuffer();
  return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
}

/** Which subscriptions a poll carries (their keys), to tell a change from a routine poll. */
function subscriptionSet(body: RequestInit['body']): string {
  if (typeof body !== 'string') return '';
  const { subscriptions } = JSON.parse(body) as { subscriptions?: { key: string }[] };
  return (subscriptions ?? []).map((sub) => sub.key).join(' ');
}

/** The same poll, asking the server to answer at once even with nothing new. */
function withoutHold(body: RequestInit['body']): RequestInit['body'] {
  if (typeof body !== 'string') return body;
  return JSON.stringify({ ...(JSON.parse(body) as object), hold: 0 });
}

function pause(ms: number, signal: AbortSignal | null | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    function onAbort() {
      clearTimeout(timer);
      reject(signal!.reason);
    }
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
