import { afterEach } from 'vitest';

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
