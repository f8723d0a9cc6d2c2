import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

// Resolved when used: under jsdom (the React tests import this package's index) `import.meta.url` is no file URL.
const repoRoot = () => fileURLToPath(new URL('../../..', import.meta.url));
const instanceScript = () => fileURLToPath(new URL('./instance.ts', import.meta.url));

/** One `src/instance.ts` server, as its own Node process. */
export interface InstanceProcess {
  url: string;
  child: ChildProcess;
  /** `kill -9`: no goodbye, no cleanup. */
  crash(): Promise<void>;
  stop(): Promise<void>;
}

/** Starts `src/instance.ts` (environment as it documents) and waits until it listens. */
export async function startInstance(env: Record<string, string>): Promise<InstanceProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', instanceScript()], {
    cwd: repoRoot(),
    env: { ...process.env, ...env, EXIT_WITH_STDIN: '1' },
    // The instance exits when this pipe closes, so it never outlives the test worker.
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`instance ${env.INSTANCE} did not start`)), 15_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      try {
        const { listening } = JSON.parse(line) as { listening?: string };
        if (!listening) return;
        clearTimeout(timer);
        resolve(listening);
      } catch {
        // Not the ready line.
      }
    });
    child.once('exit', (code) => reject(new Error(`instance ${env.INSTANCE} exited with ${code} before listening`)));
  });
  const kill = async (signal: NodeJS.Signals) => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    await exited;
  };
  return { url, child, crash: () => kill('SIGKILL'), stop: () => kill('SIGTERM') };
}
