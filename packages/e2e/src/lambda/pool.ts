import { Environment, type InvokeOutcome } from './environment';

export interface PoolOptions {
  /** The bundled runtime and handler module every environment loads. */
  runtime: string;
  handler: string;
  /** Environment variables of the function. */
  env: Record<string, string | undefined>;
  functionTimeoutMs: number;
  /** Chance that an environment is discarded after an invocation instead of frozen for the next. */
  recycleChance: number;
  /** Seeds the random choices (recycling, which idle environment gets an invocation). */
  seed: number;
}

/** An environment as a test sees it. */
export interface EnvironmentInfo {
  id: number;
  pid: number;
  state: Environment['state'];
  invocations: number;
  freezes: number;
  initMs: number;
}

/** Chooses among the frozen environments for the next invocation; null starts a cold one. */
export type Placement = (idle: readonly EnvironmentInfo[]) => EnvironmentInfo | null;

export interface LogLine {
  environment: number;
  pid: number;
  line: string;
}

function infoOf(e: Environment): EnvironmentInfo {
  return { id: e.id, pid: e.pid, state: e.state, invocations: e.invocations, freezes: e.freezes, initMs: e.initMs };
}

/** A small seeded generator (mulberry32), so a failing run can be replayed with its seed. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * The function's execution environments, as Lambda keeps them: an
 * invocation goes to a frozen one if any is idle, else a cold one starts —
 * so concurrency scales out while every environment is busy — and after an
 * invocation an environment is frozen for the next, or discarded at random.
 */
export class EnvironmentPool {
  /** What the environments wrote to stdout and stderr, their log streams. */
  readonly logs: LogLine[] = [];
  /** How long each cold start took, from fork to the handler module loaded, in ms. */
  readonly coldStarts: number[] = [];
  /** Environments started and discarded; invocations that ended in a freeze, and that began with a thaw. */
  readonly counts = { started: 0, recycled: 0, freezes: 0, thaws: 0 };
  private readonly environments: Environment[] = [];
  private readonly random: () => number;
  private placement: Placement | null = null;
  private closed = false;

  constructor(private readonly opts: PoolOptions) {
    this.random = seeded(opts.seed);
  }

  /** Runs one invocation in an environment, which ends frozen, discarded, or (timed out) dead. */
  async invoke(event: unknown): Promise<{ environment: Environment; cold: boolean; outcome: InvokeOutcome }> {
    const { environment, cold } = await this.acquire();
    if (!cold) this.counts.thaws++;
    const outcome = await environment.invoke(event);
    if (environment.state === 'frozen') {
      this.counts.freezes++;
      if (this.random() < this.opts.recycleChance) void this.discard(environment);
    } else if (environment.state === 'dead') {
      this.remove(environment);
    }
    return { environment, cold, outcome };
  }

  list(): EnvironmentInfo[] {
    return this.environments.map(infoOf);
  }

  /** Steers the next invocations (Lambda's choice, not the client's) to reproduce one placement; null goes back to random. */
  place(choose: Placement | null): void {
    this.placement = choose;
  }

  /** Discards every frozen environment now: the next invocations start cold. */
  async recycleIdle(): Promise<number> {
    const idle = this.environments.filter((e) => e.state === 'frozen');
    await Promise.all(idle.map((e) => this.discard(e)));
    return idle.length;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.environments.splice(0).map((e) => e.kill()));
  }

  /** A frozen environment, picked at random (or by `place`) and reserved at once, else a cold one. */
  private async acquire(): Promise<{ environment: Environment; cold: boolean }> {
    const idle = this.environments.filter((e) => e.state === 'frozen');
    const chosen = this.placement
      ? this.placement(idle.map(infoOf))?.id
      : idle.length > 0
        ? idle[Math.floor(this.random() * idle.length)]!.id
        : undefined;
    const environment = idle.find((e) => e.id === chosen);
    if (environment) return { environment: environment.reserve(), cold: false };
    return { environment: await this.start(), cold: true };
  }

  private async start(): Promise<Environment> {
    const id = ++this.counts.started;
    const begun = Date.now();
    let pid = 0;
    const environment = await Environment.start({
      id,
      runtime: this.opts.runtime,
      handler: this.opts.handler,
      env: this.opts.env,
      functionTimeoutMs: this.opts.functionTimeoutMs,
      onLog: (line) => this.logs.push({ environment: id, pid, line }),
    });
    pid = environment.pid;
    if (this.closed) {
      await environment.kill();
      throw new Error('the gateway closed during a cold start');
    }
    this.coldStarts.push(Date.now() - begun);
    this.environments.push(environment);
    return environment;
  }

  private async discard(environment: Environment): Promise<void> {
    this.remove(environment);
    this.counts.recycled++;
    await environment.kill();
  }

  private remove(environment: Environment): void {
    const index = this.environments.indexOf(environment);
    if (index >= 0) this.environments.splice(index, 1);
  }
}
