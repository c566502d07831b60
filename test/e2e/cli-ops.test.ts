// The operator CLI against fauxqs: `status`, `dlq peek`, `dlq redrive`, run as a child process.
import t, { type Test } from 'tap';
import {
  DeleteQueueCommand,
  GetQueueAttributesCommand,
  ReceiveMessageCommand,
  SendMessageCommand,
  SetQueueAttributesCommand,
  type Message,
  type MessageAttributeValue,
} from '@aws-sdk/client-sqs';
import type { TestEmulator } from '../helpers/emulator.js';
import { opsWorld } from '../helpers/ops-world.js';
import { spawnNode } from '../helpers/process.js';

interface Env {
  emu: TestEmulator;
  prefix: string;
  url(queue: string, dlq?: boolean): string;
  cli(...args: string[]): Promise<{ code: number | null; out: string; stdout: string }>;
  depth(url: string): Promise<{ visible: number; inFlight: number; delayed: number }>;
  put(url: string, body: string, attrs?: Record<string, MessageAttributeValue>, delaySec?: number): Promise<string>;
  drain(url: string): Promise<Message[]>;
}

/** An emulator, two handlers (`orders`, `mail`) with their topology provisioned, and a config file for the CLI. */
async function setup(t: Test): Promise<Env> {
  const { emu, prefix, config, url } = await opsWorld(t, 'ops');
  return {
    emu,
    prefix,
    url,
    async cli(...args) {
      const p = spawnNode('bin/eventbus.js', [...args, '--config', config]);
      let stdout = '';
      p.child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
      t.teardown(() => p.kill());
      const exit = await p.exited;
      return { code: exit.code, out: p.output(), stdout };
    },
    async depth(queueUrl) {
      const a =
        (
          await emu.sqs.send(
            new GetQueueAttributesCommand({
              QueueUrl: queueUrl,
              AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible', 'ApproximateNumberOfMessagesDelayed'],
            }),
          )
        ).Attributes ?? {};
      return {
        visible: Number(a.ApproximateNumberOfMessages),
        inFlight: Number(a.ApproximateNumberOfMessagesNotVisible),
        delayed: Number(a.ApproximateNumberOfMessagesDelayed),
      };
    },
    async put(queueUrl, body, attrs, delaySec) {
      const out = await emu.sqs.send(
        new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: body, ...(attrs ? { MessageAttributes: attrs } : {}), ...(delaySec ? { DelaySeconds: delaySec } : {}) }),
      );
      return out.MessageId!;
    },
    async drain(queueUrl) {
      const all: Message[] = [];
      for (;;) {
        const r = await emu.sqs.send(
          new ReceiveMessageCommand({ QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, VisibilityTimeout: 300, MessageAttributeNames: ['All'] }),
        );
        if (!r.Messages?.length) return all;
        all.push(...r.Messages);
      }
    },
  };
}

const event = (type: string, i: number) => JSON.stringify({ specversion: '1.0', id: `ev-${type}-${i}`, source: 'test', type, time: new Date().toISOString(), data: { i } });

/** Attributes of every SQS type, as a message in a DLQ carries them. */
const attrsOf = (i: number): Record<string, MessageAttributeValue> => ({
  'event-type': { DataType: 'String', StringValue: 'ORDER_PLACED' },
  attempt: { DataType: 'Number', StringValue: String(i) },
  blob: { DataType: 'Binary', BinaryValue: Uint8Array.from([0, 1, 2, 255, i]) },
  tenant: { DataType: 'String.tenant', StringValue: `t-${i}` },
});

/** Attributes in a comparable form (Binary as base64). */
const comparable = (attrs: Record<string, MessageAttributeValue> | undefined) =>
  Object.fromEntries(
    Object.entries(attrs ?? {})
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => [k, { DataType: v.DataType, value: v.BinaryValue ? Buffer.from(v.BinaryValue).toString('base64') : v.StringValue }]),
  );

