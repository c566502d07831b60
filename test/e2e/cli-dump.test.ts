// Issue 20: `dlq dump QUEUE --to FILE` and `dlq requeue QUEUE --from FILE` (JSON lines), as the
// real CLI against the emulator: a round trip dump → purge → requeue → handled by the supervisor,
// attributes (binary too) kept, bad lines named, `-` for stdout/stdin, --delete only after fsync.
import t, { type Test } from 'tap';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageCommand, type Message, type MessageAttributeValue } from '@aws-sdk/client-sqs';
import { opsWorld, type OpsWorld } from '../helpers/ops-world.js';
import { jsonLines, runCli } from '../helpers/cli-run.js';
import { readLog, spawnNode } from '../helpers/process.js';
import { waitFor } from '../helpers/emulator.js';

const attrsOf = (i: number): Record<string, MessageAttributeValue> => ({
  'event-type': { DataType: 'String', StringValue: 'ORDER_PLACED' },
  attempt: { DataType: 'Number', StringValue: String(i) },
  blob: { DataType: 'Binary', BinaryValue: Uint8Array.from([0, 1, 2, 255, i]) },
  'eventbus-dead-letter-reason': { DataType: 'String', StringValue: `rejected: test ${i}` },
});
const body = (i: number) => JSON.stringify({ specversion: '1.0', id: `dump-${i}`, source: 'test', type: 'ORDER_PLACED', time: '2024-05-01T00:00:00.000Z', data: { i } });

/** Attributes in a comparable form (Binary as base64). */
const comparable = (attrs: Record<string, MessageAttributeValue> | undefined) =>
  Object.fromEntries(
    Object.entries(attrs ?? {})
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => [k, { DataType: v.DataType, value: v.BinaryValue ? Buffer.from(v.BinaryValue).toString('base64') : v.StringValue }]),
  );

async function setup(t: Test, n: number) {
  const w = await opsWorld(t, 'dump');
  const dir = mkdtempSync(join(tmpdir(), 'eventbus-dump-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const ids: string[] = [];
  for (let i = 0; i < n; i++) ids.push((await w.emu.sqs.send(new SendMessageCommand({ QueueUrl: w.url('orders', true), MessageBody: body(i), MessageAttributes: attrsOf(i) }))).MessageId!);
  const cli = (args: string[], stdin?: string) => runCli(t, [...args, '--config', w.config], stdin === undefined ? {} : { stdin });
  return { w, dir, ids, cli };
}

async function held(w: OpsWorld, url: string): Promise<number> {
  const a = (await w.emu.sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }))).Attributes ?? {};
  return Number(a.ApproximateNumberOfMessages) + Number(a.ApproximateNumberOfMessagesNotVisible);
}

async function drain(w: OpsWorld, url: string): Promise<Message[]> {
  const all: Message[] = [];
  for (;;) {
    const r = await w.emu.sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, VisibilityTimeout: 600, MessageAttributeNames: ['All'] }));
    if (!r.Messages?.length) return all;
    all.push(...r.Messages);
  }
}

