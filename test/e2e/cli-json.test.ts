// Issue 20: `--json` on the CLI commands that print data, each parsed from the real CLI's stdout:
// dlq peek (JSON lines), dlq redrive, dlq purge, publish, replay (and its dry run). stdout holds
// only the JSON; progress and notes go to stderr.
import t, { type Test } from 'tap';
import { GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageCommand, type MessageAttributeValue } from '@aws-sdk/client-sqs';
import { opsWorld, withArchive, type OpsWorld } from '../helpers/ops-world.js';
import { ev } from '../helpers/archive-contract.js';
import { jsonLines, runCli } from '../helpers/cli-run.js';

const event = (type: string, i: number) => JSON.stringify({ specversion: '1.0', id: `ev-${type}-${i}`, source: 'test', type, time: new Date().toISOString(), data: { i } });
const attrsOf = (i: number): Record<string, MessageAttributeValue> => ({
  'event-type': { DataType: 'String', StringValue: 'ORDER_PLACED' },
  blob: { DataType: 'Binary', BinaryValue: Uint8Array.from([0, 1, 2, 255, i]) },
});

async function held(w: OpsWorld, url: string): Promise<number> {
  const a = (await w.emu.sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }))).Attributes ?? {};
  return Number(a.ApproximateNumberOfMessages) + Number(a.ApproximateNumberOfMessagesNotVisible);
}

/** Sends n events to a queue; returns their SQS MessageIds (and the bodies by id). */
async function put(w: OpsWorld, url: string, n: number, bodies = new Map<string, string>()): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const body = event('ORDER_PLACED', i);
    const id = (await w.emu.sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: body, MessageAttributes: attrsOf(i) }))).MessageId!;
    bodies.set(id, body);
    ids.push(id);
  }
  return ids;
}

const cli = (t: Test, w: OpsWorld, ...args: string[]) => runCli(t, [...args, '--config', w.config]);

t.test('dlq peek --json: one object per message, no receipt handle, nothing else on stdout', async (t) => {
  const w = await opsWorld(t, 'json');
  const bodies = new Map<string, string>();
  const ids = await put(w, w.url('orders', true), 3, bodies);
  const r = await cli(t, w, 'dlq', 'peek', 'orders', '--json');
  t.equal(r.code, 0, r.stderr);
  const lines = jsonLines(t, r);
  t.equal(lines.length, 3, 'three JSON lines');
  t.same(new Set(lines.map((l) => l.messageId)), new Set(ids));
  const first = lines.find((l) => l.messageId === ids[0])!;
  t.match(first, {
    messageId: ids[0],
    receiveCount: Number,
    sentTimestampMs: Number,
    event: { id: 'ev-ORDER_PLACED-0', type: 'ORDER_PLACED', data: { i: 0 } },
    form: 'raw-event',
    deadLetterReason: null,
    attributes: { 'event-type': { type: 'String', value: 'ORDER_PLACED' }, blob: { type: 'Binary', value: 'base64:AAEC/wA=' } },
    offloaded: null,
    body: bodies.get(ids[0]!),
  });
  t.same(Object.keys(first).sort(), ['attributes', 'body', 'deadLetterReason', 'event', 'form', 'messageId', 'offloaded', 'receiveCount', 'sentTimestampMs'], 'the documented keys, no more');
  t.notMatch(r.stdout, /receipt/i, 'no receipt handle');
  t.match(r.stderr, /3 messages shown; still in/, 'the summary goes to stderr');
  t.equal(await held(w, w.url('orders', true)), 3, 'still in the DLQ');

  const empty = await cli(t, w, 'dlq', 'peek', 'mail', '--json');
  t.equal(empty.code, 0, empty.stderr);
  t.equal(empty.stdout, '', 'an empty DLQ: no lines');
});

