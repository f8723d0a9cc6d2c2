import type { AnyTRPCRouter, CreateContextCallback, inferRouterContext } from '@trpc/server';

/**
 * `createContext` exactly as the matching tRPC adapter takes it: required
 * when the router's context has required fields, optional otherwise.
 */
export type CreateContextOption<TRouter extends AnyTRPCRouter, TArgs> = CreateContextCallback<
  inferRouterContext<TRouter>,
  (opts: TArgs) => inferRouterContext<TRouter> | Promise<inferRouterContext<TRouter>>
>;
