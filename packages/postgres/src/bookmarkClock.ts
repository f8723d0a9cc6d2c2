import { bookmark } from '@trpc-longpoll/server';
import type { TrackedEnvelope } from '@trpc/server';

/**
 * When a subscription that takes bookmarks owes one: `intervalMs` after the
 * last, and only if its position moved since (a procedure that filters
 * events would otherwise leave the client's cursor behind, until retention
 * drops it). The first "last bookmark" is where the subscription started.
 */
export class BookmarkClock {
  private at = Date.now();

  constructor(
    private readonly intervalMs: number,
    private id: string,
  ) {}

  due(position: string): boolean {
    return position !== this.id && Date.now() - this.at >= this.intervalMs;
  }

  /** Milliseconds until a bookmark for `position` falls due (Infinity when there is nothing new to mark). */
  msUntilDue(position: string): number {
    return position === this.id ? Infinity : Math.max(0, this.at + this.intervalMs - Date.now());
  }

  mark(position: string): TrackedEnvelope<never> {
    this.at = Date.now();
    this.id = position;
    return bookmark(position);
  }
}
