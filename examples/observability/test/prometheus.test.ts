import { afterEach, describe, expect, it } from 'vitest';
import { runScenario, SCENARIO_COUNTERS } from '../src/scenario';
import { startObservedServer, type ObservedServer } from '../src/server';

const servers: ObservedServer[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function start() {
  const server = await startObservedServer({ longPoll: { maxSessions: 1, coalesceMs: 50 } });
  servers.push(server);
  return server;
}

/** Every sample of a Prometheus text exposition, as `name{label="value",…}` → value, scope labels left out. */
async function scrape(server: ObservedServer): Promise<Map<string, number>> {
  const response = await fetch(server.metricsUrl);
  expect(response.status).toBe(200);
  const samples = new Map<string, number>();
  for (const line of (await response.text()).split('\n')) {
    const match = /^(\w+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match) continue;
    const labels = (match[2] ?? '').split(/,(?=\w+=")/).filter((label) => label && !label.startsWith('otel_scope_'));
    samples.set(labels.length > 0 ? `${match[1]}{${labels.join(',')}}` : match[1]!, Number(match[3]));
  }
  return samples;
}

/** The samples whose names start with `prefix`. */
function family(samples: Map<string, number>, prefix: string): Record<string, number> {
  return Object.fromEntries([...samples].filter(([key]) => key.startsWith(prefix)));
}

describe('the Prometheus endpoint', () => {
  it('shows the scripted scenario’s exact counters, as stats() counts them', async () => {
    const server = await start();
    expect(family(await scrape(server), 'trpc_longpoll_poll_answers_total')).toEqual({
      'trpc_longpoll_poll_answers_total{trpc_longpoll_poll_outcome="news"}': 0,
      'trpc_longpoll_poll_answers_total{trpc_longpoll_poll_outcome="holdExpired"}': 0,
      'trpc_longpoll_poll_answers_total{trpc_longpoll_poll_outcome="released"}': 0,
      'trpc_longpoll_poll_answers_total{trpc_longpoll_poll_outcome="drain"}': 0,
      'trpc_longpoll_poll_answers_total{trpc_longpoll_poll_outcome="stale"}': 0,
    });

    await runScenario(server);
    expect(server.stats().counters).toEqual(SCENARIO_COUNTERS);
    const samples = await scrape(server);
    expect(family(samples, 'trpc_longpoll_poll_answers_total')).toEqual({
      'trpc_longpoll_poll_answers_total{trpc_longpoll_poll_outcome="news"}': 4,
      'trpc_longpoll_poll_answers_total{trpc_longpoll_poll_outcome="holdExpired"}': 1,
      'trpc_longpoll_poll_answers_total{trpc_longpoll_poll_outcome="released"}': 0,
      'trpc_longpoll_poll_answers_total{trpc_longpoll_poll_outcome="drain"}': 1,
      'trpc_longpoll_poll_answers_total{trpc_longpoll_poll_outcome="stale"}': 0,
    });
    expect(family(samples, 'trpc_longpoll_poll_refusals_total')).toEqual({
      'trpc_longpoll_poll_refusals_total{trpc_longpoll_refusal_reason="sessions",http_response_status_code="503"}': 5,
    });
    expect(family(samples, 'trpc_longpoll_run_starts_total')).toEqual({
      'trpc_longpoll_run_starts_total{trpc_longpoll_run_start_kind="started"}': 3,
      'trpc_longpoll_run_starts_total{trpc_longpoll_run_start_kind="resumed"}': 0,
      'trpc_longpoll_run_starts_total{trpc_longpoll_run_start_kind="adopted"}': 0,
    });
    expect(family(samples, 'trpc_longpoll_subscription_cursor_errors_total')).toEqual({
      'trpc_longpoll_subscription_cursor_errors_total{error_type="resume-lost"}': 1,
      'trpc_longpoll_subscription_cursor_errors_total{error_type="gone"}': 0,
      'trpc_longpoll_subscription_cursor_errors_total{error_type="reset"}': 0,
      'trpc_longpoll_subscription_cursor_errors_total{error_type="no-affinity"}': 0,
    });
    expect(samples.get('trpc_longpoll_event_deliveries_total')).toBe(3);
    // Six answers: four with news (three events in one of them), one expired hold, one drained.
    expect(family(samples, 'trpc_longpoll_poll_events_')).toMatchObject({
      'trpc_longpoll_poll_events_count{trpc_longpoll_poll_outcome="news"}': 4,
      'trpc_longpoll_poll_events_sum{trpc_longpoll_poll_outcome="news"}': 3,
      'trpc_longpoll_poll_events_bucket{trpc_longpoll_poll_outcome="news",le="0"}': 3,
      'trpc_longpoll_poll_events_bucket{trpc_longpoll_poll_outcome="news",le="2"}': 3,
      'trpc_longpoll_poll_events_bucket{trpc_longpoll_poll_outcome="news",le="5"}': 4,
      'trpc_longpoll_poll_events_count{trpc_longpoll_poll_outcome="holdExpired"}': 1,
      'trpc_longpoll_poll_events_count{trpc_longpoll_poll_outcome="drain"}': 1,
    });
    expect(samples.get('trpc_longpoll_poll_duration_count{trpc_longpoll_poll_outcome="news"}')).toBe(4);
    // Drained: nothing held, no session, the limits as configured.
    expect(samples.get('trpc_longpoll_session_count')).toBe(0);
    expect(samples.get('trpc_longpoll_session_limit')).toBe(1);
    expect(family(samples, 'trpc_longpoll_session_moves_total')).toEqual({
      'trpc_longpoll_session_moves_total{trpc_longpoll_move_kind="announced"}': 0,
      'trpc_longpoll_session_moves_total{trpc_longpoll_move_kind="dropped"}': 0,
    });
    expect(samples.get('trpc_longpoll_poll_held')).toBe(0);
  });

  it('shows what is held and running now', async () => {
    const server = await start();
    const held = fetch(server.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ v: 1, client: 'carol', poll: 1, hold: 5_000, subscriptions: [{ key: 'a', path: 'ticks', input: { room: 'r' } }] }),
    });
    const first = (await (await held).json()) as { results: { a: { run: string } } };
    const waiting = fetch(server.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ v: 1, client: 'carol', poll: 2, hold: 5_000, subscriptions: [{ key: 'a', path: 'ticks', input: { room: 'r' }, cursor: { run: first.results.a.run, seq: 0 } }] }),
    });
    await expect.poll(() => server.stats().heldPolls).toBe(1);
    const samples = await scrape(server);
    expect(samples.get('trpc_longpoll_poll_held')).toBe(1);
    expect(samples.get('trpc_longpoll_poll_active')).toBe(1);
    expect(samples.get('trpc_longpoll_session_count')).toBe(1);
    expect(samples.get('trpc_longpoll_run_active{trpc_longpoll_procedure_path="ticks"}')).toBe(1);
    expect(samples.get('trpc_longpoll_run_limit')).toBe(10_000);
    await server.drain();
    expect((await waiting).status).toBe(200);
    // A path whose runs all stopped reads 0 rather than keeping its last count.
    expect((await scrape(server)).get('trpc_longpoll_run_active{trpc_longpoll_procedure_path="ticks"}')).toBe(0);
  });
});
