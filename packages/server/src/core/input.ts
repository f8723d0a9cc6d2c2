import { TRPCError, type TRPCRootConfig } from '@trpc/server';

export interface InputLimits {
  maxInputDepth: number;
  maxInputBytes: number;
}

/** Nesting depth of a JSON value, giving up as soon as it passes `max` (no recursion: the value is hostile). */
function depthExceeds(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [node, depth] = stack.pop()!;
    if (typeof node !== 'object' || node === null) continue;
    if (depth > max) return true;
    for (const child of Array.isArray(node) ? node : Object.values(node)) {
      if (typeof child === 'object' && child !== null) stack.push([child, depth + 1]);
    }
  }
  return false;
}

/**
 * Refuses a serialized input before the transformer expands it: deep nesting
 * and bulk cost memory and CPU whatever the procedure's schema would say.
 */
function checkInput(serialized: unknown, limits: InputLimits): void {
  if (typeof serialized !== 'object' || serialized === null) return;
  if (depthExceeds(serialized, limits.maxInputDepth)) {
    throw new TRPCError({ code: 'BAD_REQUEST', message: `The input is nested deeper than ${limits.maxInputDepth} levels` });
  }
  if (JSON.stringify(serialized).length > limits.maxInputBytes) {
    throw new TRPCError({ code: 'PAYLOAD_TOO_LARGE', message: `The input is larger than ${limits.maxInputBytes} bytes` });
  }
}

export type LazyInput = ReturnType<typeof lazyInput>;

/** A subscription's input once read: its value, or the error that refused it. */
export type InputOutcome = { value: unknown } | { error: unknown };

/**
 * A subscription's input, checked and deserialized only when read: a healthy
 * poll of running subscriptions never needs it. The outcome is kept for this
 * poll only; runs keep none of it once their procedure has validated it.
 */
export function lazyInput(serialized: unknown, config: TRPCRootConfig<any>, limits: InputLimits) {
  let state: InputOutcome | null = null;
  let released = false;
  const read = () => {
    if (released) return undefined;
    if (!state) {
      try {
        checkInput(serialized, limits);
        state = { value: serialized === undefined ? undefined : config.transformer.input.deserialize(serialized) };
      } catch (cause) {
        state = {
          error: cause instanceof TRPCError ? cause : new TRPCError({ code: 'BAD_REQUEST', message: 'The input could not be deserialized', cause }),
        };
      }
    }
    if ('error' in state) throw state.error;
    return state.value;
  };
  /** The input, or why it cannot be had: what a run is created with. */
  const settle = (): InputOutcome => {
    try {
      return { value: read() };
    } catch (error) {
      return { error };
    }
  };
  return {
    read,
    peek: () => (state && 'value' in state ? state.value : undefined),
    /** Lets go of the input: a context that kept `info.calls` must not keep every input with it. */
    release: () => {
      released = true;
      state = null;
      serialized = undefined;
    },
    /** The input, or undefined when it cannot be deserialized (the run that needs it reports that). */
    peekOrRead: () => {
      const outcome = settle();
      return 'value' in outcome ? outcome.value : undefined;
    },
    settle,
  };
}
