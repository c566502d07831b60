// The publisher: PublishBatch in chunks of 10 and 256 KiB, per-entry results, clear errors before any call.
import t from 'tap';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { createPublisher } from '../../dist/publisher/index.js';
import { provision } from '../../dist/publisher/provision.js';
import { emulator, uniqueName } from '../helpers/emulator.js';

t.test('publishBatch chunks by count and size and every event arrives once', async (t) => {
  const emu = await emulator();
  t.teardown(() => emu.stop());
  const topic = uniqueName('topic');
  const queue = uniqueName('q');
  const r = await provision(emu, {
    topic,
    handlers: [{ file: 'x', queue, queueName: queue, dlqName: `${queue}-dlq`, events: null, concurrency: 1, prefetch: 1, visibilityTimeoutSec: 30, timeoutMs: 1000, maxReceiveCount: 5, ordered: false, groupConcurrency: null, publishes: null }],
  });
  const calls: number[] = [];
  emu.sns.middlewareStack.add(
    (next) => async (args) => {
      const input = args.input as { PublishBatchRequestEntries?: unknown[] };
      if (input.PublishBatchRequestEntries) calls.push(input.PublishBatchRequestEntries.length);
      return next(args);
    },
    { step: 'initialize', name: 'countBatches' },
  );
  const publisher = createPublisher({ sns: emu.sns, topic, source: 'test' });
  const small = Array.from({ length: 25 }, (_, i) => ({ type: 'SMALL', data: { i } }));
  const big = Array.from({ length: 4 }, (_, i) => ({ type: 'BIG', data: { i, pad: 'x'.repeat(100_000) } }));
  const out = await publisher.publishBatch([...small, ...big]);
  t.equal(out.successful.length, 29);
  t.same(out.failed, []);
  t.same(calls, [10, 10, 7, 2], 'chunks of at most 10 entries, closed early when the next would pass 256 KiB');
  const seen = new Map<string, number>();
  for (;;) {
    const m = await emu.sqs.send(new ReceiveMessageCommand({ QueueUrl: r.queues[0]!.url, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 }));
    if (!m.Messages?.length) break;
    for (const msg of m.Messages) {
      const ev = JSON.parse(JSON.parse(msg.Body!).Message);
      seen.set(ev.id, (seen.get(ev.id) ?? 0) + 1);
    }
  }
  t.same([...seen.keys()].sort(), out.successful.map((s) => s.id).sort(), 'every event arrived');
  t.ok([...seen.values()].every((n) => n === 1), 'once each');
});

t.test('clear errors: unknown topic, oversized event', async (t) => {
  const emu = await emulator();
  t.teardown(() => emu.stop());
  const missing = createPublisher({ sns: emu.sns, topic: 'no-such-topic', source: 'test' });
  await t.rejects(missing.createEvent('X', {}), { code: 'ERR_TOPIC_NOT_FOUND', message: /SNS topic "no-such-topic" does not exist/ });
  const arn = createPublisher({ sns: emu.sns, topic: 'arn:aws:sns:us-east-1:000000000000:nope', source: 'test' });
  await t.rejects(arn.createEvent('X', {}), { code: 'ERR_TOPIC_NOT_FOUND' });
  const topic = uniqueName('topic');
  await provision(emu, { topic, handlers: [] });
  let calls = 0;
  emu.sns.middlewareStack.add((next) => async (args) => (calls++, next(args)), { step: 'initialize', name: 'count' });
  const p = createPublisher({ sns: emu.sns, topic: `arn:aws:sns:us-east-1:000000000000:${topic}`, source: 'test' });
  await t.rejects(p.createEvent('X', 'y'.repeat(300_000)), { code: 'ERR_EVENT_TOO_LARGE' });
  await t.rejects(p.publishBatch([{ type: 'OK', data: 1 }, { type: 'X', data: 'y'.repeat(300_000) }]), { code: 'ERR_EVENT_TOO_LARGE' });
  t.equal(calls, 0, 'no call was made for an oversized event');
});
