/**
 * `pnpm start`: serves the app on PORT (default 3000) with its metrics at
 * /metrics. `pnpm start --scenario` runs the scripted scenario against it,
 * prints what Prometheus would scrape, and exits.
 */
import { runScenario } from './scenario';
import { startObservedServer } from './server';

const scenario = process.argv.includes('--scenario');
const server = await startObservedServer({
  port: scenario ? 0 : Number(process.env.PORT ?? 3000),
  longPoll: scenario ? { maxSessions: 1, coalesceMs: 50 } : {},
});
if (scenario) {
  await runScenario(server);
  console.log(await (await fetch(server.metricsUrl)).text());
  await server.close();
} else {
  console.log(`tRPC at ${server.url}, metrics at ${server.metricsUrl}`);
  process.once('SIGTERM', () => void server.close());
}
