// Large events (issue 18): the claim check on S3, against the emulator (fauxqs emulates S3 on the
// same port) with real worker threads. Pointers are in the format of AWS's extended clients, both
// ways: ours as theirs expect them, theirs (written here by hand, as the Java client writes them)
// resolved by our threads.
import t from 'tap';
import { createHash, randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageCommand, type Message } from '@aws-sdk/client-sqs';
import { PublishCommand, SubscribeCommand } from '@aws-sdk/client-sns';
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { createPublisher } from '../../dist/publisher/index.js';
import { lazyPayloadStore } from '../../dist/payloads/index.js';
import { createS3Client } from '../../dist/payloads/client.js';
import { DEAD_LETTER_REASON_ATTRIBUTE } from '../../dist/event/index.js';
import type { CloudEvent } from '../../dist/types.js';
import { startBus, uniqueName, waitFor, type Bus } from '../helpers/bus.js';
import { faultProxy } from '../helpers/fault-proxy.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ARCHIVE_HANDLER_FILE, openArchive } from '../../dist/archive/index.js';
import { replay } from '../../dist/cli/replay.js';

const PROBE = fileURLToPath(new URL('../../test/fixtures/handlers/payload-probe.mjs', import.meta.url));
const KiB = 1024;
const MiB = 1024 * KiB;

interface Probe {
  kind: 'payload';
  queue: string;
  id: string;
  type: string | null;
  dataSha256: string;
  dataBytes: number;
  offloaded: { bucket: string; key: string; bytes: number } | null;
  receiveCount: number;
}

const probes = (bus: Bus) => bus.seen as unknown as Probe[];
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/** Data whose JSON is about `bytes` long, with characters of 1, 2 and 3 UTF-8 bytes (a byte count is not a character count). */
function dataOf(bytes: number): { blob: string } {
  const unit = 'abcdefgh-é-€-';
  return { blob: unit.repeat(Math.ceil(bytes / Buffer.byteLength(unit))).slice(0, Math.floor(bytes / 1.2)) };
}

/** A queue subscribed to the bus's topic (SNS envelope), to look at what SNS delivers. */
async function tapQueue(bus: Bus): Promise<{ receive(n: number): Promise<Message[]> }> {
  const name = uniqueName('tap');
  const url = (await bus.emu.sqs.send(new CreateQueueCommand({ QueueName: name }))).QueueUrl!;
  const arn = (await bus.emu.sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }))).Attributes!.QueueArn!;
  const topicArn = await bus.publisher.topicArn();
  await bus.emu.sns.send(new SubscribeCommand({ TopicArn: topicArn, Protocol: 'sqs', Endpoint: arn }));
  return {
    async receive(n) {
      const out: Message[] = [];
      const deadline = Date.now() + 10_000;
      while (out.length < n && Date.now() < deadline) {
        const r = await bus.emu.sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, MessageAttributeNames: ['All'] }));
        out.push(...(r.Messages ?? []));
      }
      return out;
    },
  };
}

