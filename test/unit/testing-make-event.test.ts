// makeEvent (eventbus/testing): an event as a handler receives it. That it equals what a handler
// really receives on the emulator is checked end to end in test/e2e/testing-kit.test.ts.
import t from 'tap';
import { makeEvent, TEST_SOURCE } from '../../dist/testing/index.js';
import { SNS_MAX_BYTES } from '../../dist/event/index.js';

t.test('a CloudEvents 1.0 event with the defaults a publish gives', async (t) => {
  const before = Date.now();
  const e = makeEvent('USER_CREATED', { email: 'ada@example.com' });
  t.same(Object.keys(e), ['specversion', 'id', 'source', 'type', 'time', 'datacontenttype', 'data'], 'the publisher\'s attributes, in its order');
  t.equal(e.specversion, '1.0');
  t.match(e.id, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  t.equal(e.source, TEST_SOURCE);
  t.equal(e.type, 'USER_CREATED');
  t.equal(e.datacontenttype, 'application/json');
  t.ok(Date.parse(e.time) >= before - 1 && Date.parse(e.time) <= Date.now(), 'time is now');
  t.equal(new Date(e.time).toISOString(), e.time, 'time is RFC 3339 (ISO 8601 UTC)');
  t.same(e.data, { email: 'ada@example.com' });
  t.not(makeEvent('A', null).id, makeEvent('A', null).id, 'a new id each time');
});

t.test('overrides: id, source, subject, time, extensions', async (t) => {
  const e = makeEvent('ORDER_PLACED', 1, { id: 'order-1', source: 'shop', subject: 'orders/1', time: new Date(0), extensions: { tenant: 'acme' } });
  t.same(e, {
    specversion: '1.0',
    id: 'order-1',
    source: 'shop',
    type: 'ORDER_PLACED',
    time: '1970-01-01T00:00:00.000Z',
    datacontenttype: 'application/json',
    subject: 'orders/1',
    data: 1,
    tenant: 'acme',
  });
  t.equal(makeEvent('X', {}, { time: '2026-01-02T03:04:05.000Z' }).time, '2026-01-02T03:04:05.000Z');
  // Only the documented overrides: SNS attributes are not part of the event.
  const withAttributes = makeEvent('X', {}, { attributes: { a: 'b' } } as never);
  t.notOk('attributes' in withAttributes);
  t.notOk('a' in withAttributes);
});

t.test('data arrives as JSON carries it', async (t) => {
  const e = makeEvent('X', { at: new Date(0), gone: undefined, list: [undefined, 1], nested: { big: 2 ** 53 } });
  t.same(e.data, { at: '1970-01-01T00:00:00.000Z', list: [null, 1], nested: { big: 2 ** 53 } });
  t.notOk('gone' in (e.data as object));
  t.equal(makeEvent('X', undefined).data, null, 'undefined data is null, as published');
  t.equal(makeEvent('X', 'text').data, 'text');
});

t.test('what the publisher refuses, makeEvent refuses with the same error', async (t) => {
  t.throws(() => makeEvent('', {}), { code: 'ERR_EVENT_INVALID' });
  t.throws(() => makeEvent('X', {}, { extensions: { 'Not-Valid': 'x' } }), { code: 'ERR_EVENT_INVALID' });
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  t.throws(() => makeEvent('X', cyclic), { code: 'ERR_EVENT_INVALID' });
  t.throws(() => makeEvent('X', 'x'.repeat(SNS_MAX_BYTES)), { code: 'ERR_EVENT_TOO_LARGE' });
});
