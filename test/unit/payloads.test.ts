// Large events (issue 18) without AWS: the pointer format, the offload decision and its limits
// (every error before any call), keys, and the payloads.* config.
import t from 'tap';
import type { SNSClient } from '@aws-sdk/client-sns';
import { buildEvent, decodeMessage, encodePointer, findPointer, parsePointer, SNS_MAX_BYTES } from '../../dist/event/index.js';
import { payloadKey, prepareEvent, type PayloadStore } from '../../dist/payloads/index.js';
import { createPublisher } from '../../dist/publisher/index.js';
import { loadConfig } from '../../dist/config.js';

t.test('the pointer is the extended clients\' PayloadS3Pointer JSON, and theirs (current and legacy) parse', async (t) => {
  t.equal(encodePointer('b', 'k/1'), '["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"b","s3Key":"k/1"}]');
  t.same(parsePointer(encodePointer('b', 'k'), { ExtendedPayloadSize: '123' }), { bucket: 'b', key: 'k', bytes: 123 });
  // Python's json.dumps puts spaces after separators; the legacy class and size attribute.
  t.same(parsePointer('["com.amazon.sqs.javamessaging.MessageS3Pointer", {"s3BucketName": "b", "s3Key": "k"}]', { SQSLargePayloadSize: '7' }), { bucket: 'b', key: 'k', bytes: 7 });
  t.same(parsePointer(encodePointer('b', 'k'), {}), { bucket: 'b', key: 'k', bytes: null }, 'no size attribute: still a pointer, size unknown');
  for (const body of [
    '["some.other.Class",{"s3BucketName":"b","s3Key":"k"}]',
    '["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"b"}]',
    '["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"","s3Key":"k"}]',
    '["software.amazon.payloadoffloading.PayloadS3Pointer"]',
    '{"type":"X","data":"software.amazon.payloadoffloading.PayloadS3Pointer"}',
    'software.amazon.payloadoffloading.PayloadS3Pointer',
  ]) {
    t.equal(parsePointer(body, { ExtendedPayloadSize: '1' }), null, `not a pointer: ${body.slice(0, 60)}`);
  }
});

t.test('findPointer looks in the raw body and in the SNS envelope; decodeMessage decodes the fetched payload in its place', async (t) => {
  const pointer = encodePointer('b', 'k');
  t.same(findPointer({ body: pointer, attributes: { ExtendedPayloadSize: '9' } }), { bucket: 'b', key: 'k', bytes: 9 }, 'raw delivery');
  const envelope = JSON.stringify({
    Type: 'Notification',
    MessageId: 'm-1',
    Message: pointer,
    Timestamp: '2024-01-01T00:00:00.000Z',
    MessageAttributes: { ExtendedPayloadSize: { Type: 'Number', Value: '42' }, 'event-type': { Type: 'String', Value: 'BIG' } },
  });
  t.same(findPointer({ body: envelope, attributes: {} }), { bucket: 'b', key: 'k', bytes: 42 }, 'in the envelope, with the envelope\'s attributes');
  t.equal(findPointer({ body: JSON.stringify({ type: 'X', data: 1 }), attributes: {} }), null, 'an event is not a pointer');
  const event = buildEvent('BIG', { n: 1 }, 'src', { id: 'e-1' });
  const { event: decoded } = decodeMessage({ messageId: 'm-1', body: envelope, attributes: {}, queueArn: 'arn:q', payload: JSON.stringify(event) });
  t.same(decoded, event, 'the fetched event, as published');
  const { event: bare } = decodeMessage({ messageId: 'm-2', body: pointer, attributes: { 'event-type': 'JAVA' }, queueArn: 'arn:q', payload: '{"orderId":1}' });
  t.same([bare.type, bare.data, bare.id], ['JAVA', { orderId: 1 }, 'm-2'], 'plain data from another producer: type from the attribute, id from the message');
});

t.test('keys derive from the event id', async (t) => {
  t.equal(payloadKey('eventbus/', '0b6f6c2e-1f1e-4c1e-9d5e-1a2b3c4d5e6f'), 'eventbus/0b6f6c2e-1f1e-4c1e-9d5e-1a2b3c4d5e6f');
  t.equal(payloadKey('p/', 'a b/c'), payloadKey('p/', 'a b/c'), 'the same id, the same key (a retried publish overwrites)');
  t.match(payloadKey('p/', 'a b/c'), /^p\/sha256-[0-9a-f]{64}$/, 'other ids are hashed');
  t.match(payloadKey('p/', '..'), /^p\/sha256-/, '.. is not a key segment');
});

