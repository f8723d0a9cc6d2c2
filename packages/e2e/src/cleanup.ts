import { afterAll, afterEach, beforeAll } from 'vitest';

/**
 * Registers teardown work for the current test; it runs after the test,
 * newest first, whether the test passed or not.
 */
export function useCleanup(): (task: () => unknown) => void {
  const tasks: (() => unknown)[] = [];
  afterEach(async () => {
    for (const task of tasks.splice(0).reverse()) await task();
  });
  return (task) => {
    tasks.push(task);
  };
}

/**
 * Collects unhandled rejections while the file's tests run; the returned list
 * must stay empty (tests assert on it where it matters to them).
 */
export function useUnhandledRejections(): unknown[] {
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  beforeAll(() => {
    process.on('unhandledRejection', onUnhandled);
  });
  afterAll(() => {
    process.off('unhandledRejection', onUnhandled);
  });
  return unhandled;
}
