import type { AnyTRPCClientTypes, TRPCCombinedDataTransformer, TRPCDataTransformer } from '@trpc/server';

export type DataTransformerOptions = TRPCDataTransformer | TRPCCombinedDataTransformer;

/** A readable compile error in place of `never`. */
type TypeError<TMessage extends string> = TMessage & { __brand: 'TypeError' };

/**
 * `transformer` is required exactly when the router has one, and a compile
 * error otherwise — the same rule tRPC's own links enforce.
 */
export type TransformerOptions<TRoot extends Pick<AnyTRPCClientTypes, 'transformer'>> = TRoot['transformer'] extends true
  ? {
      /** The router's transformer (such as superjson); it must match the server's. */
      transformer: DataTransformerOptions;
    }
  : {
      /** The router has no transformer, so none may be given here. */
      transformer?: TypeError<'You must define a transformer on your `initTRPC`-object first'>;
    };

const identity = (value: unknown) => value;

export function getTransformer(transformer: DataTransformerOptions | undefined): TRPCCombinedDataTransformer {
  if (!transformer) {
    return { input: { serialize: identity, deserialize: identity }, output: { serialize: identity, deserialize: identity } };
  }
  if ('input' in transformer) return transformer;
  return { input: transformer, output: transformer };
}