t.test('300 KiB, 1 MiB and 10 MiB events reach the handler byte-identical through S3; a small one does not go through S3', async (t) => {
  const bucket = uniqueName('pl');
  const bus = await startBus([{ queue: 'probe', file: PROBE, events: ['BIG', 'SMALL'] }], { config: { payloads: { bucket } } });
  t.teardown(() => bus.stop());
  const tap = await tapQueue(bus);
  const store = lazyPayloadStore(bus.emu.aws);
  const publisher = createPublisher({ sns: bus.emu.sns, topic: bus.config.topic, source: 'test', payloads: { bucket, store } });

  const sizes = [300 * KiB, 1 * MiB, 10 * MiB];
  const big = [];
  for (const size of sizes) big.push(await publisher.createEvent('BIG', dataOf(size)));
  const small = await publisher.createEvent('SMALL', { hello: 'world' });
  const all = [...big, small];
  await waitFor('the handler saw every event', () => all.every((e) => probes(bus).some((p) => p.kind === 'payload' && p.id === e.id)), 30_000);

  for (const e of all) {
    const seen = probes(bus).find((p) => p.kind === 'payload' && p.id === e.id)!;
    t.equal(seen.dataSha256, sha256(JSON.stringify(e.data)), `${e.type} ${seen.dataBytes} bytes of data arrived byte-identical`);
  }
  for (const e of big) {
    const bytes = Buffer.byteLength(JSON.stringify(e));
    const seen = probes(bus).find((p) => p.id === e.id)!;
    t.same(seen.offloaded, { bucket, key: `eventbus/${e.id}`, bytes }, `ctx.offloaded tells the handler (${bytes} bytes)`);
    t.equal(await store.get(bucket, `eventbus/${e.id}`), JSON.stringify(e), 'the object is the event JSON, as published');
  }
  t.equal(probes(bus).find((p) => p.id === small.id)!.offloaded, null, 'a small event: ctx.offloaded is not set');

  // What SNS delivered, read by the extended clients' rules.
  const delivered = await tap.receive(all.length);
  t.equal(delivered.length, all.length, 'the tap queue got every event');
  for (const m of delivered) {
    const envelope = JSON.parse(m.Body!) as { Message: string; MessageAttributes: Record<string, { Type: string; Value: string }> };
    const inline = JSON.parse(envelope.Message) as unknown;
    if (!Array.isArray(inline)) {
      t.equal((inline as { id: string }).id, small.id, 'only the small event is inline');
      t.notOk('ExtendedPayloadSize' in envelope.MessageAttributes, 'and has no ExtendedPayloadSize');
      continue;
    }
    const e = big.find((x) => envelope.Message.includes(x.id))!;
    t.ok(e, 'a pointer names one of the large events');
    t.equal(
      envelope.Message,
      `["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"${bucket}","s3Key":"eventbus/${e.id}"}]`,
      'the SNS message is exactly the PayloadS3Pointer JSON of the extended clients',
    );
    t.same(envelope.MessageAttributes.ExtendedPayloadSize, { Type: 'Number', Value: String(Buffer.byteLength(JSON.stringify(e))) }, 'ExtendedPayloadSize (Number) = the payload bytes');
    t.same(envelope.MessageAttributes['event-type'], { Type: 'String', Value: 'BIG' }, 'event-type is kept: filter policies still route it');
  }
  const text = await bus.sup.metrics.registry.getSingleMetricAsString('eventbus_payload_fetch_seconds');
  t.match(text, /eventbus_payload_fetch_seconds_count\{queue="probe"\} 3/, 'three fetches timed in eventbus_payload_fetch_seconds');
});

