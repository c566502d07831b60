// Tracing (issue 15) end to end, with the real OpenTelemetry SDK registered by a telemetry.setup
// module (test/fixtures/telemetry/setup.mjs) in this process and in every worker thread: one trace
// from a publish in the test, through SNS and SQS, into the handler and what it publishes; failures,
// TASK_WORKER_FAILED, events without or with a malformed traceparent, replay, and log ids. The spans
// are exported only when eventbus flushes the providers (thread teardown, supervisor stop), so
// every span checked here also checks the flush.
import t from 'tap';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { trace, type Span } from '@opentelemetry/api';
import { openArchive } from '../../dist/archive/index.js';
import { replay } from '../../dist/cli/replay.js';
import { createLogger } from '../../dist/log.js';
import type { CloudEvent } from '../../dist/types.js';
import { startBus, waitFor } from '../helpers/bus.js';

const dir = mkdtempSync(join(tmpdir(), 'eb-trace-'));
const SPANS = join(dir, 'spans.jsonl');
process.env.EVENTBUS_TEST_SPANS = SPANS;
const SETUP = fileURLToPath(new URL('../../test/fixtures/telemetry/setup.mjs', import.meta.url));
const TRACED = fileURLToPath(new URL('../../test/fixtures/handlers/traced.mjs', import.meta.url));
// This process's SDK: the same module the supervisor loads (telemetry.setup), so it registers once.
await import(pathToFileURL(SETUP).href);

interface SpanRec {
  name: string;
  kind: number;
  traceId: string;
  spanId: string;
  parentSpanId: string | null;
  status: { code: number; message?: string };
  attributes: Record<string, unknown>;
  events: Array<{ name: string; attributes: Record<string, unknown> }>;
  links: Array<{ traceId: string; spanId: string; attributes: Record<string, unknown> }>;
  thread: number;
}
interface Report {
  kind: 'report';
  queue: string;
  id: string;
  type: string;
  receiveCount: number;
  traceparent: string | null;
  active: { traceId: string; spanId: string } | null;
  bindings: Record<string, unknown>;
}
const lines = () => (existsSync(SPANS) ? readFileSync(SPANS, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>) : []);
const reports = () => lines().filter((l) => l.kind === 'report') as unknown as Report[];
const spans = () => lines().filter((l) => l.kind !== 'report') as unknown as SpanRec[];

const SPAN_KIND = { PRODUCER: 3, CONSUMER: 4 };
const STATUS_ERROR = 2;
const ORIGINAL_TRACE = '0af7651916cd43dd8448eb211c80319c';
const ORIGINAL_SPAN = 'b7ad6b7169203331';

