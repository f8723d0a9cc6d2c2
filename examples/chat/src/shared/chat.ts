/** What the browser and the server agree on, besides the router's types. */

export const ROOMS = ['general', 'random', 'help'] as const;
export type Room = (typeof ROOMS)[number];

export interface ChatMessage {
  id: string;
  room: Room;
  author: string;
  text: string;
  /** A real `Date` on both sides: superjson carries it. */
  at: Date;
}

/** Where the tRPC router is mounted, for both the server and the page. */
export const TRPC_PATH = '/trpc';

/** The transports the page can use, picked by `?transport=`. */
export type Transport = 'longpoll' | 'sse';