t.test('messages in the extended clients\' format written by hand (as the Java clients write them) are resolved', async (t) => {
  const bucket = uniqueName('pl');
  const bus = await startBus([{ queue: 'probe', file: PROBE, events: ['JAVA'] }], { config: { payloads: { bucket } } });
  t.teardown(() => bus.stop());
  const s3 = createS3Client(bus.emu.aws);
  t.teardown(() => s3.destroy());
  const topicArn = await bus.publisher.topicArn();
  const put = async (key: string, body: string) => s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));

  // 1. The SNS extended client: Publish with the pointer as Message and ExtendedPayloadSize; the
  //    object holds the original message (a CloudEvent here). Delivered in the SNS envelope.
  const viaSns = { specversion: '1.0', id: randomUUID(), source: 'java-service', type: 'JAVA', time: new Date().toISOString(), data: dataOf(400 * KiB) };
  const k1 = randomUUID(); // the Java clients' default key: a random UUID, no prefix
  await put(k1, JSON.stringify(viaSns));
  await bus.emu.sns.send(
    new PublishCommand({
      TopicArn: topicArn,
      Message: `["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"${bucket}","s3Key":"${k1}"}]`,
      MessageAttributes: {
        ExtendedPayloadSize: { DataType: 'Number', StringValue: String(Buffer.byteLength(JSON.stringify(viaSns))) },
        'event-type': { DataType: 'String', StringValue: 'JAVA' },
      },
    }),
  );
  // 2. The SQS extended client, raw: the pointer as the SQS body, attributes on the message; the
  //    object is plain data (not a CloudEvent): `type` comes from the event-type attribute.
  const data2 = { orderId: 42, lines: dataOf(300 * KiB).blob };
  const k2 = randomUUID();
  await put(k2, JSON.stringify(data2));
  await bus.emu.sqs.send(
    new SendMessageCommand({
      QueueUrl: await bus.queueUrl('probe'),
      MessageBody: `["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"${bucket}","s3Key":"${k2}"}]`,
      MessageAttributes: {
        ExtendedPayloadSize: { DataType: 'Number', StringValue: String(Buffer.byteLength(JSON.stringify(data2))) },
        'event-type': { DataType: 'String', StringValue: 'JAVA' },
      },
    }),
  );
  // 3. A legacy writer (SQS Java client 1.x): MessageS3Pointer and SQSLargePayloadSize.
  const data3 = { legacy: true, n: 3 };
  const k3 = randomUUID();
  await put(k3, JSON.stringify(data3));
  await bus.emu.sqs.send(
    new SendMessageCommand({
      QueueUrl: await bus.queueUrl('probe'),
      MessageBody: JSON.stringify(['com.amazon.sqs.javamessaging.MessageS3Pointer', { s3BucketName: bucket, s3Key: k3 }]),
      MessageAttributes: {
        SQSLargePayloadSize: { DataType: 'Number', StringValue: String(Buffer.byteLength(JSON.stringify(data3))) },
        'event-type': { DataType: 'String', StringValue: 'JAVA' },
      },
    }),
  );

  await waitFor('three resolved messages', () => probes(bus).filter((p) => p.kind === 'payload').length >= 3, 20_000);
  const seen = probes(bus).filter((p) => p.kind === 'payload');
  const one = seen.find((p) => p.id === viaSns.id);
  t.ok(one, 'the SNS extended client\'s event arrived with its own id');
  t.equal(one?.dataSha256, sha256(JSON.stringify(viaSns.data)), 'its data is the object\'s, byte-identical');
  t.same(one?.offloaded, { bucket, key: k1, bytes: Buffer.byteLength(JSON.stringify(viaSns)) }, 'ctx.offloaded names their object');
  const two = seen.find((p) => p.dataSha256 === sha256(JSON.stringify(data2)));
  t.ok(two, 'the SQS extended client\'s raw message: the object is the data');
  t.equal(two?.type, 'JAVA', 'its type from the event-type attribute');
  t.ok(seen.find((p) => p.dataSha256 === sha256(JSON.stringify(data3))), 'the legacy pointer class and size attribute are resolved too');
  t.equal(seen.length, 3, 'nothing else ran (no pointer reached a handler as data)');
});

t.test('a missing object is an error: retried, then dead-lettered with the reason; the handler never runs', async (t) => {
  const bucket = uniqueName('pl');
  const bus = await startBus([{ queue: 'probe', file: PROBE, events: ['GONE'], maxReceiveCount: 2 }], {
    config: { payloads: { bucket }, retry: { baseDelaySec: 1, maxDelaySec: 1 } },
  });
  t.teardown(() => bus.stop());
  const topicArn = await bus.publisher.topicArn();
  await bus.emu.sns.send(
    new PublishCommand({
      TopicArn: topicArn,
      Message: `["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"${bucket}","s3Key":"eventbus/never-written"}]`,
      MessageAttributes: { ExtendedPayloadSize: { DataType: 'Number', StringValue: '300000' }, 'event-type': { DataType: 'String', StringValue: 'GONE' } },
    }),
  );
  const dead = await waitFor('the message in the DLQ', async () => {
    const m = await bus.receiveAll('probe', true, 1);
    return m.length ? m : null;
  }, 20_000);
  t.equal(dead.length, 1, 'one message dead-lettered');
  const reason = dead[0]!.MessageAttributes?.[DEAD_LETTER_REASON_ATTRIBUTE]?.StringValue ?? '';
  t.match(reason, /^error: payload s3:\/\/.+\/eventbus\/never-written could not be fetched: .*(NoSuchKey|GetObject)/, `the reason: ${reason}`);
  t.match(JSON.parse(dead[0]!.Body!), { MessageAttributes: { ExtendedPayloadSize: { Type: 'Number' } } }, 'the dead letter is the envelope as it came, pointer and all (dlq redrive sends it back as is)');
  t.equal(probes(bus).filter((p) => p.kind === 'payload').length, 0, 'the handler never ran');
  const results = await bus.sup.metrics.registry.getSingleMetricAsString('eventbus_handler_results_total');
  t.match(results, /result="error"\} 2/, 'two receives, each an error');
  t.match(await bus.sup.metrics.registry.getSingleMetricAsString('eventbus_s3_errors_total'), /eventbus_s3_errors_total\{queue="probe",operation="GetObject"\} 2/, 'counted in eventbus_s3_errors_total');
  t.match(await bus.sup.metrics.registry.getSingleMetricAsString('eventbus_messages_dead_lettered_total'), /reason="payload"\} 1/, 'and in eventbus_messages_dead_lettered_total{reason="payload"}');
  t.same((await bus.depth('probe')), { visible: 0, inFlight: 0 }, 'and it left the queue');
});

