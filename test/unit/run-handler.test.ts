// runHandler (eventbus/testing): one message through a definition in this process, with the worker
// thread's own runner: results, captured ctx.publish and ctx.log, timeouts, and the start's errors.
import t from 'tap';
import { z } from 'zod';
import { NonRetryableError, defineHandler } from '../../dist/index.js';
import { runHandler } from '../../dist/testing/run-handler.js';
import { buildEvent, derivedEventId } from '../../dist/event/index.js';

const ev = (type: string, data: unknown) => buildEvent(type, data, 'test');

t.test('success: what ctx.publish sent (ids derived as on a worker) and what ctx.log wrote', async (t) => {
  const lifecycle: string[] = [];
  const def = defineHandler({
    queue: 'email',
    events: ['USER_CREATED'],
    setup: ({ log }) => {
      lifecycle.push('setup');
      log.info('connected');
    },
    teardown: () => void lifecycle.push('teardown'),
    async handle(event, ctx) {
      ctx.log.info({ to: event.data.email, attempt: ctx.receiveCount }, 'email sent');
      ctx.log.debug('details');
      await ctx.publish('EMAIL_SENT', { to: event.data.email });
      await ctx.publish('AUDIT', { what: 'email' }, { subject: 'x' });
      return ctx.queue === 'email' && ctx.signal instanceof AbortSignal;
    },
  });
  const event = ev('USER_CREATED', { email: 'a@example.com' });
  const r = await runHandler(def, event, { receiveCount: 3, messageId: 'm-1' });
  t.equal(r.result, 'success');
  t.equal(r.error, undefined);
  t.same(
    r.published.map((e) => [e.type, e.data, e.id]),
    [
      ['EMAIL_SENT', { to: 'a@example.com' }, derivedEventId(event.id, 'email', 0)],
      ['AUDIT', { what: 'email' }, derivedEventId(event.id, 'email', 1)],
    ],
    'published in order, ids derived from the event, the queue and the position',
  );
  t.equal(r.published[1]!.subject, 'x', 'options pass through');
  t.match(r.logs, [
    { level: 'info', msg: 'connected', queue: 'email' },
    { level: 'info', msg: 'email sent', to: 'a@example.com', attempt: 3, messageId: 'm-1', eventType: 'USER_CREATED', queue: 'email' },
    { level: 'debug', msg: 'details' },
  ]);
  t.same(lifecycle, ['setup', 'teardown'], 'setup before, teardown after, as a thread');
  t.ok(r.durationMs >= 0);
  const again = await runHandler(def, event, { lifecycle: false });
  t.equal(again.result, 'success');
  t.same(lifecycle, ['setup', 'teardown'], 'lifecycle: false runs neither');
});

t.test('the results of the SPEC, and what was thrown as is', async (t) => {
  const boom = new TypeError('boom');
  const def = defineHandler<{ mode: string }>({
    async handle(event, ctx) {
      switch (event.data.mode) {
        case 'false':
          return false;
        case 'throw':
          throw boom;
        case 'reject':
          throw new NonRetryableError('bad address', { cause: boom });
        case 'string':
          throw 'a string';
        case 'slow':
          await new Promise((resolve, reject) => {
            const timer = setTimeout(resolve, 10_000);
            ctx.signal.addEventListener('abort', () => {
              clearTimeout(timer);
              reject(ctx.signal.reason);
            });
          });
          return true;
        case 'stops-early':
          await new Promise((resolve) => ctx.signal.addEventListener('abort', resolve));
          return true;
      }
      return undefined;
    },
  });
  const run = (mode: string, timeoutMs?: number) => runHandler(def, ev('JOB', { mode }), timeoutMs ? { timeoutMs } : {});
  t.equal((await run('ok')).result, 'success', 'undefined is success');
  const f = await run('false');
  t.same([f.result, f.reason, f.error], ['failure', 'handler returned false', undefined]);
  const e = await run('throw');
  t.equal(e.result, 'error');
  t.equal(e.error, boom, 'the thrown value itself');
  t.equal(e.reason, 'TypeError: boom');
  const r = await run('reject');
  t.equal(r.result, 'rejected');
  t.ok(r.error instanceof NonRetryableError);
  t.equal((r.error as Error).cause, boom);
  const s = await run('string');
  t.same([s.result, s.error, s.reason], ['error', 'a string', 'a string was thrown: a string']);
  const slow = await run('slow', 50);
  t.equal(slow.result, 'timeout');
  t.match(slow.reason, /timed out after 50 ms/);
  const early = await run('stops-early', 50);
  t.equal(early.result, 'timeout', 'returning normally after the abort is still a timeout (SPEC)');
});

