// Typed events (issue 13): with `events` as a map of Standard Schema validators, `event` is a union
// discriminated on `type`, `ctx.publish` is typed by `publishes`, and the publisher by `schemas`.
// The type-level checks are `@ts-expect-error` lines: `tsc -b test` (part of `npm test`) fails if
// one of them compiles, or if a line without one does not. The runtime checks below run the same
// definitions through runHandler.
import t from 'tap';
import { z } from 'zod';
import * as v from 'valibot';
import { SNSClient } from '@aws-sdk/client-sns';
import { createPublisher, defineHandler, type CloudEvent } from '../../dist/index.js';
import { runHandler } from '../../dist/testing/run-handler.js';
import { buildEvent } from '../../dist/event/index.js';

const seen: string[] = [];

const typed = defineHandler({
  queue: 'typed',
  events: {
    USER_CREATED: z.object({ email: z.email() }),
    ORDER_PLACED: v.object({ orderId: v.number(), lines: v.array(v.string()) }),
  },
  publishes: { USER_WELCOMED: z.object({ email: z.string() }) },
  async handle(event, ctx) {
    switch (event.type) {
      case 'USER_CREATED': {
        const email: string = event.data.email;
        // @ts-expect-error USER_CREATED's data has no orderId
        void event.data.orderId;
        seen.push(email);
        await ctx.publish('USER_WELCOMED', { email });
        break;
      }
      case 'ORDER_PLACED': {
        const id: number = event.data.orderId;
        const lines: string[] = event.data.lines;
        // @ts-expect-error ORDER_PLACED's data has no email
        void event.data.email;
        seen.push(`${id}:${lines.length}`);
        break;
      }
      // @ts-expect-error not one of the handler's event types
      case 'SOMETHING_ELSE':
        break;
    }
    if (false as boolean) {
      // @ts-expect-error USER_WELCOMED's email is a string
      await ctx.publish('USER_WELCOMED', { email: 1 });
      // @ts-expect-error not declared in publishes
      await ctx.publish('NOT_DECLARED', {});
    }
    return true;
  },
});

// The list form stays untyped: any type, data as the type argument says.
const untyped = defineHandler<{ n: number }>({
  events: ['A', 'B'],
  handle(event: CloudEvent<{ n: number }>, ctx) {
    const n: number = event.data.n;
    const type: string | null = event.type;
    void ctx.publish('ANYTHING', { any: 'data' });
    return n > 0 && type !== null;
  },
});

// A declared list of published types without schemas: the types are checked, the data is not.
defineHandler({
  events: ['A'],
  publishes: ['DONE'],
  async handle(_event, ctx) {
    await ctx.publish('DONE', { whatever: true });
    // @ts-expect-error not declared in publishes
    await ctx.publish('OTHER', {});
  },
});

// @ts-expect-error a schema map's handle cannot take an event type outside the map
defineHandler({ events: { A: z.object({}) }, handle: (event: CloudEvent<unknown, 'B'>) => event });

t.test('the publisher is typed by its schemas', async (t) => {
  const publisher = createPublisher({
    sns: new SNSClient({ region: 'us-east-1', endpoint: 'http://127.0.0.1:9', credentials: { accessKeyId: 'x', secretAccessKey: 'x' }, maxAttempts: 1 }),
    topic: 'arn:aws:sns:us-east-1:000000000000:never-called',
    source: 'test',
    schemas: { USER_CREATED: z.object({ email: z.email() }) },
  });
  if (false as boolean) {
    await publisher.createEvent('USER_CREATED', { email: 'a@example.com' });
    // @ts-expect-error email must be a string
    await publisher.createEvent('USER_CREATED', { email: 1 });
    // Types without a schema are published unchecked.
    await publisher.createEvent('OTHER', { anything: 1 });
  }
  // Invalid data fails before any call: the endpoint above refuses connections, so reaching it
  // would be an ERR_AWS/network error, not ERR_EVENT_INVALID.
  await t.rejects(publisher.createEvent('USER_CREATED', { email: 'nope' } as { email: string }), {
    code: 'ERR_EVENT_INVALID',
    message: /event USER_CREATED is invalid: email: /,
  });
  await t.rejects(publisher.publishBatch([{ type: 'USER_CREATED', data: { email: 'a@example.com' } }, { type: 'USER_CREATED', data: { email: 2 } }]), {
    code: 'ERR_EVENT_INVALID',
  });
  t.throws(() => createPublisher({ sns: new SNSClient({ region: 'us-east-1' }), topic: 't', source: 's', schemas: { BAD: { parse() {} } as never } }), {
    code: 'ERR_CONFIG_INVALID',
    message: /createPublisher: schemas\.BAD is not a Standard Schema validator/,
  });
});

t.test('the typed handler runs as its types say', async (t) => {
  seen.length = 0;
  const a = await runHandler(typed, buildEvent('USER_CREATED', { email: 'a@example.com' }, 'test'));
  t.equal(a.result, 'success');
  t.same(
    a.published.map((e) => [e.type, e.data]),
    [['USER_WELCOMED', { email: 'a@example.com' }]],
  );
  const b = await runHandler(typed, buildEvent('ORDER_PLACED', { orderId: 7, lines: ['x', 'y'] }, 'test'));
  t.equal(b.result, 'success');
  t.same(seen, ['a@example.com', '7:2']);
  const c = await runHandler(typed, buildEvent('ORDER_PLACED', { orderId: '7', lines: [] }, 'test'));
  t.equal(c.result, 'invalid');
  t.same(c.issues?.map((i) => i.path), ['orderId']);
  t.equal((await runHandler(untyped, buildEvent('A', { n: 1 }, 'test'))).result, 'success');
  t.equal((await runHandler(untyped, buildEvent('A', { n: 0 }, 'test'))).result, 'failure');
});

t.test('a validator that is not a Standard Schema fails the start naming the file and the type', async (t) => {
  const { loadHandlers, resolveHandler } = await import('../../dist/handlers.js');
  const dir = t.testdir({
    'orders.mjs': "export default { events: { ORDER_PLACED: { parse(v) { return v } } }, handle() { return true } }\n",
  });
  await t.rejects(loadHandlers({ handlersDir: dir, queuePrefix: '', concurrency: 10, queues: {} }), {
    code: 'ERR_HANDLER_INVALID',
    message: new RegExp(`handler ${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/orders\\.mjs: events\\.ORDER_PLACED is not a Standard Schema validator`),
  });
  const h = resolveHandler('/x/orders.js', { events: { ORDER_PLACED: z.object({}), ORDER_PAID: v.object({}) }, handle: () => true }, { queuePrefix: '', concurrency: 10, queues: {} });
  t.same(h.events, ['ORDER_PAID', 'ORDER_PLACED'], "the subscription filter is the map's keys");
});
