// The process span of one message (issue 15), in this process with the real OpenTelemetry SDK
// (in-memory exporter): its parent from the event or from SQS's AWSTraceHeader, the abort of
// ctx.signal, failures, invalid data, and ctx.log's ids. Through runHandler and HandlerRunner:
// the worker thread's own code, no threads.
import t from 'tap';
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { pino } from 'pino';
import * as v from 'valibot';
import { makeEvent, runHandler } from '../../dist/testing/index.js';
import { encodeEvent } from '../../dist/event/index.js';
import { HandlerRunner, LoadedHandler } from '../../dist/worker/runner.js';
import { RunTable } from '../../dist/worker/run-table.js';

const exporter = new InMemorySpanExporter();
context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] }));

const TRACE = '0af7651916cd43dd8448eb211c80319c';
const SPAN = 'b7ad6b7169203331';
const finished = (name: string) => exporter.getFinishedSpans().filter((s) => s.name === name);

t.beforeEach(() => exporter.reset());

t.test('a handler that times out: the abort is an event on its span, status error', async (t) => {
  const r = await runHandler(
    { queue: 'slow', async handle(_e: unknown, ctx: any) { await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve)); } },
    makeEvent('T', {}, { extensions: { traceparent: `00-${TRACE}-${SPAN}-01` } }),
    { timeoutMs: 50 },
  );
  t.equal(r.result, 'timeout');
  const [span] = finished('process slow');
  t.equal(span?.spanContext().traceId, TRACE);
  t.equal(span?.parentSpanContext?.spanId, SPAN);
  t.match(span?.events.map((e) => [e.name, e.attributes]), [['eventbus.signal_aborted', { 'eventbus.abort_reason': /timed out after 50 ms/ }]]);
  t.equal(span?.status.code, 2);
  t.equal(span?.attributes['eventbus.result'], 'timeout');
});

t.test('data that fails its schema: invalid, recorded as the exception', async (t) => {
  const r = await runHandler({ queue: 'typed', events: { T: v.object({ n: v.number() }) }, handle() {} }, makeEvent('T', { n: 'x' }));
  t.equal(r.result, 'invalid');
  const [span] = finished('process typed');
  t.equal(span?.status.code, 2);
  t.equal(span?.attributes['eventbus.result'], 'invalid');
  t.ok(span?.events.some((e) => e.name === 'exception'));
});

t.test("ctx.log lines carry the span's trace_id and span_id; the span is active in handle", async (t) => {
  let active: string | undefined;
  const r = await runHandler({ queue: 'logs', handle(_e: unknown, ctx: any) { active = trace.getActiveSpan()?.spanContext().spanId; ctx.log.info('inside'); } }, makeEvent('T', {}));
  const [span] = finished('process logs');
  const line = r.logs.find((l) => l.msg === 'inside');
  t.equal(line?.trace_id, span?.spanContext().traceId);
  t.equal(line?.span_id, span?.spanContext().spanId);
  t.equal(active, span?.spanContext().spanId);
  t.equal(span?.parentSpanContext, undefined, 'an event without context: a new trace');
});

t.test("AWSTraceHeader: the parent of an event without traceparent, not of one with it", async (t) => {
  const log = pino({ level: 'silent' });
  const def = { queue: 'xray', handle() {} };
  const runner = new HandlerRunner(
    { log, table: new RunTable(2, Date.now()), threadId: 0, graceMs: 100, sendOutcomes() {}, publish: () => Promise.reject(new Error('no publish')) },
    new Map([['xray', new LoadedHandler('xray', def, log)]]),
  );
  const xray = 'Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1';
  const item = (row: number, event: ReturnType<typeof makeEvent>) => ({ row, messageId: `m${row}`, receiveCount: 1, body: encodeEvent(event).body, awsTraceHeader: xray });
  const out = await runner.run({
    taskId: 1,
    queue: 'xray',
    queueArn: 'arn:aws:sqs:us-east-1:000000000000:xray',
    topicArn: null,
    timeoutMs: 1000,
    items: [item(0, makeEvent('T', {}, { id: 'plain' })), item(1, makeEvent('T', {}, { id: 'w3c', extensions: { traceparent: `00-${TRACE}-${SPAN}-01` } }))],
  });
  t.same(out.results.map(([, o]) => o.result), ['success', 'success']);
  const spans = finished('process xray');
  const plain = spans.find((s) => s.attributes['cloudevents.event_id'] === 'plain');
  const w3c = spans.find((s) => s.attributes['cloudevents.event_id'] === 'w3c');
  t.equal(plain?.spanContext().traceId, '5759e988bd862e3fe1be46a994272793', 'the X-Ray trace');
  t.equal(plain?.parentSpanContext?.spanId, '53995c3f42cd8ad8', 'its Parent');
  t.equal(w3c?.spanContext().traceId, TRACE, "the event's own context wins");
  t.match(plain?.attributes, { 'messaging.system': 'aws_sqs', 'messaging.destination.name': 'xray', 'messaging.message.id': 'm0' });
  t.equal(out.results[0]?.[1].traced, true, 'the outcome says a span was recorded');
  t.equal(out.results[0]?.[1].traceparent, `00-5759e988bd862e3fe1be46a994272793-${plain?.spanContext().spanId}-01`);
});
