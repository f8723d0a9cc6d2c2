import type { ClusterChannel } from '@trpc-longpoll/server';
import { Script, type CommandBatcher } from './commands';

/** KEYS: the channel's stream. ARGV: message, max length. Appends with a Redis-made id. */
const SEND_SCRIPT = new Script(`
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'm', ARGV[1])
return 1
`);

/**
 * KEYS: the channel's stream. ARGV: last id read ('' = none yet), max entries.
 * Returns [last id, messages…]; without a last id, only the stream's end, so
 * a listener starts with what is sent after it.
 */
const RECEIVE_SCRIPT = new Script(`
if ARGV[1] == '' then
  local newest = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
  if newest[1] then return {newest[1][1]} end
  return {'0-0'}
end
local out = {ARGV[1]}
for _, entry in ipairs(redis.call('XRANGE', KEYS[1], '(' .. ARGV[1], '+', 'COUNT', ARGV[2])) do
  out[1] = entry[1]
  out[#out + 1] = entry[2][2]
end
return out
`);

/** After a pause in reading longer than this, what was sent meanwhile is skipped: it was about runs long gone. */
const STALE_MS = 60_000;
const MAX_LEN = 1_000;

/**
 * The cluster channel over REST: a small capped stream that `send` appends
 * to, which every listening instance reads when it talks to Redis anyway —
 * on the polls it makes for its waiting subscriptions, and in the request
 * that carries its own `send`. Listening alone sends nothing: an instance
 * with no live subscription has no runs a message could be about, and
 * after a pause of more than a minute it skips what was sent meanwhile.
 */
export class RestClusterChannel implements ClusterChannel {
  private readonly listeners = new Set<(message: string) => void>();
  private last: string | null = null;
  private lastReadAt = 0;
  private closed = false;
  /** One read at a time, so no message is delivered twice. */
  private reading: Promise<void> | null = null;

  constructor(
    private readonly batcher: CommandBatcher,
    private readonly key: string,
  ) {}

  send(message: string): void {
    if (this.closed) return;
    this.batcher.run(SEND_SCRIPT, [this.key], [String(message), String(MAX_LEN)]).catch(() => {
      // Best effort: a lost message only delays cleanup until the idle sweep.
    });
    // Batched into the same request: an instance that speaks also hears, subscriptions or not.
    this.receive().catch(() => {
      // Best effort, as above.
    });
  }

  listen(onMessage: (message: string) => void): () => void {
    const listener = (message: string) => onMessage(message);
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  /** Called on each scheduled poll and with each `send`. */
  receive(): Promise<void> {
    if (this.closed || this.listeners.size === 0) return Promise.resolve();
    this.reading ??= this.read().finally(() => (this.reading = null));
    return this.reading;
  }

  private async read(): Promise<void> {
    const stale = Date.now() - this.lastReadAt > STALE_MS;
    const [last, ...messages] = await this.batcher.run<string[]>(RECEIVE_SCRIPT, [this.key], [stale || this.last === null ? '' : this.last, '100']);
    this.lastReadAt = Date.now();
    this.last = last ?? this.last;
    for (const message of messages) {
      for (const listener of [...this.listeners]) {
        try {
          listener(message);
        } catch {
          // One listener's failure is not the channel's.
        }
      }
    }
  }

  close(): void {
    this.closed = true;
    this.listeners.clear();
  }
}
