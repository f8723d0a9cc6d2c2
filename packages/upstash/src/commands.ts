import type { Redis } from '@upstash/redis';

/** A Lua script and (once computed) its SHA-1, for `EVALSHA`. */
export class Script {
  private digest: Promise<string> | null = null;

  constructor(readonly lua: string) {}

  sha1(): Promise<string> {
    // Web Crypto: there on Node 20, Workers, Vercel Edge and Deno alike.
    this.digest ??= crypto.subtle.digest('SHA-1', new TextEncoder().encode(this.lua)).then((hash) =>
      Array.from(new Uint8Array(hash), (b) => b.toString(16).padStart(2, '0')).join(''),
    );
    return this.digest;
  }
}

interface Call {
  script: Script;
  keys: string[];
  args: string[];
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

/**
 * Every script call made in one turn of the event loop goes out as one
 * `/pipeline` request: the subscriptions of a process that read at the same
 * moment, and concurrent publishes, cost one round trip. Each call is
 * `EVALSHA`; the few the server does not know yet (`NOSCRIPT`) are sent
 * again as `EVAL`, which also caches them for next time.
 */
export class CommandBatcher {
  private queue: Call[] = [];
  private scheduled = false;
  /** HTTP requests sent, for tests and `stats`. */
  requests = 0;

  constructor(private readonly redis: Redis) {}

  run<T>(script: Script, keys: string[], args: string[]): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({ script, keys, args, resolve: resolve as (value: unknown) => void, reject });
      if (this.scheduled) return;
      this.scheduled = true;
      // A macrotask, not a microtask: callers that start together (a tick's waiters, Promise.all) land in one batch.
      setTimeout(() => void this.flush(), 0);
    });
  }

  private async flush(): Promise<void> {
    const calls = this.queue;
    this.queue = [];
    this.scheduled = false;
    try {
      const shas = await Promise.all(calls.map((call) => call.script.sha1()));
      const first = await this.send(calls.map((call, i) => ['evalsha', shas[i]!, call] as const));
      const unknown: Call[] = [];
      first.forEach((answer, i) => {
        if (answer.error && /noscript/i.test(answer.error)) unknown.push(calls[i]!);
        else settle(calls[i]!, answer);
      });
      if (unknown.length === 0) return;
      const second = await this.send(unknown.map((call) => ['eval', call.script.lua, call] as const));
      second.forEach((answer, i) => settle(unknown[i]!, answer));
    } catch (error) {
      for (const call of calls) call.reject(error);
    }
  }

  private async send(commands: readonly (readonly ['evalsha' | 'eval', string, Call])[]): Promise<{ error?: string; result?: unknown }[]> {
    let pipeline = this.redis.pipeline();
    for (const [verb, script, call] of commands) pipeline = pipeline[verb](script, call.keys, call.args);
    this.requests++;
    return (await pipeline.exec({ keepErrors: true })) as { error?: string; result?: unknown }[];
  }
}

function settle(call: Call, answer: { error?: string; result?: unknown }): void {
  if (answer.error) call.reject(new Error(`Upstash Redis: ${answer.error}`));
  else call.resolve(answer.result);
}