t.test('status: table and --json with depths of queues and DLQs; --fail-on-dlq', async (t) => {
  const env = await setup(t);
  for (let i = 0; i < 3; i++) await env.put(env.url('orders', true), event('ORDER_PLACED', i), attrsOf(i));
  await env.put(env.url('orders'), event('ORDER_PLACED', 10));
  await env.put(env.url('orders'), event('ORDER_PLACED', 11));
  // One of the two in flight (received by "someone"), one delayed message on mail.
  await env.emu.sqs.send(new ReceiveMessageCommand({ QueueUrl: env.url('orders'), MaxNumberOfMessages: 1, VisibilityTimeout: 120 }));
  await env.put(env.url('mail'), event('USER_CREATED', 1), undefined, 120);

  const table = await env.cli('status');
  t.equal(table.code, 0, table.out);
  const lines = table.stdout.split('\n');
  t.match(lines[0], /^QUEUE\s+VISIBLE\s+IN FLIGHT\s+DELAYED\s+OLDEST\s+DLQ VISIBLE\s+DLQ IN FLIGHT$/, 'header');
  t.match(table.stdout, /^orders\s+1\s+1\s+0\s+-\s+3\s+0$/m, 'orders: 1 visible, 1 in flight, 3 in the DLQ');
  t.match(table.stdout, /^mail\s+0\s+0\s+1\s+-\s+0\s+0$/m, 'mail: 1 delayed');
  const header = lines[0]!;
  const row = lines.find((l) => l.startsWith('orders'))!;
  t.equal(row.length, header.length, 'columns are aligned (numbers right-aligned under their header)');
  t.match(table.stdout, /OLDEST "-": not known from SQS/, 'the unknown age is explained');

  const json = await env.cli('status', '--json');
  t.equal(json.code, 0, json.out);
  const rows = JSON.parse(json.stdout) as Array<Record<string, any>>;
  t.ok(Array.isArray(rows));
  t.match(rows.find((r) => r.queue === 'orders'), {
    queue: 'orders',
    queueName: `${env.prefix}orders`,
    exists: true,
    visible: 1,
    inFlight: 1,
    delayed: 0,
    oldestAgeSec: null,
    dlq: { queueName: `${env.prefix}orders-dlq`, exists: true, visible: 3, inFlight: 0, delayed: 0, oldestAgeSec: null },
  });
  t.match(rows.find((r) => r.queue === 'mail'), { visible: 0, inFlight: 0, delayed: 1, dlq: { visible: 0 } });

  const fail = await env.cli('status', '--fail-on-dlq');
  t.equal(fail.code, 1, 'a DLQ with messages fails the check');
  t.match(fail.out, new RegExp(`DLQs hold messages: ${env.prefix}orders-dlq \\(3\\)`));
  t.notMatch(fail.out, /mail-dlq \(/, 'only the DLQs that hold messages are named');

  const failJson = await env.cli('status', '--json', '--fail-on-dlq');
  t.equal(failJson.code, 1);
  t.equal((JSON.parse(failJson.stdout) as unknown[]).length, 2, '--json still prints the array');
});

t.test('status: a missing queue is reported and exits 1; --fail-on-dlq passes on empty DLQs', async (t) => {
  const env = await setup(t);
  const ok = await env.cli('status', '--fail-on-dlq');
  t.equal(ok.code, 0, ok.out);
  await env.emu.sqs.send(new DeleteQueueCommand({ QueueUrl: env.url('mail', true) }));
  const r = await env.cli('status');
  t.equal(r.code, 1);
  t.match(r.stdout, /^mail\s+0\s+0\s+0\s+-\s+missing\s+missing$/m, 'the table shows the missing DLQ');
  t.match(r.stdout, /^orders\s+0\s+0\s+0/m, 'the other queues are still reported');
  t.match(r.out, new RegExp(`missing queues: ${env.prefix}mail-dlq \\(run \`eventbus provision\`\\)`));
  const j = await env.cli('status', '--json');
  t.equal(j.code, 1);
  t.match((JSON.parse(j.stdout) as Array<Record<string, any>>).find((x) => x.queue === 'mail'), { exists: true, dlq: { exists: false, visible: null } });
});

t.test('dlq peek prints the messages and leaves them in the DLQ', async (t) => {
  const env = await setup(t);
  const dlq = env.url('orders', true);
  const ids = [
    await env.put(dlq, event('ORDER_PLACED', 1), attrsOf(1)),
    // The SNS envelope, as subscriptions deliver it.
    await env.put(
      dlq,
      JSON.stringify({
        Type: 'Notification',
        MessageId: 'sns-1',
        TopicArn: 'arn:aws:sns:us-east-1:000000000000:x',
        Message: event('ORDER_SHIPPED', 2),
        Timestamp: new Date().toISOString(),
        MessageAttributes: { 'event-type': { Type: 'String', Value: 'ORDER_SHIPPED' } },
      }),
    ),
    await env.put(dlq, 'not json at all', { 'event-type': { DataType: 'String', StringValue: 'RAW_THING' } }),
  ];

  const r = await env.cli('dlq', 'peek', 'orders', '--raw');
  t.equal(r.code, 0, r.out);
  for (const id of ids) t.match(r.stdout, `message ${id}`, `message ${id} is shown`);
  t.equal(r.stdout.match(/^--- #/gm)?.length, 3, 'each message once');
  t.match(r.stdout, /event type:\s+ORDER_PLACED\n\s+event id:\s+ev-ORDER_PLACED-1\n\s+body form:\s+raw-event\n\s+data:\s+\{"i":1\}/);
  t.match(r.stdout, /event type:\s+ORDER_SHIPPED\n\s+event id:\s+ev-ORDER_SHIPPED-2\n\s+body form:\s+sns-envelope/);
  t.match(r.stdout, /event type:\s+RAW_THING[\s\S]*?data:\s+"not json at all"/);
  t.match(r.stdout, /attempt \(Number\): 1/);
  t.match(r.stdout, /blob \(Binary\): base64:AAEC\/wE=/);
  t.match(r.stdout, /tenant \(String\.tenant\): t-1/);
  t.match(r.stdout, /receive count: 1/);
  t.match(r.stdout, /sent:\s+\d{4}-\d\d-\d\dT[\d:.]+Z \(SentTimestamp \d+\)/);
  t.match(r.stdout, /raw body:\s+not json at all/, '--raw prints the body');
  t.match(r.stdout, new RegExp(`3 messages shown; still in ${env.prefix}orders-dlq`));
  t.same(await env.depth(dlq), { visible: 3, inFlight: 0, delayed: 0 }, 'all three are visible again right away');

  const two = await env.cli('dlq', 'peek', 'orders', '--max', '2');
  t.equal(two.code, 0, two.out);
  t.equal(two.stdout.match(/^--- #/gm)?.length, 2, '--max 2 shows two');
  t.notMatch(two.stdout, /raw body:/, 'no raw body without --raw');
  t.same(await env.depth(dlq), { visible: 3, inFlight: 0, delayed: 0 });

  const empty = await env.cli('dlq', 'peek', 'mail');
  t.equal(empty.code, 0, empty.out);
  t.match(empty.stdout, new RegExp(`${env.prefix}mail-dlq is empty`));

  const help = await env.cli('dlq', 'peek', '--help');
  t.equal(help.code, 0);
  t.match(help.out, /increments (their )?ApproximateReceiveCount/, 'the help says a peek counts as a receive');
});

t.test('dlq redrive moves messages back with body and attributes; --max limits', async (t) => {
  const env = await setup(t);
  const dlq = env.url('orders', true);
  const source = env.url('orders');
  const sent = new Map<string, Record<string, MessageAttributeValue>>();
  for (let i = 0; i < 12; i++) {
    const body = event('ORDER_PLACED', i);
    sent.set(body, attrsOf(i));
    await env.put(dlq, body, attrsOf(i));
  }

  const five = await env.cli('dlq', 'redrive', 'orders', '--max', '5');
  t.equal(five.code, 0, five.out);
  t.match(five.stdout, /^moved 5, failed 0$/m);
  t.match(five.out, /redrive .*orders-dlq -> .*orders: 5 of ~5 done \(moved 5, failed 0\)/, 'a plain progress line when stderr is not a terminal');
  t.notMatch(five.stdout, /done \(moved/, 'progress is not on stdout (issue 20: stdout keeps only data)');
  t.same(await env.depth(dlq), { visible: 7, inFlight: 0, delayed: 0 }, '--max 5 left 7 in the DLQ');
  t.same(await env.depth(source), { visible: 5, inFlight: 0, delayed: 0 });

  const rest = await env.cli('dlq', 'redrive', 'orders', '--max', '100');
  t.equal(rest.code, 0, rest.out);
  t.match(rest.stdout, /^moved 7, failed 0$/m);
  t.same(await env.depth(dlq), { visible: 0, inFlight: 0, delayed: 0 }, 'the DLQ is empty');

  const got = await env.drain(source);
  t.equal(got.length, 12, 'every message is on the source queue once');
  t.same(new Set(got.map((m) => m.Body)), new Set(sent.keys()), 'same bodies');
  for (const m of got) t.same(comparable(m.MessageAttributes), comparable(sent.get(m.Body!)), `attributes intact for ${m.Body!.slice(0, 60)}`);

  const none = await env.cli('dlq', 'redrive', 'orders');
  t.equal(none.code, 0, none.out);
  t.match(none.stdout, /^moved 0, failed 0$/m, 'an empty DLQ moves nothing');
});

t.test('dlq redrive leaves what the source queue rejects in the DLQ and exits 1', async (t) => {
  const env = await setup(t);
  const dlq = env.url('orders', true);
  await env.emu.sqs.send(new SetQueueAttributesCommand({ QueueUrl: env.url('orders'), Attributes: { MaximumMessageSize: '1024' } }));
  await env.put(dlq, event('SMALL', 1), attrsOf(1));
  await env.put(dlq, JSON.stringify({ type: 'BIG', data: 'x'.repeat(2000) }), attrsOf(2));
  await env.put(dlq, event('SMALL', 3));
  const r = await env.cli('dlq', 'redrive', 'orders');
  t.equal(r.code, 1, r.out);
  t.match(r.stdout, /^moved 2, failed 1$/m);
  t.match(r.out, /1 message\(s\) could not be sent to .*orders and stay in .*orders-dlq: .*(InvalidParameterValue|shorter)/);
  t.same(await env.depth(dlq), { visible: 1, inFlight: 0, delayed: 0 }, 'the rejected message is visible in the DLQ again');
  const left = await env.drain(dlq);
  t.match(left[0]?.Body, /"BIG"/);
  t.equal((await env.drain(env.url('orders'))).length, 2);
});

t.test('usage and unknown queues', async (t) => {
  const env = await setup(t);
  for (const cmd of ['peek', 'redrive']) {
    const r = await env.cli('dlq', cmd, 'nope');
    t.equal(r.code, 1, `${cmd}: unknown queue exits 1`);
    t.match(r.out, /unknown queue "nope".*known queues: mail, orders/);
    t.match(r.out, /ERR_QUEUE_NOT_FOUND/);
  }
  const prefixed = await env.cli('dlq', 'peek', `${env.prefix}orders`);
  t.equal(prefixed.code, 1, 'the SQS name is not the logical name');
  for (const bad of ['0', '-1', 'abc', '1.5']) {
    const r = await env.cli('dlq', 'redrive', 'orders', `--max=${bad}`);
    t.equal(r.code, 2, `--max ${bad} is a usage error`);
    t.match(r.out, /--max must be a positive integer/);
  }
  const missingArg = await env.cli('dlq', 'peek');
  t.equal(missingArg.code, 2, 'a missing argument is a usage error');
  const unknownOpt = await env.cli('status', '--frobnicate');
  t.equal(unknownOpt.code, 2);
});
