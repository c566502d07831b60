import t from 'tap';
import { buildEvent, derivedEventId, encodeEvent, SNS_MAX_BYTES } from '../../dist/event/index.js';
import { EventBusError } from '../../dist/errors.js';

t.test('buildEvent makes a CloudEvents 1.0 envelope', async (t) => {
  const e = buildEvent('USER_CREATED', { a: 1 }, 'svc', { subject: 'u/1', time: new Date(0) });
  t.equal(e.specversion, '1.0');
  t.match(e.id, /^[0-9a-f-]{36}$/);
  t.equal(e.source, 'svc');
  t.equal(e.type, 'USER_CREATED');
  t.equal(e.time, '1970-01-01T00:00:00.000Z');
  t.equal(e.subject, 'u/1');
  t.equal(e.datacontenttype, 'application/json');
  t.same(e.data, { a: 1 });
  t.throws(() => buildEvent('', {}, 'svc'), EventBusError);
  t.throws(() => buildEvent('X', {}, 'svc', { extensions: { 'Bad-Name': 'v' } }), /extension name/);
});

t.test('encodeEvent sets event-type and rejects oversized events before any call', async (t) => {
  const ok = encodeEvent(buildEvent('T', 'x', 's'));
  t.same(ok.attributes['event-type'], { DataType: 'String', StringValue: 'T' });
  const big = buildEvent('T', 'x'.repeat(SNS_MAX_BYTES), 's');
  t.throws(() => encodeEvent(big), { code: 'ERR_EVENT_TOO_LARGE' });
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  t.throws(() => encodeEvent(buildEvent('T', cyclic, 's')), { code: 'ERR_EVENT_INVALID' });
});

t.test('derived ids are deterministic UUIDs', async (t) => {
  const a = derivedEventId('e-1', 'email', 0);
  t.equal(a, derivedEventId('e-1', 'email', 0), 'same inputs, same id');
  t.not(a, derivedEventId('e-1', 'email', 1), 'position matters');
  t.not(a, derivedEventId('e-1', 'billing', 0), 'queue matters');
  t.match(a, /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
});
