import { EventEmitter, on } from 'node:events';
import { initTRPC } from '@trpc/server';
import { z } from 'zod';

/** A tiny app: rooms of ticks, and a mutation that emits some. */
export function createAppRouter() {
  const t = initTRPC.create();
  const rooms = new EventEmitter();
  rooms.setMaxListeners(0);
  const router = t.router({
    emit: t.procedure.input(z.object({ room: z.string(), count: z.number().int().min(1).max(100) })).mutation(({ input }) => {
      for (let i = 1; i <= input.count; i++) rooms.emit(input.room, i);
      return input.count;
    }),
    ticks: t.procedure.input(z.object({ room: z.string() })).subscription(async function* ({ input, signal }) {
      for await (const [n] of on(rooms, input.room, { signal })) yield n as number;
    }),
  });
  return router;
}

export type AppRouter = ReturnType<typeof createAppRouter>;