t.test('S3 unavailable (a fault proxy on payloads.endpoint): retried with backoff, nothing lost', async (t) => {
  const bucket = uniqueName('pl');
  const { emulator } = await import('../helpers/emulator.js');
  const emu = await emulator();
  t.teardown(() => emu.stop());
  const proxy = await faultProxy(emu.endpoint);
  t.teardown(() => proxy.close());
  // The proxy stands before S3 only: SQS and SNS go to the emulator directly.
  const bus = await startBus([{ queue: 'probe', file: PROBE, events: ['BIG'], maxReceiveCount: 20 }], {
    emu,
    config: { payloads: { bucket, endpoint: proxy.endpoint }, retry: { baseDelaySec: 1, maxDelaySec: 1 } },
  });
  t.teardown(() => bus.stop());
  const publisher = createPublisher({ sns: emu.sns, topic: bus.config.topic, source: 'test', payloads: { bucket, store: lazyPayloadStore(emu.aws) } });
  proxy.setFault('http500');
  const events: CloudEvent[] = [];
  for (let i = 0; i < 3; i++) events.push(await publisher.createEvent('BIG', dataOf(300 * KiB)));
  await waitFor('fetches failing', () => proxy.faulted() >= 6, 15_000);
  t.equal(probes(bus).length, 0, 'no handler ran while S3 failed');
  proxy.setFault('reset');
  const before = proxy.faulted();
  await waitFor('connections reset', () => proxy.faulted() >= before + 3, 15_000);
  proxy.clear();
  await waitFor('every event handled once S3 is back', () => events.every((e) => probes(bus).some((p) => p.id === e.id)), 30_000);
  for (const e of events) {
    const seen = probes(bus).filter((p) => p.id === e.id);
    t.equal(seen.length, 1, `event ${e.id.slice(0, 8)} handled once`);
    t.ok(seen[0]!.receiveCount >= 2, `after ${seen[0]!.receiveCount - 1} failed receive(s) (backoff, not lost)`);
    t.equal(seen[0]!.dataSha256, sha256(JSON.stringify(e.data)), 'byte-identical');
  }
  await waitFor('the queue drained', async () => {
    const d = await bus.depth('probe');
    return d.visible === 0 && d.inFlight === 0;
  });
  t.same(await bus.depth('probe', true), { visible: 0, inFlight: 0 }, 'nothing dead-lettered');
  t.ok(proxy.calls() > proxy.faulted(), 'the successful fetches went through the proxy (the S3-only endpoint)');
});

