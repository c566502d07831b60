// runHandler: one message through a handler in this process, exactly as a worker thread runs it
// (the same HandlerRunner: decode, schema validation, ctx, timeout and grace, results), with
// ctx.publish and ctx.log captured instead of sent.
import { randomUUID } from 'node:crypto';
import { pino } from 'pino';
import { HANDLER_DEFAULTS, HANDLER_GRACE_MS, resolveHandler } from '../handlers.js';
import { buildEvent, encodeEvent } from '../event/index.js';
import { EventBusError } from '../errors.js';
import { TEST_SOURCE } from './make-event.js';
import { RunTable } from '../worker/run-table.js';
import { HandlerRunner, LoadedHandler } from '../worker/runner.js';
import type { ItemOutput } from '../worker/protocol.js';
import type { AnyHandlerDefinition, CloudEvent, HandlerResult } from '../types.js';

export interface RunHandlerOptions {
  /** ctx.receiveCount (default 1): test what a handler does on its last attempt. */
  receiveCount?: number;
  /** ctx.messageId (default: a new UUID). */
  messageId?: string;
  /** ctx.queue when the definition names none (default: `test`). */
  queue?: string;
  /** Overrides the definition's `timeoutMs`. */
  timeoutMs?: number;
  /** How long a handler may take to settle after its signal aborted (default: the supervisor's, 2 s). */
  graceMs?: number;
  /** `source` of events the handler publishes (default `eventbus-test`). */
  source?: string;
  /** Runs the definition's setup before the message and its teardown after (default true, as a thread would). */
  lifecycle?: boolean;
}

/** One line `ctx.log` (or the handler's setup `log`) wrote: pino's fields, `level` as its name. */
export interface LogLine {
  level: string;
  msg?: string;
  [field: string]: unknown;
}

export interface RunHandlerResult {
  /** SPEC "Results": success, failure, error, timeout, rejected, invalid. */
  result: Exclude<HandlerResult, 'crashed'>;
  /** What the handler threw (the value itself), or for `timeout` the abort reason; undefined otherwise. */
  error: unknown;
  /** The description the supervisor logs and puts in failure events (`name: message`, `handler returned false`). */
  reason: string | undefined;
  /** `invalid`: the schema's issues. */
  issues: Array<{ path: string; message: string }> | undefined;
  /** Events `ctx.publish` sent, in call order (built as the publisher builds them, ids derived). */
  published: CloudEvent[];
  /** Lines written with `ctx.log` (and setup's `log`), in order. */
  logs: LogLine[];
  durationMs: number;
}

/**
 * Runs one event through a handler definition in this process, as the supervisor's worker thread
 * would: the definition is checked as at start (the same errors), the event goes through the wire
 * format and back, its data is validated by the handler's schemas, and the result is one of the
 * SPEC's. A handler that ignores its aborted signal past the grace keeps running in the background
 * (a worker thread would be ended): the result is `timeout` all the same.
 */
export async function runHandler(definition: AnyHandlerDefinition, event: CloudEvent, options: RunHandlerOptions = {}): Promise<RunHandlerResult> {
  const queue = options.queue ?? (typeof definition?.queue === 'string' ? definition.queue : 'test');
  const resolved = resolveHandler(`runHandler(${queue})`, { queue, ...definition }, { queuePrefix: '', concurrency: 1, queues: {}, prefetch: 0 });
  const logs: LogLine[] = [];
  const log = pino(
    { level: 'trace', base: null, timestamp: false, errorKey: 'err', formatters: { level: (label) => ({ level: label }) } },
    { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) },
  );
  const published: CloudEvent[] = [];
  const thrown: unknown[] = [];
  const source = options.source ?? TEST_SOURCE;
  const handler = new LoadedHandler(resolved.queue, definition, log);
  const runner = new HandlerRunner(
    {
      log,
      table: new RunTable(1, Date.now()),
      threadId: 0,
      graceMs: options.graceMs ?? HANDLER_GRACE_MS,
      sendOutcomes: () => {},
      onThrown: (err) => void thrown.push(err),
      publish: async (_topicArn, type, data, opts) => {
        // Built and size-checked as the publisher does, so a bad event fails here as it would there.
        const e = buildEvent(type, data, source, opts);
        encodeEvent(e, opts.attributes);
        published.push(e);
        return e;
      },
    },
    new Map([[resolved.queue, handler]]),
  );
  // Through the wire format and back: the handler gets what a queue would deliver, and the
  // caller's event object is not the one the handler may change.
  const { body, attributes } = encodeEvent(event);
  const messageId = options.messageId ?? randomUUID();
  const sent = Date.parse(event.time);
  const lifecycle = options.lifecycle !== false;
  if (!lifecycle) handler.setupDone = true;
  let out: ItemOutput;
  try {
    const task = await runner.run({
      taskId: 1,
      queue: resolved.queue,
      queueArn: `arn:aws:sqs:us-east-1:000000000000:${resolved.queueName}`,
      topicArn: 'runHandler',
      timeoutMs: options.timeoutMs ?? resolved.timeoutMs ?? HANDLER_DEFAULTS.timeoutMs,
      items: [
        {
          row: 0,
          messageId,
          receiveCount: options.receiveCount ?? 1,
          body,
          attributes: Object.fromEntries(Object.entries(attributes).map(([k, v]) => [k, v.StringValue])),
          sentTimestampMs: Number.isFinite(sent) ? sent : undefined,
        },
      ],
    });
    out = task.results[0]![1];
  } finally {
    if (lifecycle) await runner.teardown();
  }
  return {
    result: out.result,
    error:
      out.result === 'timeout'
        ? new Error(out.error)
        : out.result === 'invalid'
          ? Object.assign(new EventBusError('ERR_EVENT_INVALID', out.error ?? 'invalid event'), { issues: out.issues })
          : thrown.at(-1),
    reason: out.error,
    issues: out.issues,
    published,
    logs,
    durationMs: out.durationMs,
  };
}
