/**
 * One Lambda execution environment: the runtime's bootstrap, bundled and
 * run as a Node process forked by `environment.ts`. Init loads the
 * handler module (`LAMBDA_HANDLER`, export `handler`) once; then each
 * `invoke` message runs the handler with the event and a context whose
 * deadline is the function timeout, and the result goes back as one message.
 * The dispatcher sends one invocation at a time and freezes this process
 * (`SIGSTOP`) between them. What the handler logs goes to stdout, the
 * environment's log stream.
 */
import { randomUUID } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import type { Context } from 'aws-lambda';

export type ToRuntime = { type: 'invoke'; id: number; event: unknown; deadline: number; requestId: string };
export type FromRuntime =
  | { type: 'ready'; initMs: number }
  | { type: 'result'; id: number; result: unknown }
  | { type: 'error'; id: number; errorType: string; errorMessage: string };

type Handler = (event: unknown, context: Context) => Promise<unknown>;

const functionName = process.env.AWS_LAMBDA_FUNCTION_NAME ?? 'api';
const logStream = `2026/12/02/[$LATEST]${randomUUID().replaceAll('-', '')}`;

function contextFor(message: ToRuntime): Context {
  const callbackStyle = () => {
    throw new Error('callback-style completion is not supported by this runtime; return a promise');
  };
  return {
    callbackWaitsForEmptyEventLoop: true,
    functionName,
    functionVersion: '$LATEST',
    invokedFunctionArn: `arn:aws:lambda:eu-west-1:123456789012:function:${functionName}`,
    memoryLimitInMB: process.env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE ?? '512',
    awsRequestId: message.requestId,
    logGroupName: `/aws/lambda/${functionName}`,
    logStreamName: logStream,
    getRemainingTimeInMillis: () => Math.max(0, message.deadline - Date.now()),
    done: callbackStyle,
    fail: callbackStyle,
    succeed: callbackStyle,
  };
}

function send(message: FromRuntime): void {
  process.send?.(message);
}

const started = Date.now();
const module = (await import(pathToFileURL(process.env.LAMBDA_HANDLER!).href)) as Record<string, unknown>;
const handler = module[process.env.LAMBDA_HANDLER_EXPORT ?? 'handler'];
if (typeof handler !== 'function') throw new TypeError(`${process.env.LAMBDA_HANDLER} exports no function named handler`);

process.on('message', (message: ToRuntime) => {
  if (message.type !== 'invoke') return;
  void (async () => {
    try {
      const result = await (handler as Handler)(message.event, contextFor(message));
      send({ type: 'result', id: message.id, result });
    } catch (cause) {
      const error = cause instanceof Error ? cause : new Error(String(cause));
      console.error(JSON.stringify({ errorType: error.name, errorMessage: error.message }));
      send({ type: 'error', id: message.id, errorType: error.name, errorMessage: error.message });
    }
  })();
});
// The dispatcher gone (even killed), the environment goes too.
process.on('disconnect', () => process.exit(0));
send({ type: 'ready', initMs: Date.now() - started });
