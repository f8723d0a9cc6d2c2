/** What the page and the server agree on, besides the router's types. */

export interface ChatMessage {
  id: string;
  author: string;
  text: string;
  /** A real `Date` on both sides: superjson carries it. */
  at: Date;
}

/** The App Router endpoint: a route handler (`src/app/api/trpc/[[...trpc]]/route.ts`), what the page uses. */
export const APP_TRPC = '/api/trpc';
/** The same router on the Pages Router: an API route (`src/pages/api/pages-trpc/[[...trpc]].ts`). */
export const PAGES_TRPC = '/api/pages-trpc';
/** The Pages Router API route with Next's body parser off (`src/pages/api/pages-raw-trpc/[[...trpc]].ts`). */
export const PAGES_RAW_TRPC = '/api/pages-raw-trpc';