t.test('schemas: invalid data never reaches handle; a schema that throws is an error', async (t) => {
  let calls = 0;
  const def = defineHandler({
    events: {
      USER_CREATED: z.object({ email: z.email(), tags: z.array(z.string()).default([]) }),
      BROKEN: {
        '~standard': {
          version: 1,
          vendor: 'test',
          validate: () => {
            throw new Error('schema bug');
          },
        },
      },
    },
    handle(event) {
      calls++;
      return event.type === 'USER_CREATED' ? event.data.tags.length === 0 : true;
    },
  });
  t.equal((await runHandler(def, ev('USER_CREATED', { email: 'a@example.com' }))).result, 'success', 'the default applied: the output value');
  const bad = await runHandler(def, ev('USER_CREATED', { email: 'x', tags: [1] }));
  t.equal(bad.result, 'invalid');
  t.same(
    bad.issues?.map((i) => i.path),
    ['email', 'tags[0]'],
  );
  t.match(bad.reason, /^invalid USER_CREATED data: email: .+; tags\[0\]: /);
  t.match(bad.error, { code: 'ERR_EVENT_INVALID' });
  const other = await runHandler(def, ev('SOMETHING_ELSE', {}));
  t.equal(other.result, 'invalid', "a type outside the handler's events");
  t.match(other.reason, /not one of the handler's events \(USER_CREATED, BROKEN\)/);
  const broken = await runHandler(def, ev('BROKEN', {}));
  t.equal(broken.result, 'error');
  t.match(broken.reason, /schema bug/);
  t.equal(calls, 1, 'handle ran for the valid event only');
});

t.test('a definition the start would refuse is refused with the same error', async (t) => {
  const handle = () => true;
  await t.rejects(runHandler({ handle, maxRecieveCount: 3 } as never, ev('A', {})), {
    code: 'ERR_HANDLER_INVALID',
    message: /unknown key "maxRecieveCount" \(did you mean "maxReceiveCount"\?\)/,
  });
  await t.rejects(runHandler({ handle, events: { A: { parse: () => 1 } } } as never, ev('A', {})), {
    code: 'ERR_HANDLER_INVALID',
    message: /events\.A is not a Standard Schema validator/,
  });
  await t.rejects(runHandler({ handle, concurrency: 0 }, ev('A', {})), { code: 'ERR_HANDLER_INVALID', message: /concurrency/ });
  await t.rejects(runHandler({ handle, publishes: 'X' } as never, ev('A', {})), { code: 'ERR_HANDLER_INVALID', message: /publishes/ });
});

t.test('a handler that starts after the shutdown abort reached its thread starts aborted', async (t) => {
  // The abort and a task travel on different channels: the task may arrive after the abort.
  const { HandlerRunner, LoadedHandler } = await import('../../dist/worker/runner.js');
  const { RunTable } = await import('../../dist/worker/run-table.js');
  const { createLogger } = await import('../../dist/log.js');
  const { encodeEvent } = await import('../../dist/event/index.js');
  const log = createLogger({ level: 'silent' });
  let sawAborted: boolean | undefined;
  const def = { handle: (_e: unknown, ctx: { signal: AbortSignal }) => void (sawAborted = ctx.signal.aborted) };
  const runner = new HandlerRunner(
    { log, table: new RunTable(1, Date.now()), threadId: 1, graceMs: 50, sendOutcomes: () => {}, publish: () => Promise.reject(new Error('no')) },
    new Map([['q', new LoadedHandler('q', def, log)]]),
  );
  runner.abortAll(new Error('supervisor shutting down'));
  const { body } = encodeEvent(ev('A', {}));
  const out = await runner.run({ taskId: 1, queue: 'q', queueArn: 'arn:q', topicArn: null, timeoutMs: 1_000, items: [{ row: 0, messageId: 'm', receiveCount: 1, body }] });
  t.equal(sawAborted, true, 'its signal is already aborted');
  t.equal(out.results[0]![1].result, 'timeout', 'and having taken its signal, its result is timeout (released, run again)');
});