t.test('dump → purge → requeue → handled: every message back on its queue and run by its handler', async (t) => {
  const { w, dir, ids, cli } = await setup(t, 15);
  const file = join(dir, 'orders-dlq.jsonl');
  const d = await cli(['dlq', 'dump', 'orders', '--to', file]);
  t.equal(d.code, 0, d.stderr);
  t.equal(d.stdout, '', 'nothing on stdout (the file is the data)');
  t.match(d.stderr, new RegExp(`dumped 15 message\\(s\\) \\(the DLQ held ~15\\) to ${file}; they stay in ${w.prefix}orders-dlq`));
  t.equal(await held(w, w.url('orders', true)), 15, 'without --delete the DLQ is unchanged');
  const lines = readFileSync(file, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, any>);
  t.equal(lines.length, 15);
  t.same(new Set(lines.map((l) => l.messageId)), new Set(ids));
  const l3 = lines.find((l) => l.event.id === 'dump-3')!;
  t.match(l3, {
    v: 1,
    queue: 'orders',
    dlqName: `${w.prefix}orders-dlq`,
    body: body(3),
    messageAttributes: {
      'event-type': { dataType: 'String', stringValue: 'ORDER_PLACED' },
      attempt: { dataType: 'Number', stringValue: '3' },
      blob: { dataType: 'Binary', binaryBase64: Buffer.from([0, 1, 2, 255, 3]).toString('base64') },
    },
    groupId: null,
    deduplicationId: null,
    deadLetterReason: 'rejected: test 3',
    event: { id: 'dump-3', type: 'ORDER_PLACED', data: { i: 3 } },
    form: 'raw-event',
  });

  const again = await cli(['dlq', 'dump', 'orders', '--to', file]);
  t.equal(again.code, 2, 'an existing file is never overwritten');
  t.match(again.stderr, /the file exists/);

  const purge = await cli(['dlq', 'purge', 'orders', '--yes']);
  t.equal(purge.code, 0, purge.stderr);
  t.equal(await held(w, w.url('orders', true)), 0);

  const rq = await cli(['dlq', 'requeue', 'orders', '--from', file, '--json']);
  t.equal(rq.code, 0, rq.stderr);
  t.same(jsonLines(t, rq), [{ queue: 'orders', target: `${w.prefix}orders`, lines: 15, sent: 15, failed: 0, duplicates: 0, failures: [], stoppedAtLine: null, aborted: false }]);

  // The supervisor runs the handler on them.
  const logFile = join(dir, 'handled.jsonl');
  const supConfig = join(dir, 'supervisor.json');
  writeFileSync(supConfig, JSON.stringify({ ...JSON.parse(readFileSync(w.config, 'utf8')), http: { host: '127.0.0.1', port: 0 }, shutdownTimeoutMs: 5000 }));
  const sup = spawnNode('dist/supervisor/index.js', ['--config', supConfig], { EVENTBUS_TEST_LOG: logFile });
  t.teardown(() => sup.kill());
  const done = await waitFor('15 handled', () => {
    const ended = readLog(logFile).filter((l) => l.kind === 'end' && l.queue === 'orders');
    return ended.length >= 15 ? ended : null;
  }, 60_000);
  t.same(new Set(done.map((l) => l.id)), new Set(Array.from({ length: 15 }, (_, i) => `dump-${i}`)), 'each event handled');
  t.equal(done.length, 15, 'once each');
  sup.child.kill('SIGTERM');
  await sup.exited;
});

t.test('requeue --to-dlq restores body, attributes (binary too) and the dead-letter reason; dump --delete; - for stdout and stdin', async (t) => {
  const { w, dir, cli } = await setup(t, 4);
  const before = new Map(Array.from({ length: 4 }, (_, i) => [body(i), comparable(attrsOf(i))]));
  const toStdout = await cli(['dlq', 'dump', 'orders', '--to', '-']);
  t.equal(toStdout.code, 0, toStdout.stderr);
  t.equal(jsonLines(t, toStdout).length, 4, '--to -: the lines on stdout');
  const refused = await cli(['dlq', 'dump', 'orders', '--to', '-', '--delete']);
  t.equal(refused.code, 2, '--delete with --to - is refused');
  t.match(refused.stderr, /--delete needs --to <file>/);

  const file = join(dir, 'deleted.jsonl');
  const del = await cli(['dlq', 'dump', 'orders', '--to', file, '--delete', '--json']);
  t.equal(del.code, 0, del.stderr);
  t.same(jsonLines(t, del), [{ queue: 'orders', dlqName: `${w.prefix}orders-dlq`, file, dumped: 4, deleted: 4, aborted: false, problems: [], keptOffloaded: 0, incomplete: false }]);
  t.equal(await held(w, w.url('orders', true)), 0, '--delete emptied the DLQ after the file was written');
  t.equal(readFileSync(file, 'utf8').trimEnd().split('\n').length, 4, 'the file holds all four');

  const back = await cli(['dlq', 'requeue', 'orders', '--from', '-', '--to-dlq'], toStdout.stdout);
  t.equal(back.code, 0, back.stderr);
  t.equal(back.stdout, `requeued 4 message(s) to ${w.prefix}orders-dlq, failed 0\n`);
  const restored = await drain(w, w.url('orders', true));
  t.equal(restored.length, 4);
  for (const m of restored) t.same(comparable(m.MessageAttributes), before.get(m.Body!), `body and every attribute as they were (${m.Body!.slice(0, 40)})`);
  t.equal(await held(w, w.url('orders')), 0, 'nothing went to the handler queue');
});

