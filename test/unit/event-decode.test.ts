import t from 'tap';
import { decodeMessage, type RawMessage } from '../../dist/event/index.js';

const base: RawMessage = { messageId: 'm-1', body: '', attributes: {}, sentTimestampMs: Date.UTC(2026, 0, 2, 3, 4, 5), queueArn: 'arn:aws:sqs:us-east-1:1:q' };
const envelope = (message: string, attrs: Record<string, string> = {}) =>
  JSON.stringify({
    Type: 'Notification',
    MessageId: 'sns-1',
    TopicArn: 'arn:aws:sns:us-east-1:1:events',
    Message: message,
    Timestamp: '2026-01-02T03:04:05.000Z',
    MessageAttributes: Object.fromEntries(Object.entries(attrs).map(([k, v]) => [k, { Type: 'String', Value: v }])),
  });

t.test('SNS envelope with a CloudEvent inside', async (t) => {
  const ce = { specversion: '1.0', id: 'e-1', source: 'svc', type: 'USER_CREATED', time: '2026-01-01T00:00:00Z', data: { email: 'a@b' }, traceparent: 'x' };
  const d = decodeMessage({ ...base, body: envelope(JSON.stringify(ce), { 'event-type': 'USER_CREATED' }) });
  t.equal(d.form, 'sns-envelope');
  t.same(d.event, { ...ce, specversion: '1.0' }, 'the event is kept with its extensions');
});

t.test("the body's type wins over the attribute", async (t) => {
  const d = decodeMessage({ ...base, body: envelope(JSON.stringify({ type: 'A', data: 1 }), { 'event-type': 'B' }) });
  t.equal(d.event.type, 'A');
  t.equal(d.event.id, 'sns-1', 'missing id = the SNS MessageId');
  t.equal(d.event.time, '2026-01-02T03:04:05.000Z', 'missing time = the notification time');
  t.equal(d.event.source, base.queueArn, 'missing source = the queue ARN');
});

t.test('raw delivery: bare {type, data}', async (t) => {
  const d = decodeMessage({ ...base, body: JSON.stringify({ type: 'USER_COMMENT', data: { c: 1 } }) });
  t.equal(d.form, 'raw-event');
  t.equal(d.event.type, 'USER_COMMENT');
  t.same(d.event.data, { c: 1 });
  t.equal(d.event.id, 'm-1', 'missing id = the SQS MessageId');
  t.equal(d.event.time, new Date(base.sentTimestampMs!).toISOString(), 'missing time = SentTimestamp');
});

t.test('a JSON object without type is data, typed by the attribute', async (t) => {
  const d = decodeMessage({ ...base, body: JSON.stringify({ email: 'x' }), attributes: { 'event-type': 'USER_CREATED' } });
  t.equal(d.form, 'raw-data');
  t.equal(d.event.type, 'USER_CREATED');
  t.same(d.event.data, { email: 'x' });
});

t.test('other JSON values and non-JSON bodies are data as is', async (t) => {
  const arr = decodeMessage({ ...base, body: '[1,2]' });
  t.same(arr.event.data, [1, 2]);
  t.equal(arr.event.type, null, 'no type and no attribute: type is null');
  const text = decodeMessage({ ...base, body: 'hello <not json>', attributes: { 'event-type': 'PING' } });
  t.equal(text.form, 'non-json');
  t.equal(text.event.data, 'hello <not json>');
  t.equal(text.event.type, 'PING');
  const envText = decodeMessage({ ...base, body: envelope('plain text', { 'event-type': 'X' }) });
  t.equal(envText.form, 'sns-envelope');
  t.equal(envText.event.data, 'plain text');
  t.equal(envText.event.type, 'X');
});

t.test('never throws on odd bodies', async (t) => {
  for (const body of ['', 'null', '"str"', '{', '{"type": 5}', '{"Type":"Notification"}', '\u0000\uFFFF', '{"type":""}']) {
    const d = decodeMessage({ ...base, body });
    t.ok(d.event.id, `decoded ${JSON.stringify(body)}`);
  }
  t.equal(decodeMessage({ ...base, body: '{"type":5,"data":1}' }).event.type, null, 'a non-string type is not a type');
});
