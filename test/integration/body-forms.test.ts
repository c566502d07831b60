// Every body form reaches the handler as an event (SPEC "Decoding"); none crashes the supervisor or is dropped.
import t from 'tap';
import { startBus, waitFor } from '../helpers/bus.js';

t.test('SNS envelope, raw CloudEvent, bare {type, data}, typed by attribute, other JSON, non-JSON', async (t) => {
  const bus = await startBus([{ queue: 'any' }]);
  t.teardown(() => bus.stop());
  const published = await bus.publisher.createEvent('VIA_SNS', { n: 1 }, { subject: 's-1' });
  await bus.sendRaw('any', JSON.stringify({ specversion: '1.0', id: 'raw-ce', source: 'svc', type: 'RAW_CE', time: '2026-01-01T00:00:00Z', data: { n: 2 } }));
  await bus.sendRaw('any', JSON.stringify({ type: 'BARE', data: { n: 3 } }));
  await bus.sendRaw('any', JSON.stringify({ n: 4 }), { 'event-type': 'BY_ATTRIBUTE' });
  await bus.sendRaw('any', JSON.stringify([5, 'five']), { 'event-type': 'ARRAY' });
  await bus.sendRaw('any', 'plain text, not JSON \u00e9\u4e2d');
  await waitFor('six events', () => bus.ended('any').length === 6, 15_000);
  const byType = (type: string | null) => bus.ended('any').find((s) => s.type === type);

  t.match(byType('VIA_SNS'), { id: published.id, source: 'test', data: { n: 1 } }, 'SNS envelope: the published event');
  t.match(byType('RAW_CE'), { id: 'raw-ce', source: 'svc', data: { n: 2 } }, 'raw CloudEvent kept as is');
  const bare = byType('BARE')!;
  t.same(bare.data, { n: 3 });
  t.equal(bare.id, bare.messageId, 'missing id = the SQS MessageId');
  t.match(bare.source, /^arn:aws:sqs:/, 'missing source = the queue ARN');
  t.same(byType('BY_ATTRIBUTE')!.data, { n: 4 }, 'a JSON object without type is data, typed by the attribute');
  t.same(byType('ARRAY')!.data, [5, 'five']);
  t.equal(byType(null)!.data, 'plain text, not JSON \u00e9\u4e2d', 'non-JSON is a string with type null');
  await waitFor('queue empty', async () => {
    const d = await bus.depth('any');
    return d.visible + d.inFlight === 0;
  });
});
