import { readdir, readFile } from 'node:fs/promises';
import type { Meter, Tracer } from '@opentelemetry/api';
import { describe, expect, expectTypeOf, it } from 'vitest';
import type { LongPollOptions, LongPollTelemetry, TelemetryMeter, TelemetryTracer } from '../src';
import { createObserver, NO_OBSERVER } from '../src/core/telemetry';

/*
 * What the `telemetry` option records is tested with the real OpenTelemetry SDK in
 * examples/observability/test (in-memory reader, span exporter, Prometheus text).
 * Here: that it takes the API's own types, and that a handler without it costs
 * nothing and loads nothing.
 */
describe('the telemetry option', () => {
  it('takes OpenTelemetry’s Meter and Tracer, whose types the package never names', () => {
    expectTypeOf<Meter>().toExtend<TelemetryMeter>();
    expectTypeOf<Tracer>().toExtend<TelemetryTracer>();
    expectTypeOf<{ meter: Meter; tracer: Tracer }>().toExtend<LongPollTelemetry>();
    expectTypeOf<LongPollOptions<any>['telemetry']>().toEqualTypeOf<LongPollTelemetry | undefined>();
  });

  it('uses the shared no-op observer when neither is given', () => {
    const stats = () => {
      throw new Error('stats() is not read without a meter');
    };
    expect(createObserver(undefined, stats)).toBe(NO_OBSERVER);
    expect(createObserver({}, stats)).toBe(NO_OBSERVER);
  });

  it('never loads @opentelemetry/api: no file of the server imports it, even for types', async () => {
    const root = new URL('../src/', import.meta.url);
    const files = (await readdir(root, { recursive: true })).filter((file) => file.endsWith('.ts'));
    expect(files).toContain('core/telemetry.ts');
    const importing = [];
    for (const file of files) {
      if (/from '@opentelemetry\/|(import|require)\(\s*'@opentelemetry\//.test(await readFile(new URL(file, root), 'utf8'))) importing.push(file);
    }
    expect(importing).toEqual([]);
  });
});