t.test('dlq redrive --json: one summary object; progress on stderr only', async (t) => {
  const w = await opsWorld(t, 'json');
  const ids = await put(w, w.url('orders', true), 12);
  const r = await cli(t, w, 'dlq', 'redrive', 'orders', '--all', '--json');
  t.equal(r.code, 0, r.stderr);
  const [s, ...rest] = jsonLines(t, r);
  t.equal(rest.length, 0, 'exactly one line on stdout');
  t.match(s, {
    queue: 'orders',
    queueName: `${w.prefix}orders`,
    dlqName: `${w.prefix}orders-dlq`,
    mode: 'copy',
    moved: 12,
    failed: 0,
    notDeleted: 0,
    aborted: false,
    signal: null,
    remaining: null,
    task: null,
    errors: [],
  });
  t.same(new Set(s!.movedIds), new Set(ids), 'movedIds are the DLQ message ids');
  t.match(r.stderr, new RegExp(`redrive ${w.prefix}orders-dlq -> ${w.prefix}orders: 12 of ~12 done \\(moved 12, failed 0\\)`), 'a progress line on stderr');
  t.equal(await held(w, w.url('orders')), 12);

  const text = await cli(t, w, 'dlq', 'redrive', 'orders');
  t.equal(text.stdout, 'moved 0, failed 0\n', 'without --json: the one text line, and no progress on stdout');
});

t.test('dlq purge --json', async (t) => {
  const w = await opsWorld(t, 'json');
  await put(w, w.url('orders', true), 4);
  const r = await cli(t, w, 'dlq', 'purge', 'orders', '--yes', '--json');
  t.equal(r.code, 0, r.stderr);
  t.same(jsonLines(t, r), [{ queue: 'orders', dlqName: `${w.prefix}orders-dlq`, purged: true, approximateCount: 4 }]);
  t.equal(await held(w, w.url('orders', true)), 0);
});

t.test('publish --json: the published event', async (t) => {
  const w = await opsWorld(t, 'json');
  const r = await cli(t, w, 'publish', 'ORDER_PLACED', '{"n":7}', '--id', 'pub-1', '--subject', 'o-7', '--source', 'cli-test', '--json');
  t.equal(r.code, 0, r.stderr);
  const [p] = jsonLines(t, r);
  t.match(p, { id: 'pub-1', type: 'ORDER_PLACED', source: 'cli-test', subject: 'o-7', groupId: null, topics: [String] });
  t.ok(!Number.isNaN(Date.parse(p!.time)), 'time is a timestamp');
  const got = await w.emu.sqs.send(new ReceiveMessageCommand({ QueueUrl: w.url('orders'), WaitTimeSeconds: 2 }));
  const body = JSON.parse(got.Messages?.[0]?.Body ?? '{}') as { Message?: string };
  t.equal((JSON.parse(body.Message ?? '{}') as { id?: string }).id, 'pub-1', 'the event it names reached the queue');
});

t.test('replay --json: the summary; the dry run lists the events', async (t) => {
  const w = await opsWorld(t, 'json');
  const base = Date.parse('2024-05-01T00:00:00Z');
  const config = await withArchive(t, w, Array.from({ length: 6 }, (_, i) => ev(`orig-${i}`, 'ORDER_PLACED', base + i * 1000, { i })));

  const dry = await runCli(t, ['replay', '--since', '2024-05-01T00:00:00Z', '--to-queue', 'orders', '--dry-run', '--json', '--config', config]);
  t.equal(dry.code, 0, dry.stderr);
  const [d] = jsonLines(t, dry);
  t.match(d, { dryRun: true, target: { kind: 'queue', name: 'orders' }, matched: 6, sent: 0, aborted: false, resume: null });
  t.same(d!.events.map((e: { id: string }) => e.id), ['orig-0', 'orig-1', 'orig-2', 'orig-3', 'orig-4', 'orig-5'], 'the events it would replay, oldest first');

  const r = await runCli(t, ['replay', '--since', '2024-05-01T00:00:00Z', '--to-queue', 'orders', '--rate', '200', '--json', '--config', config]);
  t.equal(r.code, 0, r.stderr);
  const lines = jsonLines(t, r);
  t.equal(lines.length, 1);
  t.match(lines[0], { dryRun: false, target: { kind: 'queue', name: 'orders' }, rate: 200, matched: 6, sent: 6, failed: 0, skippedReplays: 0, ms: Number, aborted: false, signal: null, resume: null, errors: [] });
  t.notOk('events' in lines[0]!, 'no event list outside a dry run');
  t.match(r.stderr, /replay: 6 of 6 event\(s\) done/, 'progress on stderr');
  t.equal(await held(w, w.url('orders')), 6);
});