t.test('prepareEvent: inline within the threshold, a pointer above, errors naming the config key before any call', async (t) => {
  const settings = { bucket: 'b', prefix: 'eventbus/', thresholdBytes: SNS_MAX_BYTES, maxBytes: 1024 * 1024 };
  const small = prepareEvent(buildEvent('T', 'x', 's'), undefined, settings);
  t.notOk(small.offload, 'small: inline');
  const big = buildEvent('T', 'x'.repeat(SNS_MAX_BYTES), 's', { id: 'e-big' });
  const p = prepareEvent(big, { replayed: 'true' }, settings);
  t.equal(p.body, encodePointer('b', 'eventbus/e-big'));
  t.same(p.attributes, {
    replayed: { DataType: 'String', StringValue: 'true' },
    'event-type': { DataType: 'String', StringValue: 'T' },
    ExtendedPayloadSize: { DataType: 'Number', StringValue: String(Buffer.byteLength(JSON.stringify(big))) },
  });
  t.equal(p.offload?.body, JSON.stringify(big), 'the object is the event JSON');
  t.throws(() => prepareEvent(big, undefined, null), { code: 'ERR_EVENT_TOO_LARGE', message: /payloads\.bucket/ }, 'no bucket: too large, naming payloads.bucket');
  const huge = buildEvent('T', 'x'.repeat(2 * 1024 * 1024), 's');
  t.throws(() => prepareEvent(huge, undefined, settings), { code: 'ERR_EVENT_TOO_LARGE', message: /payloads\.maxBytes allows 1048576/ }, 'over maxBytes: too large, naming payloads.maxBytes');
  const zero = prepareEvent(buildEvent('T', 'x', 's'), undefined, { ...settings, thresholdBytes: 0 });
  t.ok(zero.offload, 'thresholdBytes 0: every event through S3');
});

t.test('the publisher: an oversized event fails before any SNS or S3 call', async (t) => {
  const calls: string[] = [];
  // Records the calls; answers as SNS does when it accepts them all.
  const sns = {
    send: async (c: { constructor: { name: string }; input: { PublishBatchRequestEntries?: Array<{ Id?: string }> } }) => {
      calls.push(c.constructor.name);
      const entries = c.input.PublishBatchRequestEntries;
      return entries ? { Successful: entries.map((e) => ({ Id: e.Id, MessageId: `m-${e.Id}` })), Failed: [] } : { MessageId: 'm' };
    },
  } as unknown as SNSClient;
  const store: PayloadStore = { put: async () => void calls.push('PutObject'), get: async () => '' };
  const p = createPublisher({ sns, topic: 'arn:aws:sns:us-east-1:123456789012:events', source: 's', payloads: { bucket: 'b', maxBytes: 300_000, store } });
  await t.rejects(p.createEvent('T', 'x'.repeat(400_000)), { code: 'ERR_EVENT_TOO_LARGE', message: /payloads\.maxBytes/ });
  await t.rejects(p.publishBatch([{ type: 'OK', data: 1 }, { type: 'T', data: 'x'.repeat(400_000) }]), { code: 'ERR_EVENT_TOO_LARGE' });
  const off = createPublisher({ sns, topic: 'arn:aws:sns:us-east-1:123456789012:events', source: 's' });
  await t.rejects(off.createEvent('T', 'x'.repeat(300_000)), { code: 'ERR_EVENT_TOO_LARGE', message: /set payloads\.bucket/ });
  t.same(calls, [], 'no call was made');
  // Within the limits: the payload is stored before the pointer is published.
  await p.createEvent('T', 'x'.repeat(270_000));
  t.same(calls, ['PutObject', 'PublishCommand'], 'PutObject, then Publish');
  calls.length = 0;
  const r = await p.publishBatch(Array.from({ length: 12 }, (_, i) => ({ type: 'T', data: 'x'.repeat(i % 2 ? 270_000 : 10) })));
  t.equal(r.successful.length, 12, 'all twelve accepted');
  t.equal(calls.filter((c) => c === 'PutObject').length, 6, 'six payloads stored');
  t.same(calls.filter((c) => c !== 'PutObject'), ['PublishBatchCommand', 'PublishBatchCommand'], 'pointers are small: 10 + 2 entries');
});

t.test('payloads.* config', async (t) => {
  const c = loadConfig({ env: {} });
  t.same(c.payloads, { bucket: null, prefix: 'eventbus/', thresholdBytes: SNS_MAX_BYTES, maxBytes: 64 * 1024 * 1024, retentionDays: 14, endpoint: null }, 'defaults: off');
  t.equal(loadConfig({ env: { EVENTBUS_PAYLOADS_BUCKET: 'my-bucket' } }).payloads.bucket, 'my-bucket');
  t.throws(() => loadConfig({ env: {}, overrides: { payloads: { thresholdBytes: SNS_MAX_BYTES + 1 } } }), { code: 'ERR_CONFIG_INVALID', message: /payloads\.thresholdBytes .* <= 262144/ });
  t.throws(() => loadConfig({ env: {}, overrides: { payloads: { bucket: 'Bad_Bucket' } } }), { code: 'ERR_CONFIG_INVALID', message: /payloads\.bucket/ });
  t.throws(() => loadConfig({ env: {}, overrides: { payloads: { maxBytes: 1000 } } }), { code: 'ERR_CONFIG_INVALID', message: /payloads\.maxBytes/ });
  t.throws(() => loadConfig({ env: {}, overrides: { payloads: { bukket: 'x' } } }), { code: 'ERR_CONFIG_INVALID' }, 'unknown keys fail');
});
