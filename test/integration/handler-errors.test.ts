// Issue 13 on the emulator with real worker threads: what a handler throws keeps its stack and cause
// chain in the log and in TASK_WORKER_FAILED; a NonRetryableError and data failing its schema are
// dead-lettered at once (body and attributes kept, the reason added), counted, and never lost when
// the DLQ cannot take them.
import t, { type Test } from 'tap';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { DeleteQueueCommand, ReceiveMessageCommand, type Message } from '@aws-sdk/client-sqs';
import { createLogger } from '../../dist/log.js';
import { startBus, waitFor, type Bus, type HandlerSpec } from '../helpers/bus.js';

const SCHEMA = fileURLToPath(new URL('../../test/fixtures/handlers/schema.mjs', import.meta.url));

/** The supervisor's log lines (main thread), as JSON objects. */
function captureLog(): { lines: Array<Record<string, any>>; log: ReturnType<typeof createLogger> } {
  const lines: Array<Record<string, any>> = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString('utf8').split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, any>);
      cb();
    },
  });
  return { lines, log: createLogger({ level: 'info', destination }) };
}

async function start(t: Test, handlers: HandlerSpec[], config: Record<string, unknown> = {}): Promise<Bus & { lines: Array<Record<string, any>> }> {
  const { lines, log } = captureLog();
  const bus = await startBus(handlers, { config: { retry: { baseDelaySec: 1, maxDelaySec: 1 }, ...config }, supervisor: { log } });
  t.teardown(() => bus.stop());
  return Object.assign(bus, { lines });
}

async function drain(bus: Bus, queue: string, dlq: boolean, want: number, timeoutMs = 20_000): Promise<Message[]> {
  const got: Message[] = [];
  const url = await bus.queueUrl(queue, dlq);
  await waitFor(
    `${want} message(s) in ${queue}${dlq ? '-dlq' : ''}`,
    async () => {
      const r = await bus.emu.sqs.send(
        new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 60, MessageAttributeNames: ['All'], MessageSystemAttributeNames: ['All'] }),
      );
      got.push(...(r.Messages ?? []));
      return got.length >= want;
    },
    timeoutMs,
  );
  return got;
}

const metric = async (bus: Bus, name: string) => bus.sup.metrics.registry.getSingleMetricAsString(name);
const failureEvents = (bus: Bus) => bus.started('failures').map((s) => s.data as Record<string, any>);

t.test('a thrown error keeps its stack and cause chain: in the log line and in TASK_WORKER_FAILED', async (t) => {
  const bus = await start(t, [
    { queue: 'work', events: ['JOB'], maxReceiveCount: 5 },
    { queue: 'failures', events: ['TASK_WORKER_FAILED'] },
  ]);
  const event = await bus.publisher.createEvent('JOB', { fail: 'cause', failTimes: 1, message: 'could not charge' });
  await waitFor('the retry succeeded', () => bus.ended('work').length === 1, 20_000);
  await waitFor('the failure event', () => failureEvents(bus).length === 1, 10_000);

  const line = bus.lines.find((l) => l.msg === 'handler failed; will retry');
  t.ok(line, 'the failure is logged');
  t.equal(line!.error, 'Error: could not charge', 'the one-line reason stays in `error`');
  t.equal(line!.err?.type, 'Error', "pino's err serializer: the class name");
  t.match(line!.err?.message, /could not charge/);
  t.match(line!.err?.stack, /behave\.mjs:\d+:\d+/, 'the stack names the handler file, line and column');
  t.match(line!.err?.stack, /caused by: TypeError: inner failure/, 'the cause chain is in the stack');
  t.match(line!.err?.message, /inner failure/, "and in the message (pino's serializer appends causes)");
  t.equal(line!.eventType, 'JOB');
  t.equal(line!.result, 'error');

  const f = failureEvents(bus)[0]!;
  t.equal(f.eventId, event.id);
  t.equal(f.error, 'Error: could not charge', 'error is name: message');
  t.match(f.stack, /^Error: could not charge\n\s+at .*behave\.mjs:\d+:\d+/, 'stack starts with the error and its frames');
  t.match(f.stack, /caused by: TypeError: inner failure/);
  t.match(f.stack, /caused by: NonError: a string was thrown: a string cause/, 'a cause that is not an Error is described');
  t.ok(Buffer.byteLength(f.stack) <= 2048, 'at most 2 KiB');
});

