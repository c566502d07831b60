// eventbus/testing as a user's project uses it: a temp project that imports `eventbus/testing`
// through the package's exports, compiled .mjs handlers, and test files run with `node --test` in
// real child processes. Asserted on their exit status and output.
import t, { type Test } from 'tap';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../helpers/process.js';
import { userProject, type RunResult, type UserProject } from '../helpers/user-project.js';

const EMAIL_HANDLER = `import { BroadcastChannel } from 'node:worker_threads';
import { defineHandler } from '@eventbus-sqs/eventbus';

// Tells the test file what the handler received (worker threads and the main thread share it).
const seen = new BroadcastChannel('user-app-seen');
seen.unref();

export default defineHandler({
  events: ['USER_CREATED'],
  handle(event, ctx) {
    seen.postMessage({ queue: ctx.queue, event });
    return true;
  },
});
`;

const BILLING_HANDLER = `import { defineHandler } from '@eventbus-sqs/eventbus';

export default defineHandler({
  events: ['ORDER_PLACED'],
  handle(event) {
    return event.data.paid === true;
  },
});
`;

const BUS_TEST = `import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BroadcastChannel } from 'node:worker_threads';
import { makeEvent, startTestBus } from '@eventbus-sqs/eventbus/testing';

const handlersDir = new URL('./handlers/', import.meta.url);

async function until(what, fn, ms = 5000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error('timed out waiting for ' + what);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('a publish reaches the handler, waitFor resolves with success, and makeEvent equals what it received', async (t) => {
  const received = new Map();
  const channel = new BroadcastChannel('user-app-seen');
  channel.onmessage = (m) => received.set(m.data.event.id, m.data);
  t.after(() => channel.close());
  const bus = await startTestBus({ handlersDir });
  t.after(() => bus.stop());
  const data = { email: 'ada@example.com', at: new Date(0), tags: ['a', 1, null], dropped: undefined };
  const published = await bus.publish('USER_CREATED', data, { subject: 'user/1', extensions: { tenant: 'acme' } });
  const [r, ...more] = await bus.waitFor({ eventId: published.id });
  assert.equal(more.length, 0);
  assert.equal(r.result, 'success');
  assert.equal(r.queue, 'email');
  assert.equal(r.eventType, 'USER_CREATED');
  assert.equal(r.receiveCount, 1);
  assert.equal(r.error, undefined);
  assert.match(r.messageId, /^[0-9a-f-]{36}$/);
  assert.ok(r.durationMs >= 0);
  const got = await until('the handler to report', () => received.get(published.id));
  assert.equal(got.queue, 'email');
  const made = makeEvent('USER_CREATED', data, { subject: 'user/1', extensions: { tenant: 'acme' } });
  const { id: gotId, time: gotTime, ...gotRest } = got.event;
  const { id: madeId, time: madeTime, ...madeRest } = made;
  assert.deepEqual(madeRest, gotRest);
  assert.equal(gotId, published.id);
  assert.match(madeId, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal(typeof madeTime, 'string');
  assert.equal(new Date(madeTime).toISOString(), madeTime);
  assert.equal(gotTime, published.time);
  console.log('# received ' + JSON.stringify(gotRest));
});

test('a handler that returns false is a failure in results', async (t) => {
  const bus = await startTestBus({ handlersDir });
  t.after(() => bus.stop());
  const paid = await bus.publish('ORDER_PLACED', { paid: true });
  const unpaid = await bus.publish('ORDER_PLACED', { paid: false });
  const [r] = await bus.waitFor({ eventId: unpaid.id });
  assert.equal(r.result, 'failure');
  assert.equal(r.queue, 'billing');
  assert.match(r.error, /returned false/);
  await bus.waitFor({ eventId: paid.id, result: 'success' });
  assert.deepEqual(
    bus.results.filter((x) => x.queue === 'billing' && x.receiveCount === 1).map((x) => [x.eventId, x.result]).sort(),
    [[paid.id, 'success'], [unpaid.id, 'failure']].sort(),
  );
});

test('two buses at once do not see each other', async (t) => {
  const [a, b] = await Promise.all([startTestBus({ handlersDir }), startTestBus({ handlersDir })]);
  t.after(() => Promise.all([a.stop(), b.stop()]));
  assert.notEqual(a.endpoint, b.endpoint);
  assert.notEqual(a.httpUrl, b.httpUrl);
  assert.notEqual(a.topic, b.topic);
  assert.notEqual(a.queuePrefix, b.queuePrefix);
  const [ea, eb] = await Promise.all([a.publish('USER_CREATED', { bus: 'a' }), b.publish('USER_CREATED', { bus: 'b' })]);
  await Promise.all([a.waitFor({ eventId: ea.id }), b.waitFor({ eventId: eb.id })]);
  await assert.rejects(a.waitFor({ eventId: eb.id }, { timeoutMs: 1000 }), /timed out after 1000 ms/);
  await assert.rejects(a.waitFor({ eventID: ea.id }), /^TypeError: waitFor: unknown filter field eventID \\(fields: queue, type, eventId, result, count\\)$/);
  assert.deepEqual(a.results.map((r) => r.eventId), [ea.id]);
  assert.deepEqual(b.results.map((r) => r.eventId), [eb.id]);
});

test('handlerFiles runs only the listed handler modules', async (t) => {
  const bus = await startTestBus({ handlerFiles: [new URL('./handlers/billing.mjs', import.meta.url)] });
  t.after(() => bus.stop());
  assert.deepEqual(bus.queues.map((q) => [q.queue, q.queueName, q.events]), [['billing', bus.queuePrefix + 'billing', ['ORDER_PLACED']]]);
  const e = await bus.publish('ORDER_PLACED', { paid: true });
  assert.equal((await bus.waitFor({ eventId: e.id }))[0].result, 'success');
  const health = await fetch(bus.httpUrl + '/readyz');
  assert.equal(health.status, 200);
});

test('a handlers folder that does not exist fails the start with the loader error', async () => {
  await assert.rejects(startTestBus({ handlersDir: './no-such-handlers' }), (err) => {
    assert.equal(err.code, 'ERR_HANDLERS_DIR');
    assert.match(err.message, /^handlers folder \\/.*\\/no-such-handlers cannot be read \\(did you run npm run build\\?\\)$/);
    return true;
  });
});
`;

