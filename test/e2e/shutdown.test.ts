// SIGTERM during work: the supervisor exits 0 within shutdownTimeoutMs and nothing is lost.
import t, { type Test } from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetQueueUrlCommand, GetQueueAttributesCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { createPublisher } from '../../dist/publisher/index.js';
import { emulator, uniqueName, waitFor } from '../helpers/emulator.js';
import { readLog, spawnNode, writeConfig, writeHandlers } from '../helpers/process.js';

async function setup(t: Test, shutdownTimeoutMs: number, sleepMs: number) {
  const emu = await emulator();
  t.teardown(() => emu.stop());
  const prefix = `${uniqueName('s')}-`;
  const topic = uniqueName('topic');
  const logFile = join(mkdtempSync(join(tmpdir(), 'eventbus-log-')), 'handled.jsonl');
  const handlersDir = writeHandlers([{ queue: 'work', events: ['WORK'], visibilityTimeout: 10 }]);
  const config = writeConfig({
    endpoint: emu.endpoint,
    region: 'us-east-1',
    topic,
    queuePrefix: prefix,
    provision: true,
    handlersDir,
    concurrency: 4,
    threads: 2,
    http: { host: '127.0.0.1', port: 0 },
    shutdownTimeoutMs,
    logLevel: 'info',
  });
  const proc = spawnNode('dist/supervisor/index.js', ['--config', config], { EVENTBUS_TEST_LOG: logFile });
  t.teardown(() => proc.kill());
  await proc.waitForOutput(/supervisor running/, 30_000);
  const publisher = createPublisher({ sns: emu.sns, topic, source: 'test' });
  const r = await publisher.publishBatch(Array.from({ length: 20 }, (_, i) => ({ type: 'WORK', data: { i, sleepMs } })));
  t.equal(r.successful.length, 20, 'published 20 events');
  const url = (await emu.sqs.send(new GetQueueUrlCommand({ QueueName: `${prefix}work` }))).QueueUrl!;
  return { emu, proc, logFile, url, ids: r.successful.map((s) => s.id) };
}

t.test('SIGTERM while handlers run: they finish, the rest stays queued, exit 0', async (t) => {
  const { emu, proc, logFile, url, ids } = await setup(t, 10_000, 1500);
  await waitFor('4 handlers running', () => readLog(logFile).filter((l) => l.kind === 'start').length >= 4, 15_000);
  const sentAt = Date.now();
  proc.child.kill('SIGTERM');
  const exit = await proc.exited;
  t.equal(exit.code, 0, 'exit status 0');
  t.ok(exit.atMs - sentAt < 10_000, `exited within shutdownTimeoutMs (${exit.atMs - sentAt} ms)`);
  const log = readLog(logFile);
  const started = log.filter((l) => l.kind === 'start').map((l) => l.id!);
  const ended = new Set(log.filter((l) => l.kind === 'end').map((l) => l.id!));
  t.same([...ended].sort(), [...new Set(started)].sort(), 'every handler that started finished');
  t.ok(log.some((l) => l.kind === 'teardown'), 'teardown hooks ran');
  const attrs = await emu.sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }));
  t.equal(Number(attrs.Attributes!.ApproximateNumberOfMessagesNotVisible), 0, 'nothing left in flight');
  // What did not run is still there, visible now.
  const rest = new Set<string>();
  for (;;) {
    const r = await emu.sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, VisibilityTimeout: 60 }));
    if (!r.Messages?.length) break;
    for (const m of r.Messages) rest.add(JSON.parse(JSON.parse(m.Body!).Message).id);
  }
  t.equal(ended.size + rest.size, 20, `handled ${ended.size} + queued ${rest.size} = 20`);
  t.same([...new Set([...ended, ...rest])].sort(), [...ids].sort(), 'nothing lost');
  t.match(proc.output(), /"msg":"stopped"/);
});

t.test('SIGTERM with handlers longer than the deadline: released at once, exit 0 in time', async (t) => {
  const { emu, proc, logFile, url, ids } = await setup(t, 3000, 60_000);
  await waitFor('4 handlers running', () => readLog(logFile).filter((l) => l.kind === 'start').length >= 4, 15_000);
  // And the prefetch full behind them (SQS's count): on a busy machine it may still be filling.
  const inFlight = async () =>
    Number((await emu.sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessagesNotVisible'] }))).Attributes!.ApproximateNumberOfMessagesNotVisible);
  await waitFor('4 running + 4 prefetched in flight', async () => (await inFlight()) === 8, 15_000);
  const sentAt = Date.now();
  proc.child.kill('SIGTERM');
  const exit = await proc.exited;
  t.equal(exit.code, 0, 'exit status 0');
  t.ok(exit.atMs - sentAt < 3000 + 1000, `exited near shutdownTimeoutMs (${exit.atMs - sentAt} ms)`);
  // Everything is visible at once: the 4 cut short were released (visibility 0), and so were the 4
  // prefetched behind them (prefetch 10, clipped to the cap of 4); 12 were never received.
  const seen = new Map<string, number>();
  for (;;) {
    const r = await emu.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, VisibilityTimeout: 60, MessageSystemAttributeNames: ['ApproximateReceiveCount'] }),
    );
    if (!r.Messages?.length) break;
    for (const m of r.Messages) seen.set(JSON.parse(JSON.parse(m.Body!).Message).id, Number(m.Attributes!.ApproximateReceiveCount));
  }
  t.same([...seen.keys()].sort(), [...ids].sort(), 'all 20 are visible again right away');
  t.equal([...seen.values()].filter((c) => c === 2).length, 8, 'the 4 that ran and the 4 prefetched were received once before');
  t.match(proc.output(), /released (at shutdown|unfinished messages)/);
});

t.test('a second signal exits at once', async (t) => {
  const { proc, logFile } = await setup(t, 20_000, 60_000);
  await waitFor('handlers running', () => readLog(logFile).filter((l) => l.kind === 'start').length >= 1, 15_000);
  proc.child.kill('SIGTERM');
  await proc.waitForOutput(/draining/, 5_000);
  const sentAt = Date.now();
  proc.child.kill('SIGINT');
  const exit = await proc.exited;
  t.ok(exit.atMs - sentAt < 2000, `exited at once (${exit.atMs - sentAt} ms)`);
  t.equal(exit.code, 1, 'exit status 1 on the forced exit');
});