t.test('values that are not Errors are described; a huge stack is cut to 2 KiB on a character boundary', async (t) => {
  const bus = await start(t, [
    { queue: 'work', events: ['JOB'], maxReceiveCount: 5 },
    { queue: 'failures', events: ['TASK_WORKER_FAILED'] },
  ]);
  await bus.publisher.createEvent('JOB', { fail: 'string', failTimes: 1, message: 'plain string thrown' });
  await bus.publisher.createEvent('JOB', { fail: 'object', failTimes: 1, message: 'object thrown' });
  await bus.publisher.createEvent('JOB', { fail: 'huge-stack', failTimes: 1 });
  await waitFor('three failure events', () => failureEvents(bus).length === 3, 20_000);
  const byError = (re: RegExp) => failureEvents(bus).find((f) => re.test(f.error));
  const s = byError(/plain string thrown/);
  t.equal(s?.error, 'a string was thrown: plain string thrown');
  t.equal(s?.stack, null, 'nothing with a stack was thrown');
  const o = byError(/object thrown/);
  t.equal(o?.error, 'an object was thrown: {"code":42,"why":"object thrown"}');
  const h = byError(/a long stack/);
  t.ok(h, 'the long stack failure');
  t.ok(Buffer.byteLength(h!.stack) <= 2048, `cut to 2 KiB (${Buffer.byteLength(h!.stack)} bytes)`);
  t.ok(Buffer.byteLength(h!.stack) > 2000, 'and not much less');
  t.notMatch(h!.stack, /\uFFFD/, 'no broken character at the cut');
  t.match(h!.stack, /…$/, 'the cut is marked');
  const line = bus.lines.find((l) => l.msg === 'handler failed; will retry' && /plain string thrown/.test(l.err?.message ?? ''));
  t.equal(line?.err?.type, 'NonError', 'logged as a NonError');
});

t.test('NonRetryableError: rejected, dead-lettered at once with its body, attributes and reason, counted', async (t) => {
  const bus = await start(t, [
    { queue: 'work', events: ['JOB'], maxReceiveCount: 5 },
    { queue: 'failures', events: ['TASK_WORKER_FAILED'] },
  ]);
  const body = JSON.stringify({ specversion: '1.0', id: 'evt-reject-1', source: 'test', type: 'JOB', time: new Date().toISOString(), data: { fail: 'reject', message: 'bad address' } });
  await bus.sendRaw('work', body, { 'event-type': 'JOB', tenant: 'acme' });
  const [m] = await drain(bus, 'work', true, 1);
  t.equal(m!.Body, body, 'the DLQ holds the same body');
  t.equal(m!.MessageAttributes?.['event-type']?.StringValue, 'JOB', 'and its attributes');
  t.equal(m!.MessageAttributes?.tenant?.StringValue, 'acme');
  t.match(m!.MessageAttributes?.['eventbus-dead-letter-reason']?.StringValue, /^rejected: NonRetryableError: bad address/, 'plus the reason');
  t.equal(bus.started('work').length, 1, 'one receive spent, not maxReceiveCount');
  await waitFor('the source queue is empty', async () => {
    const d = await bus.depth('work');
    return d.visible + d.inFlight === 0;
  });
  t.match(await metric(bus, 'eventbus_messages_dead_lettered_total'), /queue="work",reason="rejected"\} 1/);
  t.match(await metric(bus, 'eventbus_handler_results_total'), /result="rejected"\} 1/);
  await waitFor('the failure event', () => failureEvents(bus).length === 1, 10_000);
  t.equal(failureEvents(bus)[0]!.result, 'rejected');
  t.match(failureEvents(bus)[0]!.stack, /caused by: RangeError: the root cause/);
  const line = bus.lines.find((l) => /dead-lettered at once/.test(l.msg));
  t.ok(line, 'logged');
  t.equal(line?.err?.type, 'NonRetryableError');
  t.match(line?.reason, /bad address/);
  // Nothing comes back: a second look after a retry delay finds the message nowhere else.
  await new Promise((r) => setTimeout(r, 1_500));
  t.equal(bus.started('work').length, 1, 'never run again');
});

t.test('data failing its schema is invalid and dead-lettered at once with the issues; valid data arrives validated', async (t) => {
  const bus = await start(t, [
    { queue: 'typed', events: ['USER_CREATED', 'ORDER_PLACED', 'SCHEMA_THROWS', 'ASYNC_CHECKED'], file: SCHEMA, maxReceiveCount: 5 },
    { queue: 'failures', events: ['TASK_WORKER_FAILED'] },
  ]);
  await bus.publisher.createEvent('USER_CREATED', { email: 'a@example.com', age: '42' });
  await bus.publisher.createEvent('USER_CREATED', { email: 'not an email' });
  await bus.publisher.createEvent('ORDER_PLACED', { orderId: 'x', lines: [{ sku: 1 }] });
  await bus.publisher.createEvent('ASYNC_CHECKED', { ok: true });
  await bus.publisher.createEvent('ASYNC_CHECKED', { ok: false });
  const dead = await drain(bus, 'typed', true, 3);
  const reasons = dead.map((m) => m.MessageAttributes?.['eventbus-dead-letter-reason']?.StringValue ?? '').sort();
  t.equal(reasons.length, 3);
  t.match(reasons.find((r) => r.includes('ORDER_PLACED')), /^invalid: invalid ORDER_PLACED data: orderId: .+; lines\[0\]\.sku: .+/, 'valibot issues with their paths');
  t.match(reasons.find((r) => r.includes('USER_CREATED')), /^invalid: invalid USER_CREATED data: email: /, 'zod issues with their paths');
  t.match(reasons.find((r) => r.includes('ASYNC_CHECKED')), /ok: ok must be true/, 'an async validator');
  await waitFor('the valid ones handled', () => bus.ended('typed').length === 2, 10_000);
  const user = bus.ended('typed').find((s) => s.type === 'USER_CREATED');
  t.same(user?.data, { email: 'a@example.com', age: 42 }, "the handler got the schema's output (age coerced to a number)");
  const checked = bus.ended('typed').find((s) => s.type === 'ASYNC_CHECKED');
  t.same(checked?.data, { ok: true, checked: 'async' });
  t.equal(bus.started('typed').length, 2, 'invalid data never reached handle');
  t.match(await metric(bus, 'eventbus_messages_dead_lettered_total'), /queue="typed",reason="invalid"\} 3/);
  const line = bus.lines.find((l) => l.msg === 'event failed its schema; dead-lettered at once' && l.eventType === 'ORDER_PLACED');
  t.ok(line, 'logged');
  t.same(
    line?.issues?.map((i: { path: string }) => i.path),
    ['orderId', 'lines[0].sku'],
    'the log line lists the issues with their paths',
  );
});