const TIMEOUT_TEST = `import { test } from 'node:test';
import { startTestBus } from '@eventbus-sqs/eventbus/testing';

test('waits for an event no handler subscribes to', async (t) => {
  const bus = await startTestBus({ handlersDir: new URL('./handlers/', import.meta.url), timeoutMs: 1500 });
  t.after(() => bus.stop());
  await bus.publish('ORDER_PLACED', { paid: false });
  await bus.waitFor({ result: 'failure' });
  await bus.publish('USER_DELETED', { id: 1 });
  await bus.waitFor({ type: 'USER_DELETED' });
});
`;

const EXIT_SCRIPT = `import { startTestBus } from '@eventbus-sqs/eventbus/testing';

const bus = await startTestBus({ handlersDir: './handlers' });
const e = await bus.publish('USER_CREATED', { email: 'ada@example.com' });
await bus.waitFor({ eventId: e.id });
await bus.stop();
console.log('stopped at ' + Date.now());
`;

const MISSING_EMULATOR_SCRIPT = `import { startTestBus } from '@eventbus-sqs/eventbus/testing';

try {
  await startTestBus({ handlersDir: './handlers' });
  console.log('started');
} catch (err) {
  console.log(err.code + ': ' + err.message);
}
`;

const TYPED_TEST = `import { test } from 'node:test';
import { defineHandler, type CloudEvent } from '@eventbus-sqs/eventbus';
import { makeEvent, runHandler, startTestBus, type HandlerResult, type RunHandlerResult, type TestBus, type TestResult } from '@eventbus-sqs/eventbus/testing';

test('typed use of the kit', async () => {
  const bus: TestBus = await startTestBus({
    handlersDir: new URL('./handlers/', import.meta.url),
    config: { concurrency: 4, retry: { baseDelaySec: 1 }, queues: { email: { timeoutMs: 1_000 } }, http: { port: 0 } },
    timeoutMs: 5_000,
  });
  const files: TestBus = await startTestBus({ handlerFiles: ['handlers/email.mjs', new URL('./handlers/billing.mjs', import.meta.url)] });
  const published: CloudEvent<{ email: string }> = await bus.publish('USER_CREATED', { email: 'ada@example.com' }, { subject: 'u1' });
  const results: TestResult[] = await bus.waitFor({ eventId: published.id, result: ['success', 'failure'], count: 1 }, { timeoutMs: 2_000 });
  const first: HandlerResult = results[0]!.result;
  const byPredicate: TestResult[] = await bus.waitFor((r) => r.queue === 'email' && r.receiveCount > 1);
  const made = makeEvent('USER_CREATED', { email: 'ada@example.com' }, { id: 'e1', time: new Date(), extensions: { tenant: 'acme' } });
  const email: string = made.data.email;
  const handler = defineHandler<{ email: string }>({ handle: (event) => event.data.email.length > 0 });
  const ok: unknown = handler.handle(made, {} as never);
  const run: RunHandlerResult = await runHandler(handler, made, { receiveCount: 2, timeoutMs: 100 });
  const runResult: HandlerResult = run.result;
  // @ts-expect-error not an option of runHandler
  await runHandler(handler, made, { retries: 2 });
  const where: string = bus.endpoint + bus.httpUrl + bus.aws.endpoint + bus.aws.credentials.accessKeyId + bus.ports.http + bus.ports.emulator;
  const dlq: string | null = bus.queues[0]!.dlqUrl;
  // @ts-expect-error one of handlersDir and handlerFiles, not both
  await startTestBus({ handlersDir: 'handlers', handlerFiles: ['handlers/email.mjs'] });
  // @ts-expect-error the kit sets the endpoint itself
  await startTestBus({ handlersDir: 'handlers', config: { endpoint: 'http://127.0.0.1:4566' } });
  // @ts-expect-error not a handler result
  await bus.waitFor({ result: 'succeeded' });
  // @ts-expect-error results are read-only
  bus.results.push(results[0]!);
  void [first, byPredicate, email, ok, where, dlq, runResult];
  await Promise.all([bus.stop(), files.stop()]);
});
`;