t.test('the archive keeps a large event whole up to 1 MiB, above it a dataref; replay re-offloads the copy under its new id', async (t) => {
  const bucket = uniqueName('pl');
  const dir = mkdtempSync(join(tmpdir(), 'eventbus-payloads-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const url = join(dir, 'archive.sqlite');
  const bus = await startBus(
    [
      { queue: 'archive', file: ARCHIVE_HANDLER_FILE },
      { queue: 'probe', file: PROBE, events: ['NONE'] },
    ],
    { config: { payloads: { bucket }, archive: { enabled: true, url } } },
  );
  t.teardown(() => bus.stop());
  const store = lazyPayloadStore(bus.emu.aws);
  const publisher = createPublisher({ sns: bus.emu.sns, topic: bus.config.topic, source: 'test', payloads: { bucket, store } });
  const mid = await publisher.createEvent('BIG', dataOf(400 * KiB));
  const huge = await publisher.createEvent('BIG', dataOf(2 * MiB));
  const archive = await openArchive(url);
  t.teardown(() => archive.close());
  const page = await waitFor('both archived', async () => {
    const p = await archive.query({ limit: 10 });
    return p.events.length === 2 ? p : null;
  }, 20_000);
  const byId = new Map(page.events.map((e) => [e.id, e]));
  t.same(byId.get(mid.id), mid, 'a 400 KiB event is archived whole (the resolved event, not the pointer)');
  t.same(byId.get(huge.id), { ...huge, data: null, dataref: `s3://${bucket}/eventbus/${huge.id}` }, 'a 2 MiB event: without its data, with dataref');

  // Replay both straight to the probe queue: copies with new ids, offloaded again (the 2 MiB one read back from S3).
  const r = await replay({
    store: archive,
    filter: {},
    target: { kind: 'queue', sqs: bus.emu.sqs, url: await bus.queueUrl('probe'), name: 'probe' },
    rate: 100,
    payloads: { settings: { bucket, prefix: 'eventbus/', thresholdBytes: 262_144, maxBytes: 64 * MiB }, store },
  });
  t.same([r.sent, r.failed, r.errors], [2, 0, []], 'both replayed');
  await waitFor('the probe got both copies', () => probes(bus).filter((p) => p.queue === 'probe').length >= 2, 20_000);
  for (const original of [mid, huge]) {
    const copy = probes(bus).find((p) => p.queue === 'probe' && p.dataSha256 === sha256(JSON.stringify(original.data)));
    t.ok(copy, `the copy of the ${original === mid ? '400 KiB' : '2 MiB'} event arrived byte-identical`);
    t.not(copy?.id, original.id, 'under a new id');
    t.equal(copy?.offloaded?.key, `eventbus/${copy?.id}`, 'offloaded again, under the copy\'s id');
    const stored = JSON.parse(await store.get(bucket, `eventbus/${copy!.id}`)) as CloudEvent;
    t.equal(stored.replayof, original.id, 'the copy carries replayof');
  }
});

t.test('a large ctx.publish from a handler is offloaded and counted in eventbus_payloads_offloaded_total', async (t) => {
  const bucket = uniqueName('pl');
  // behave.mjs publishes what its event's `publish` asks for; the probe receives it through S3.
  const bus = await startBus(
    [
      { queue: 'relay', events: ['RELAY'] },
      { queue: 'probe', file: PROBE, events: ['BIG'] },
    ],
    { config: { payloads: { bucket } } },
  );
  t.teardown(() => bus.stop());
  const data = dataOf(300 * KiB);
  // The RELAY event carries the data, so it is large too: published through S3 by the test's own publisher (not counted by the supervisor).
  const publisher = createPublisher({ sns: bus.emu.sns, topic: bus.config.topic, source: 'test', payloads: { bucket, store: lazyPayloadStore(bus.emu.aws) } });
  await publisher.createEvent('RELAY', { publish: [{ type: 'BIG', data }] });
  const seen = await waitFor('the probe saw the relayed event', () => probes(bus).find((p) => p.kind === 'payload' && p.type === 'BIG'), 30_000);
  t.equal(seen.dataSha256, sha256(JSON.stringify(data)), 'byte-identical');
  t.equal(seen.offloaded?.bucket, bucket, 'it came through S3');
  const text = await waitFor('the offload counted', async () => {
    const m = await bus.sup.metrics.registry.getSingleMetricAsString('eventbus_payloads_offloaded_total');
    return /eventbus_payloads_offloaded_total\{event_type="BIG"\} 1\b/.test(m) ? m : null;
  });
  t.match(text, /event_type="BIG"\} 1/, 'counted once, from the worker thread that published it');
});
