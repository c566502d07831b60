// `dlq dump --delete` never deletes what its file cannot bring back (review findings, issue 20):
// an offloaded event's line holds only the pointer to its payload in S3, which expires, so its DLQ
// message stays; and a FIFO DLQ, which gives one receive per message group while the dump holds the
// group's earlier messages, dumped short of its count deletes nothing and exits 1.
import t from 'tap';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateTopicCommand } from '@aws-sdk/client-sns';
import { GetQueueAttributesCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { loadHandlers } from '../../dist/handlers.js';
import { provision } from '../../dist/publisher/provision.js';
import { opsWorld } from '../helpers/ops-world.js';
import { emulator, uniqueName } from '../helpers/emulator.js';
import { jsonLines, runCli } from '../helpers/cli-run.js';
import { writeConfig, writeHandlers } from '../helpers/process.js';

const event = (id: string) => JSON.stringify({ specversion: '1.0', id, source: 'test', type: 'ORDER_PLACED', time: '2024-05-01T00:00:00.000Z', data: { id } });
const pointer = (key: string) => `["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"payloads","s3Key":"${key}"}]`;

async function visible(sqs: { send: (c: GetQueueAttributesCommand) => Promise<{ Attributes?: Record<string, string> }> }, url: string): Promise<number> {
  const a = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }))).Attributes ?? {};
  return Number(a.ApproximateNumberOfMessages) + Number(a.ApproximateNumberOfMessagesNotVisible);
}

t.test('--delete keeps an offloaded message in the DLQ (its line holds only the pointer) and deletes the others', async (t) => {
  const w = await opsWorld(t, 'dumpsafe');
  const dlq = w.url('orders', true);
  for (let i = 0; i < 3; i++) await w.emu.sqs.send(new SendMessageCommand({ QueueUrl: dlq, MessageBody: event(`plain-${i}`) }));
  await w.emu.sqs.send(new SendMessageCommand({ QueueUrl: dlq, MessageBody: pointer('eventbus/big-1') }));
  const dir = mkdtempSync(join(tmpdir(), 'eventbus-dumpsafe-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'dump.jsonl');
  const r = await runCli(t, ['dlq', 'dump', 'orders', '--to', file, '--delete', '--json', '--config', w.config]);
  t.equal(r.code, 0, r.stderr);
  t.match(jsonLines(t, r)[0], { dumped: 4, deleted: 3, keptOffloaded: 1, incomplete: false });
  t.match(r.stderr, /1 offloaded message\(s\) stay in .*orders-dlq: their lines hold a pointer to the payload in S3/);
  t.equal(readFileSync(file, 'utf8').trimEnd().split('\n').length, 4, 'every message is in the file');
  t.equal(await visible(w.emu.sqs, dlq), 1, 'the offloaded one is still in the DLQ');
});

t.test('a FIFO DLQ dumped short of its count: a warning, exit 1, nothing deleted', async (t) => {
  const emu = await emulator();
  t.teardown(() => emu.stop());
  const queuePrefix = `${uniqueName('fifodump')}-`;
  const topic = uniqueName('topic');
  const handlersDir = writeHandlers([{ queue: 'ledger', events: ['LEDGER'], ordered: true }]);
  const handlers = await loadHandlers({ handlersDir, queuePrefix, concurrency: 10, queues: {} });
  await emu.sns.send(new CreateTopicCommand({ Name: topic }));
  const topo = await provision(emu, { topic, handlers });
  const dlq = topo.queues[0]!.dlqUrl;
  // Two groups of three: the emulator, like SQS, gives no more of a group while one of it is held.
  for (const group of ['a', 'b']) {
    for (let i = 0; i < 3; i++) {
      await emu.sqs.send(new SendMessageCommand({ QueueUrl: dlq, MessageBody: event(`${group}-${i}`), MessageGroupId: group, MessageDeduplicationId: `${group}-${i}` }));
    }
  }
  const config = writeConfig({ endpoint: emu.endpoint, region: 'us-east-1', queuePrefix, topic, handlersDir });
  const dir = mkdtempSync(join(tmpdir(), 'eventbus-fifodump-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const r = await runCli(t, ['dlq', 'dump', 'ledger', '--to', join(dir, 'dump.jsonl'), '--delete', '--json', '--config', config]);
  t.equal(r.code, 1, r.stderr);
  const [s] = jsonLines(t, r);
  t.match(s, { deleted: 0, incomplete: true });
  t.ok(s!.dumped >= 2 && s!.dumped < 6, `short of the 6 held (${s!.dumped})`);
  t.match(r.stderr, /is a FIFO queue and held ~6 message\(s\); the dump has \d+: .*so nothing was deleted/);
  t.equal(await visible(emu.sqs, dlq), 6, 'all six are still in the DLQ');
});
