/**
 * Which shared event log the soak runs on (`pnpm chaos --log redis|postgres`):
 * the publisher and every instance make it from the same settings.
 */
import { createPostgresEventLog } from '@trpc-longpoll/postgres';
import { createRedisEventLog } from '@trpc-longpoll/redis';
import type { EventLog } from '@trpc-longpoll/server';
import { Redis } from 'ioredis';
import { DATABASE_URL, dropSchemas, uniqueSchema } from '../postgresEnv';
import { deleteKeys, uniquePrefix } from '../redisEnv';

export type ChaosLogKind = 'redis' | 'postgres';
export const CHAOS_LOGS: readonly ChaosLogKind[] = ['redis', 'postgres'];

export interface ChaosLogSettings {
  kind: ChaosLogKind;
  /** Redis: the URL; PostgreSQL: the connection string. */
  url: string;
  /** Redis: the key prefix; PostgreSQL: the schema. One per soak. */
  namespace: string;
}

export function chaosLogSettings(kind: ChaosLogKind, redisUrl: string): ChaosLogSettings {
  return kind === 'postgres'
    ? { kind, url: DATABASE_URL, namespace: uniqueSchema('chaos') }
    : { kind, url: redisUrl, namespace: uniquePrefix('chaos') };
}

export function createChaosLog(settings: ChaosLogSettings): EventLog<Record<string, { n: number }>> {
  return settings.kind === 'postgres'
    ? createPostgresEventLog({ pg: settings.url, schema: settings.namespace })
    : // A short block, so a subscription resumed on an instance finds its place fast.
      createRedisEventLog({ redis: settings.url, prefix: settings.namespace, blockMs: 1_000 });
}

/** Removes what the soak stored. */
export async function dropChaosData(settings: ChaosLogSettings): Promise<void> {
  if (settings.kind === 'postgres') return dropSchemas(settings.namespace);
  const admin = new Redis(settings.url);
  await deleteKeys(admin, settings.namespace).finally(() => admin.disconnect());
}