function project(t: Test, options?: { fauxqs?: boolean }): UserProject {
  const p = userProject(options);
  t.teardown(() => p.remove());
  p.write('handlers/email.mjs', EMAIL_HANDLER);
  p.write('handlers/billing.mjs', BILLING_HANDLER);
  // Where a TypeScript project's build puts them (the README's example reads them there).
  p.write('dist/handlers/email.mjs', EMAIL_HANDLER);
  p.write('dist/handlers/billing.mjs', BILLING_HANDLER);
  return p;
}

/** Diagnostics of a child's run, shown when an assertion on it fails. */
const TSC = join(ROOT, 'node_modules/typescript/bin/tsc');
const TSCONFIG = { target: 'ES2022', module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, skipLibCheck: false, types: ['node'] };

const show = (r: RunResult) => ({ signal: r.signal, timedOut: r.timedOut, output: r.out });

t.test('a user test file with node --test: publish, results, makeEvent, two buses, handlerFiles, a missing folder', async (t) => {
  const p = project(t);
  p.write('test/bus.test.mjs', BUS_TEST.replace(/\.\/handlers\//g, '../handlers/'));
  const r = await p.run(['--test', '--test-reporter=tap', 'test/bus.test.mjs'], { timeoutMs: 90_000 });
  t.equal(r.code, 0, 'exit status 0', show(r));
  t.notOk(r.timedOut, 'the test process exited by itself');
  t.match(r.out, /^# pass 5$/m);
  t.match(r.out, /^# fail 0$/m);
  // What the handler received: JSON's view of the data, the CloudEvents attributes as published.
  t.match(r.out, /# received \{"specversion":"1\.0","source":"eventbus-test","type":"USER_CREATED","datacontenttype":"application\/json","subject":"user\/1","data":\{"email":"ada@example\.com","at":"1970-01-01T00:00:00\.000Z","tags":\["a",1,null\]\},"tenant":"acme"\}/);
});

t.test('a waitFor that times out fails the user test with what the bus saw', async (t) => {
  const p = project(t);
  p.write('timeout.test.mjs', TIMEOUT_TEST);
  const r = await p.run(['--test', '--test-reporter=tap', 'timeout.test.mjs'], { timeoutMs: 60_000 });
  t.equal(r.code, 1, 'exit status 1: the test failed', show(r));
  t.notOk(r.timedOut, 'the test process exited by itself', show(r));
  t.match(r.out, /^# fail 1$/m);
  t.match(r.out, /waitFor: timed out after 1500 ms while waiting for 1 result\(s\) matching \{"type":"USER_DELETED"\}; 0 matched\./);
  // The failure may have been retried meanwhile (its backoff is 1-2 s): one result or two.
  t.match(r.out, /Results so far \([12]\):/);
  t.match(r.out, /billing ORDER_PLACED failure \(receive 1, event [0-9a-f-]{36}, handler returned false\)/);
  t.match(r.out, /No handler subscribes to USER_DELETED: billing <- ORDER_PLACED; email <- USER_CREATED\./);
  // The stack leads to the test's own waitFor line, not only the kit's timer.
  t.match(r.out, /stack: \|-[^]*timeout\.test\.mjs:10:\d+/);
});

t.test('after stop() the process exits by itself', async (t) => {
  const p = project(t);
  p.write('exit.mjs', EXIT_SCRIPT);
  const r = await p.run(['exit.mjs'], { timeoutMs: 30_000 });
  t.equal(r.code, 0, 'exit status 0', show(r));
  const stoppedAt = Number(/stopped at (\d+)/.exec(r.out)?.[1]);
  t.ok(stoppedAt > 0, 'stop() resolved', show(r));
  // Nothing left running: no emulator socket, worker thread, timer or SDK agent holds the loop.
  t.ok(r.exitedAtMs - stoppedAt < 2_000, `exited ${r.exitedAtMs - stoppedAt} ms after stop()`);
});

t.test('without fauxqs in the project, startTestBus says to install it', async (t) => {
  const p = project(t, { fauxqs: false });
  p.write('start.mjs', MISSING_EMULATOR_SCRIPT);
  const r = await p.run(['start.mjs'], { timeoutMs: 30_000 });
  t.equal(r.code, 0, 'exit status 0', show(r));
  t.match(r.out, /^ERR_EMULATOR_MISSING: startTestBus runs the embedded SNS\/SQS emulator, fauxqs, which is not installed in this project: npm i -D fauxqs \(on Node 20: npm i -D fauxqs@1\.9\.2\)$/m);
  t.notMatch(r.out, /started/);
});

t.test('user TypeScript type-checks against the published declarations', async (t) => {
  const p = project(t);
  p.write('test/typed.test.ts', TYPED_TEST);
  p.write(
    'tsconfig.json',
    JSON.stringify({
      compilerOptions: { ...TSCONFIG, noEmit: true },
      include: ['test/**/*.ts'],
    }),
  );
  const r = await p.run([TSC, '-p', 'tsconfig.json'], { timeoutMs: 120_000 });
  t.equal(r.code, 0, 'exit status 0', show(r));
  t.equal(r.out.trim(), '');
  // The check can fail: a wrong use of the kit is an error.
  p.write('test/wrong.test.ts', `import { startTestBus } from '@eventbus-sqs/eventbus/testing';\nawait startTestBus({ handlers: './handlers' });\n`);
  const wrong = await p.run([TSC, '-p', 'tsconfig.json'], { timeoutMs: 120_000 });
  t.equal(wrong.code, 2, 'tsc exit status 2: errors', show(wrong));
  t.match(wrong.out, /test\/wrong\.test\.ts\(2,\d+\): error TS2353: Object literal may only specify known properties, and 'handlers' does not exist in type 'TestBusOptions'/);
});

t.test("the README's startTestBus example passes in a user's project", async (t) => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const blocks = [...readme.matchAll(/```ts\n([^]*?)```/g)].map((m) => m[1]!).filter((b) => b.includes('startTestBus, type TestBus'));
  t.equal(blocks.length, 1, 'one startTestBus example in README.md');
  const p = project(t);
  p.write('test/readme.test.ts', blocks[0]!);
  p.write('tsconfig.json', JSON.stringify({ compilerOptions: TSCONFIG, include: ['test/**/*.ts'] }));
  const tsc = await p.run([TSC, '-p', 'tsconfig.json'], { timeoutMs: 120_000 });
  t.equal(tsc.code, 0, 'it compiles', show(tsc));
  const r = await p.run(['--test', '--test-reporter=tap', 'test/readme.test.js'], { timeoutMs: 60_000 });
  t.equal(r.code, 0, 'exit status 0', show(r));
  t.notOk(r.timedOut, 'the test process exited by itself');
  t.match(r.out, /^# pass 2$/m);
});

t.test("the README's runHandler example is the example handler's own test (run by npm test)", async (t) => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const blocks = [...readme.matchAll(/```ts\n([^]*?)```/g)].map((m) => m[1]!).filter((b) => b.includes('runHandler(email'));
  t.equal(blocks.length, 1, 'one runHandler example in README.md');
  const own = readFileSync(join(ROOT, 'handlers', 'email.test.ts'), 'utf8');
  t.ok(own.includes(blocks[0]!.trim().split('\n').slice(5).join('\n')), 'its tests are copied from handlers/email.test.ts as they are');
  for (const line of blocks[0]!.trim().split('\n').slice(0, 5)) t.ok(own.includes(line), `and its import: ${line}`);
});
