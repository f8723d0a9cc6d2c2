export {
  createUpstashEventLog,
  type UpstashEventLog,
  type UpstashEventLogOptions,
  type UpstashEventLogRetention,
  type UpstashRestConfig,
} from './upstashEventLog';
export type { RestClusterChannel } from './cluster';
