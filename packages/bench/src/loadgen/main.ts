/**
 * The load generator process: runs one scenario against each transport it is
 * given, in that order, and sends the figures back to the orchestrator.
 */
import { now, type Transport } from '../shared';
import { Control } from './control';
import { runScenario, type Figures, type ScenarioName, type ScenarioParams } from './scenarios';

export interface LoadgenTask {
  scenario: ScenarioName;
  transports: Transport[];
  ports: Partial<Record<Transport, number>>;
  control: number;
  params: ScenarioParams;
}

export interface LoadgenResult {
  type: 'result';
  figures: Partial<Record<Transport, Figures>>;
  errors: Partial<Record<Transport, string>>;
}

process.on('message', (message: LoadgenTask | 'stop' | 'clock') => {
  if (message === 'stop') return;
  if (message === 'clock') return process.send!({ type: 'clock', now: now() });
  const task = message;
  void (async () => {
    const control = new Control(task.control);
    const result: LoadgenResult = { type: 'result', figures: {}, errors: {} };
    for (const transport of task.transports) {
      try {
        result.figures[transport] = await runScenario(task.scenario, { transport, port: task.ports[transport]!, control, params: task.params });
      } catch (cause) {
        const error = cause as Error & { cause?: Error };
        result.errors[transport] = error?.cause ? `${error.message}: ${error.cause.message ?? error.cause}` : String(error?.message ?? error);
      }
    }
    process.send!(result, () => process.exit(0));
  })();
});
