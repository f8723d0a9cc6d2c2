import { fork, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createInterface } from 'node:readline';
import type { FromRuntime, ToRuntime } from './runtime';

/** Every environment still alive, killed if the test process exits first: a frozen orphan would never exit on its own. */
const alive = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of alive) child.kill('SIGKILL');
});

export type InvokeOutcome =
  | { ok: true; result: unknown }
  | { ok: false; errorType: string; errorMessage: string };

export interface EnvironmentOptions {
  id: number;
  /** Path of the runtime bootstrap (bundled `runtime.ts`). */
  runtime: string;
  /** Path of the handler module. */
  handler: string;
  env: Record<string, string | undefined>;
  /** The function timeout: an invocation still running then is cut and its environment discarded. */
  functionTimeoutMs: number;
  /** Each line the environment writes to stdout or stderr, its log stream. */
  onLog: (line: string) => void;
}

/**
 * One execution environment: a Node process that runs the runtime
 * (`runtime.ts`), one invocation at a time, frozen with `SIGSTOP` from the
 * moment it returns a result until the next invocation thaws it with `SIGCONT`.
 */
export class Environment {
  state: 'init' | 'reserved' | 'busy' | 'frozen' | 'dead' = 'init';
  invocations = 0;
  freezes = 0;
  thaws = 0;
  /** How long the runtime took to load the handler module (its init phase), in ms. */
  initMs = 0;
  private nextId = 0;
  private readonly pending = new Map<number, (outcome: InvokeOutcome) => void>();
  private readonly exited: Promise<void>;

  private constructor(
    readonly id: number,
    private readonly child: ChildProcess,
    private readonly opts: EnvironmentOptions,
  ) {
    alive.add(child);
    this.exited = new Promise((resolve) =>
      child.once('exit', () => {
        alive.delete(child);
        this.state = 'dead';
        for (const settle of this.pending.values()) settle({ ok: false, errorType: 'Runtime.ExitError', errorMessage: 'the execution environment exited' });
        this.pending.clear();
        resolve();
      }),
    );
    child.on('message', (message: FromRuntime) => {
      if (message.type === 'ready') return;
      const settle = this.pending.get(message.id);
      this.pending.delete(message.id);
      settle?.(message.type === 'result' ? { ok: true, result: message.result } : { ok: false, errorType: message.errorType, errorMessage: message.errorMessage });
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Starts a cold environment and runs its init phase (loading the handler module). */
  static async start(opts: EnvironmentOptions): Promise<Environment> {
    const child = fork(opts.runtime, [], {
      execArgv: [],
      env: { ...process.env, ...opts.env, LAMBDA_HANDLER: opts.handler },
      stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
    });
    for (const stream of [child.stdout!, child.stderr!]) createInterface({ input: stream }).on('line', opts.onLog);
    const environment = new Environment(opts.id, child, opts);
    const ready = await new Promise<Extract<FromRuntime, { type: 'ready' }> | null>((resolve) => {
      child.on('message', (message: FromRuntime) => message.type === 'ready' && resolve(message));
      child.once('exit', () => resolve(null));
    });
    if (!ready) throw new Error(`execution environment ${opts.id} failed during init`);
    environment.initMs = ready.initMs;
    return environment;
  }

  /** Takes a frozen environment for the next invocation, so no other request picks it meanwhile. */
  reserve(): this {
    if (this.state !== 'frozen') throw new Error(`environment ${this.id} is ${this.state}, not frozen`);
    this.state = 'reserved';
    return this;
  }

  /** Thaws the environment, runs one invocation, and freezes it again once the handler has returned. */
  async invoke(event: unknown): Promise<InvokeOutcome> {
    if (this.state === 'busy' || this.state === 'dead') throw new Error(`environment ${this.id} is ${this.state}`);
    if (this.freezes > this.thaws) {
      this.child.kill('SIGCONT');
      this.thaws++;
    }
    this.state = 'busy';
    this.invocations++;
    const id = ++this.nextId;
    const deadline = Date.now() + this.opts.functionTimeoutMs;
    const outcome = new Promise<InvokeOutcome>((resolve) => this.pending.set(id, resolve));
    this.child.send({ type: 'invoke', id, event, deadline, requestId: randomUUID() } satisfies ToRuntime);
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<InvokeOutcome>((resolve) => {
      timer = setTimeout(() => resolve({ ok: false, errorType: 'Sandbox.Timedout', errorMessage: `Task timed out after ${this.opts.functionTimeoutMs} ms` }), this.opts.functionTimeoutMs);
    });
    const result = await Promise.race([outcome, timedOut]);
    clearTimeout(timer);
    this.pending.delete(id);
    if (result.ok === false && result.errorType === 'Sandbox.Timedout') {
      // Lambda discards an environment whose invocation timed out.
      await this.kill();
    } else if (this.state === 'busy') {
      this.child.kill('SIGSTOP');
      this.state = 'frozen';
      this.freezes++;
    }
    return result;
  }

  /** Ends the environment at once, frozen or not: recycled, as Lambda does without a word to the code inside. */
  async kill(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    await this.exited;
  }
}