t.test('a schema that throws is an error, retried (the schema is broken, not the event)', async (t) => {
  const bus = await start(t, [
    { queue: 'typed', events: ['USER_CREATED', 'ORDER_PLACED', 'SCHEMA_THROWS', 'ASYNC_CHECKED'], file: SCHEMA, maxReceiveCount: 2 },
    { queue: 'failures', events: ['TASK_WORKER_FAILED'] },
  ]);
  await bus.publisher.createEvent('SCHEMA_THROWS', { any: 1 });
  await waitFor('two failure events', () => failureEvents(bus).length === 2, 20_000);
  t.same(
    failureEvents(bus).map((f) => [f.result, f.receiveCount]),
    [
      ['error', 1],
      ['error', 2],
    ],
    'error, retried up to maxReceiveCount',
  );
  t.match(failureEvents(bus)[0]!.error, /the schema itself is broken/);
  t.notMatch(await metric(bus, 'eventbus_messages_dead_lettered_total'), /typed/, 'not dead-lettered at once');
});

t.test('ctx.publish validates against the handler\'s publishes before any call', async (t) => {
  const bus = await start(t, [
    { queue: 'typed', events: ['USER_CREATED', 'ORDER_PLACED', 'SCHEMA_THROWS', 'ASYNC_CHECKED'], file: SCHEMA, maxReceiveCount: 5 },
    { queue: 'welcomed', events: ['USER_WELCOMED', 'UNDECLARED'] },
    { queue: 'failures', events: ['TASK_WORKER_FAILED'] },
  ]);
  await bus.publisher.createEvent('USER_CREATED', { email: 'a@example.com', publish: [{ type: 'USER_WELCOMED', data: { email: 'a@example.com' } }] });
  await bus.publisher.createEvent('USER_CREATED', { email: 'b@example.com', failTimes: 0, publish: [{ type: 'USER_WELCOMED', data: { email: 'nope' } }] });
  await bus.publisher.createEvent('USER_CREATED', { email: 'c@example.com', publish: [{ type: 'UNDECLARED', data: {} }] });
  await waitFor('the valid publish arrived', () => bus.ended('welcomed').length === 1, 15_000);
  await waitFor('two failure events', () => failureEvents(bus).length >= 2, 15_000);
  const errors = failureEvents(bus).map((f) => f.error as string);
  t.ok(errors.some((e) => /ERR_EVENT_INVALID|event USER_WELCOMED is invalid: email: /.test(e)), 'invalid data for a declared type is refused');
  t.ok(errors.some((e) => /UNDECLARED.*not declared in this handler's publishes/.test(e)), 'an undeclared type is refused');
  t.equal(bus.started('welcomed').length, 1, 'neither reached SNS');
});

t.test('when the DLQ cannot take it, a rejected message is retried as any failure: nothing is lost', async (t) => {
  const bus = await start(t, [{ queue: 'work', events: ['JOB'], maxReceiveCount: 10 }]);
  // A real fault, no mock: the DLQ is deleted after the supervisor looked it up, so the send fails.
  await bus.emu.sqs.send(new DeleteQueueCommand({ QueueUrl: await bus.queueUrl('work', true) }));
  await bus.publisher.createEvent('JOB', { fail: 'reject', failTimes: 1, message: 'no dlq' });
  await waitFor('retried and handled', () => bus.ended('work').length === 1, 20_000);
  t.same(
    bus.started('work').map((s) => s.receiveCount),
    [1, 2],
    'received again after the failed dead-letter send',
  );
  t.ok(
    bus.lines.some((l) => l.msg === 'dead-letter send failed; the message is retried'),
    'the failed send is logged',
  );
  t.notMatch(await metric(bus, 'eventbus_messages_dead_lettered_total'), /queue="work"/, 'not counted as dead-lettered');
});