t.test('requeue: a bad line is named and nothing is sent; duplicates once; --from-line resumes; stdin stops at a bad line', async (t) => {
  const { w, dir, cli } = await setup(t, 3);
  const file = join(dir, 'd.jsonl');
  t.equal((await cli(['dlq', 'dump', 'orders', '--to', file])).code, 0);
  const good = readFileSync(file, 'utf8').trimEnd().split('\n');

  const bad = join(dir, 'bad.jsonl');
  writeFileSync(bad, [good[0], '{"v":1,"messageId":"m","body":""}', good[1]].join('\n'));
  const r = await cli(['dlq', 'requeue', 'orders', '--from', bad]);
  t.equal(r.code, 2);
  t.match(r.stderr, new RegExp(`${bad} line 2: "body" must be a non-empty string .*; nothing was sent`));
  t.equal(await held(w, w.url('orders')), 0, 'nothing was sent');

  const notJson = join(dir, 'notjson.jsonl');
  writeFileSync(notJson, `${good[0]}\n\nnot json\n`);
  const nj = await cli(['dlq', 'requeue', 'orders', '--from', notJson]);
  t.equal(nj.code, 2);
  t.match(nj.stderr, /line 3: not JSON/, 'blank lines count in the numbering');

  const other = await cli(['dlq', 'requeue', 'mail', '--from', file]);
  t.equal(other.code, 2);
  t.match(other.stderr, /line 1: dumped from queue "orders", not "mail"/);

  const missing = await cli(['dlq', 'requeue', 'orders', '--from', join(dir, 'nope.jsonl')]);
  t.equal(missing.code, 2);
  t.match(missing.stderr, /--from .*nope\.jsonl: .*ENOENT|no such file/i);

  const dup = join(dir, 'dup.jsonl');
  writeFileSync(dup, [good[0], good[0], good[1], good[2]].join('\n') + '\n');
  const rd = await cli(['dlq', 'requeue', 'orders', '--from', dup, '--from-line', '2', '--json']);
  t.equal(rd.code, 0, rd.stderr);
  t.match(jsonLines(t, rd)[0], { lines: 3, sent: 3, duplicates: 0 }, '--from-line 2 skips line 1');
  const dd = await cli(['dlq', 'requeue', 'orders', '--from', dup, '--json']);
  t.match(jsonLines(t, dd)[0], { lines: 4, sent: 3, duplicates: 1 }, 'a message id twice in one run is sent once');
  t.equal(await held(w, w.url('orders')), 6, 'two runs of three');

  const viaStdin = await cli(['dlq', 'requeue', 'orders', '--from', '-', '--json'], [good[0], good[1], 'garbage', good[2]].join('\n') + '\n');
  t.equal(viaStdin.code, 2, 'stdin: a bad line stops the run');
  t.match(jsonLines(t, viaStdin)[0], { sent: 2, stoppedAtLine: 3 });
  t.match(viaStdin.stderr, /stdin line 3: not JSON .*: stopped there; lines up to 2 were sent\. Fix it and resume with --from-line 3/);
  t.equal(await held(w, w.url('orders')), 8);
  t.notOk(existsSync(join(dir, 'nope.jsonl')));
});