t.test('one trace from a publish through SNS and SQS into handlers, their publishes and failure events', async (t) => {
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const logLines: Array<Record<string, unknown>> = [];
  const bus = await startBus(
    [
      { queue: 'up', events: ['UP'], file: TRACED },
      { queue: 'down', events: ['DOWN'], file: TRACED },
      { queue: 'twf', events: ['TASK_WORKER_FAILED'], file: TRACED },
    ],
    {
      config: { telemetry: { setup: SETUP } },
      supervisor: { log: createLogger({ level: 'info', destination: { write: (l: string) => void logLines.push(JSON.parse(l) as Record<string, unknown>) } }) },
    },
  );
  t.teardown(() => bus.stop());

  // 1. Published inside a span of the test: the handler continues it and publishes DOWN from it.
  let requestSpan!: Span;
  const e1 = await trace.getTracer('test').startActiveSpan('request', async (span) => {
    requestSpan = span;
    try {
      return await bus.publisher.createEvent('UP', { publish: [{ type: 'DOWN', data: { from: 'up' } }] });
    } finally {
      span.end();
    }
  });
  // 2. A handler that fails once, then succeeds: TASK_WORKER_FAILED in between.
  const e2 = await bus.publisher.createEvent('UP', { fail: 'throw', failTimes: 1, message: 'traced boom' });
  // 3. No traceparent at all, and 4. a malformed one: each a new trace, never a failed message.
  const bare = { specversion: '1.0' as const, id: 'bare-event', source: 'test', type: 'UP', time: new Date().toISOString(), data: {} };
  await bus.sendRaw('up', JSON.stringify(bare));
  await bus.sendRaw('up', JSON.stringify({ ...bare, id: 'malformed-traceparent', traceparent: 'not-a-traceparent', tracestate: 'x=1' }));
  await bus.sendRaw('up', JSON.stringify({ ...bare, id: 'zero-trace', traceparent: `00-${'0'.repeat(32)}-${ORIGINAL_SPAN}-01` }));
  // 5. A replay of an archived event that carried a context: a link to it, not its child.
  const store = await openArchive(join(dir, 'archive.sqlite'));
  t.teardown(() => store.close());
  const original: CloudEvent = { ...bare, id: 'archived-original', time: '2026-01-01T00:00:00.000Z', traceparent: `00-${ORIGINAL_TRACE}-${ORIGINAL_SPAN}-01`, tracestate: 'vendor=1' };
  await store.put(original);
  const topicArn = await bus.publisher.topicArn();
  const replayed = await replay({ store, filter: {}, target: { kind: 'topic', sns: bus.emu.sns, topicArn, name: bus.config.topic }, rate: 100 });
  t.equal(replayed.sent, 1, 'the archived event was replayed');

  await waitFor(
    'every handler report',
    () => {
      const r = reports();
      const up = r.filter((x) => x.queue === 'up');
      return (
        up.some((x) => x.id === e1.id) &&
        up.filter((x) => x.id === e2.id).length === 2 &&
        ['bare-event', 'malformed-traceparent', 'zero-trace'].every((id) => up.some((x) => x.id === id)) &&
        up.some((x) => x.type === 'UP' && x.id !== e1.id && x.id !== e2.id && !['bare-event', 'malformed-traceparent', 'zero-trace'].includes(x.id)) &&
        r.some((x) => x.queue === 'down') &&
        r.some((x) => x.queue === 'twf')
      );
    },
    20_000,
  ).catch((err: unknown) => {
    // What was seen, to tell a missing handler run from a missing report.
    t.comment(JSON.stringify(reports().map((r) => [r.queue, r.type, r.id, r.receiveCount])), existsSync(SPANS) ? readFileSync(SPANS, "utf8").slice(0, 2000) : "no file");
    t.comment(JSON.stringify(logLines.filter((l) => Number(l.level) >= 40).slice(0, 5)));
    throw err;
  });
  t.same(
    spans().filter((s) => s.name.startsWith('process ')),
    [],
    'no process span is exported before the flush (the fixture exports only on forceFlush)',
  );
  await bus.stop();

  const all = spans();
  const processOf = (queue: string, eventId: string) => all.filter((s) => s.name === `process ${queue}` && s.attributes['cloudevents.event_id'] === eventId);
  const byId = new Map(all.map((s) => [s.spanId, s]));

  await t.test('publish inside a span: the handler span is in its trace, the publish span its parent', async (t) => {
    const publish = all.find((s) => s.kind === SPAN_KIND.PRODUCER && s.attributes['cloudevents.event_id'] === e1.id);
    t.ok(publish, 'a PRODUCER span for the publish');
    t.equal(publish!.name, `publish ${bus.config.topic}`);
    t.equal(publish!.parentSpanId, requestSpan.spanContext().spanId, "the publish span's parent is the test's active span");
    t.match(publish!.attributes, { 'messaging.system': 'aws.sns', 'messaging.operation.type': 'send', 'messaging.destination.name': bus.config.topic, 'cloudevents.event_type': 'UP' });
    t.type(publish!.attributes['messaging.message.id'], 'string', 'the SNS message id');
    t.equal(e1.traceparent, `00-${publish!.traceId}-${publish!.spanId}-01`, "the event carries the publish span's context");
    const [consumer, ...more] = processOf('up', e1.id);
    t.equal(more.length, 0);
    t.equal(consumer!.kind, SPAN_KIND.CONSUMER);
    t.equal(consumer!.traceId, requestSpan.spanContext().traceId, 'same trace as the request');
    t.equal(consumer!.parentSpanId, publish!.spanId, 'child of the publish span');
    t.same(consumer!.links.map((l) => [l.traceId, l.spanId]), [[publish!.traceId, publish!.spanId]], 'and linked to it');
    t.match(consumer!.attributes, { 'messaging.system': 'aws_sqs', 'messaging.operation.type': 'process', 'eventbus.queue': 'up', 'eventbus.receive_count': 1, 'eventbus.result': 'success' });
    t.match(consumer!.attributes['messaging.destination.name'], /up$/);
    t.type(consumer!.attributes['messaging.message.id'], 'string');
    t.not(consumer!.thread, 0, 'recorded in a worker thread');
    const report = reports().find((r) => r.id === e1.id)!;
    t.same(report.active, { traceId: consumer!.traceId, spanId: consumer!.spanId }, 'the span is active inside handle');
    t.equal(report.bindings.trace_id, consumer!.traceId, 'ctx.log carries trace_id');
    t.equal(report.bindings.span_id, consumer!.spanId, 'ctx.log carries span_id');
  });

  await t.test("ctx.publish continues the handler's trace into the downstream handler", async (t) => {
    const upSpan = processOf('up', e1.id)[0]!;
    const down = all.find((s) => s.name === 'process down');
    t.ok(down);
    t.equal(down!.traceId, upSpan.traceId, 'the downstream handler is in the same trace');
    const publish = byId.get(down!.parentSpanId!);
    t.equal(publish?.kind, SPAN_KIND.PRODUCER, "its parent is ctx.publish's publish span");
    t.equal(publish?.parentSpanId, upSpan.spanId, 'whose parent is the upstream handler span');
    t.equal(publish?.thread, upSpan.thread, 'published from the handler thread');
  });

  await t.test('a failing handler: error status, exception event; TASK_WORKER_FAILED in the same trace', async (t) => {
    const runs = processOf('up', e2.id).sort((a, b) => Number(a.attributes['eventbus.receive_count']) - Number(b.attributes['eventbus.receive_count']));
    t.equal(runs.length, 2);
    const [failed, retried] = runs as [SpanRec, SpanRec];
    t.equal(failed.status.code, STATUS_ERROR, 'status error');
    t.match(failed.status.message, /traced boom/);
    t.equal(failed.attributes['eventbus.result'], 'error');
    t.equal(failed.attributes['error.type'], 'Error');
    const exception = failed.events.find((e) => e.name === 'exception');
    t.ok(exception, 'the exception is recorded');
    t.equal(exception?.attributes['exception.message'], 'traced boom');
    t.match(String(exception?.attributes['exception.stacktrace']), /traced\.mjs/);
    t.equal(retried.attributes['eventbus.result'], 'success');
    t.equal(retried.traceId, failed.traceId, 'the retry is in the same trace');
    const twf = all.find((s) => s.name === 'process twf');
    t.ok(twf, "the TASK_WORKER_FAILED handler's span");
    t.equal(twf!.traceId, failed.traceId, 'in the failed message trace');
    const twfPublish = byId.get(twf!.parentSpanId!);
    t.equal(twfPublish?.kind, SPAN_KIND.PRODUCER, 'published by the supervisor');
    t.equal(twfPublish?.thread, 0, 'on the main thread');
    t.equal(twfPublish?.parentSpanId, failed.spanId, 'as a child of the failed process span');
    const line = logLines.find((l) => l.msg === 'handler failed; will retry');
    t.ok(line, "the supervisor's failure line");
    t.equal(line?.trace_id, failed.traceId, 'carries trace_id');
    t.equal(line?.span_id, failed.spanId, 'and span_id');
  });

  await t.test('an event without traceparent, or with a malformed one: a new trace, handled', async (t) => {
    for (const id of ['bare-event', 'malformed-traceparent', 'zero-trace']) {
      const [s, ...more] = processOf('up', id);
      t.equal(more.length, 0, `${id}: one run`);
      t.equal(s!.parentSpanId, null, `${id}: a root span`);
      t.same(s!.links, [], `${id}: no link`);
      t.equal(s!.attributes['eventbus.result'], 'success', `${id}: never a failed message`);
      t.equal(all.filter((x) => x.traceId === s!.traceId).length, 1, `${id}: a trace of its own`);
    }
  });

  await t.test('replay: the original context is a link, not the parent', async (t) => {
    const report = reports().find((r) => r.queue === 'up' && ![e1.id, e2.id, 'bare-event', 'malformed-traceparent', 'zero-trace'].includes(r.id))!;
    const consumer = processOf('up', report.id)[0]!;
    t.not(consumer.traceId, ORIGINAL_TRACE, 'not in the original trace');
    t.same(
      consumer.links.find((l) => l.traceId === ORIGINAL_TRACE),
      { traceId: ORIGINAL_TRACE, spanId: ORIGINAL_SPAN, attributes: { 'eventbus.link': 'replay_of' } },
      'linked to the original context',
    );
    const replaySpan = byId.get(consumer.parentSpanId!);
    t.equal(replaySpan?.kind, SPAN_KIND.PRODUCER, "its parent is the replay's publish span");
    t.match(replaySpan?.links, [{ traceId: ORIGINAL_TRACE, spanId: ORIGINAL_SPAN }], 'which links to the original too');
  });
});
