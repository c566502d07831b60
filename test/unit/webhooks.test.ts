// Webhook signature verification: Stripe's scheme and the generic HMAC one, as pure functions.
import t from 'tap';
import { createHmac } from 'node:crypto';
import {
  parseStripeSignature,
  verifyHmacSignature,
  verifyStripeSignature,
  webhookEventId,
  webhookEventType,
} from '../../dist/publisher/webhooks.js';

// Computed here with node:crypto, independently of the module under test: v1 = hex HMAC-SHA256 of "t.payload".
const sig = (secret: string, t: number, payload: string) => createHmac('sha256', secret).update(`${t}.${payload}`).digest('hex');
const payload = '{\n  "id": "evt_1", "object": "event",\n  "type": "invoice.paid", "data": {"object": {"amount": 1299}}\n}';
const NOW = 1_714_000_000;
const SECRET = 'whsec_test_secret';

t.test('Stripe: a valid signature', async (t) => {
  const header = `t=${NOW},v1=${sig(SECRET, NOW, payload)}`;
  t.same(verifyStripeSignature({ payload, header, secrets: [SECRET], nowSec: NOW }), { ok: true, timestamp: NOW });
  t.same(verifyStripeSignature({ payload: Buffer.from(payload), header, secrets: [SECRET], nowSec: NOW + 299 }), { ok: true, timestamp: NOW }, 'raw bytes, within tolerance');
});

t.test('Stripe: the signature covers the raw bytes', async (t) => {
  const header = `t=${NOW},v1=${sig(SECRET, NOW, payload)}`;
  const tampered = payload.replace('1299', '1');
  t.match(verifyStripeSignature({ payload: tampered, header, secrets: [SECRET], nowSec: NOW }), { ok: false, outcome: 'bad_signature' }, 'tampered body');
  const reserialised = JSON.stringify(JSON.parse(payload));
  t.match(verifyStripeSignature({ payload: reserialised, header, secrets: [SECRET], nowSec: NOW }), { ok: false, outcome: 'bad_signature' }, 're-serialised JSON does not verify');
  t.match(verifyStripeSignature({ payload, header: `t=${NOW + 1},v1=${sig(SECRET, NOW, payload)}`, secrets: [SECRET], nowSec: NOW }), { ok: false, outcome: 'bad_signature' }, 'the timestamp is signed too');
});

t.test('Stripe: wrong secret, expired, missing and malformed headers', async (t) => {
  t.match(verifyStripeSignature({ payload, header: `t=${NOW},v1=${sig('whsec_other', NOW, payload)}`, secrets: [SECRET], nowSec: NOW }), { ok: false, outcome: 'bad_signature' }, 'wrong secret');
  const old = NOW - 301;
  t.match(verifyStripeSignature({ payload, header: `t=${old},v1=${sig(SECRET, old, payload)}`, secrets: [SECRET], nowSec: NOW }), { ok: false, outcome: 'stale_timestamp' }, 'older than 300 s');
  const future = NOW + 301;
  t.match(verifyStripeSignature({ payload, header: `t=${future},v1=${sig(SECRET, future, payload)}`, secrets: [SECRET], nowSec: NOW }), { ok: false, outcome: 'stale_timestamp' }, 'too far ahead');
  t.match(verifyStripeSignature({ payload, header: `t=${old},v1=${sig(SECRET, old, payload)}`, secrets: [SECRET], nowSec: NOW, toleranceSec: 600 }), { ok: true }, 'tolerance is configurable');
  t.match(verifyStripeSignature({ payload, header: undefined, secrets: [SECRET], nowSec: NOW }), { ok: false, outcome: 'missing_signature' });
  t.match(verifyStripeSignature({ payload, header: `v1=${sig(SECRET, NOW, payload)}`, secrets: [SECRET], nowSec: NOW }), { ok: false, outcome: 'bad_signature' }, 'no timestamp');
  t.match(verifyStripeSignature({ payload, header: `t=${NOW}`, secrets: [SECRET], nowSec: NOW }), { ok: false, outcome: 'bad_signature' }, 'no v1');
  t.match(verifyStripeSignature({ payload, header: `t=${NOW},v0=${sig(SECRET, NOW, payload)}`, secrets: [SECRET], nowSec: NOW }), { ok: false, outcome: 'bad_signature' }, 'v0 (test mode scheme) is not accepted');
  t.match(verifyStripeSignature({ payload, header: `t=${NOW},v1=zz${sig(SECRET, NOW, payload).slice(2)}`, secrets: [SECRET], nowSec: NOW }), { ok: false }, 'non-hex signature');
  t.match(verifyStripeSignature({ payload, header: `t=${NOW},v1=${sig(SECRET, NOW, payload).slice(0, 40)}`, secrets: [SECRET], nowSec: NOW }), { ok: false }, 'short signature');
});

t.test('Stripe: several v1 signatures and rotated secrets', async (t) => {
  const header = `t=${NOW},v1=${sig('whsec_unrelated', NOW, payload)},v1=${sig(SECRET, NOW, payload)},v0=abc`;
  t.match(verifyStripeSignature({ payload, header, secrets: [SECRET], nowSec: NOW }), { ok: true }, 'any v1 may match');
  // During a rotation Stripe signs with both secrets; we may hold the old, the new, or both.
  const rotating = `t=${NOW},v1=${sig('whsec_new', NOW, payload)},v1=${sig('whsec_old', NOW, payload)}`;
  t.match(verifyStripeSignature({ payload, header: rotating, secrets: ['whsec_old'], nowSec: NOW }), { ok: true }, 'old secret only');
  t.match(verifyStripeSignature({ payload, header: rotating, secrets: ['whsec_new'], nowSec: NOW }), { ok: true }, 'new secret only');
  t.match(verifyStripeSignature({ payload, header: `t=${NOW},v1=${sig('whsec_new', NOW, payload)}`, secrets: ['whsec_old', 'whsec_new'], nowSec: NOW }), { ok: true }, 'several configured secrets');
  t.match(verifyStripeSignature({ payload, header: rotating, secrets: ['whsec_retired'], nowSec: NOW }), { ok: false, outcome: 'bad_signature' }, 'a retired secret no longer verifies');
  t.same(parseStripeSignature(' t=5 , v1=aa,v1=bb,junk,x=y'), { timestamp: 5, v1: ['aa', 'bb'] });
});

t.test('generic HMAC source', async (t) => {
  const body = '{"id":42,"action":"opened"}';
  const hex = createHmac('sha256', 'gh-secret').update(body).digest('hex');
  const b64 = createHmac('sha256', 'gh-secret').update(body).digest('base64');
  t.match(verifyHmacSignature({ payload: body, signature: hex, secrets: ['gh-secret'] }), { ok: true }, 'hex');
  t.match(verifyHmacSignature({ payload: body, signature: `sha256=${hex}`, secrets: ['gh-secret'] }), { ok: true }, 'sha256= prefix');
  t.match(verifyHmacSignature({ payload: body, signature: b64, secrets: ['gh-secret'] }), { ok: true }, 'base64');
  t.match(verifyHmacSignature({ payload: body, signature: hex, secrets: ['other'] }), { ok: false, outcome: 'bad_signature' }, 'wrong secret');
  t.match(verifyHmacSignature({ payload: `${body} `, signature: hex, secrets: ['gh-secret'] }), { ok: false, outcome: 'bad_signature' }, 'tampered body');
  t.match(verifyHmacSignature({ payload: body, signature: undefined, secrets: ['gh-secret'] }), { ok: false, outcome: 'missing_signature' });
  t.match(verifyHmacSignature({ payload: body, signature: 'sha256=', secrets: ['gh-secret'] }), { ok: false, outcome: 'bad_signature' });
});

t.test('event ids and types of webhooks', async (t) => {
  t.equal(webhookEventId('stripe', 'evt_1'), webhookEventId('stripe', 'evt_1'), 'a redelivery gets the same id');
  t.not(webhookEventId('stripe', 'evt_1'), webhookEventId('stripe', 'evt_2'));
  t.not(webhookEventId('stripe', 'evt_1'), webhookEventId('github', 'evt_1'), 'per source');
  t.match(webhookEventId('stripe', 'evt_1'), /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  t.equal(webhookEventType('github'), 'GITHUB_INCOMING_WEBHOOK');
  t.equal(webhookEventType('my-shop'), 'MY_SHOP_INCOMING_WEBHOOK');
});

t.test('generic HMAC source: several secrets (rotation), signed timestamp and delivery id', async (t) => {
  const { signedPayloadOf, checkTimestamp } = await import('../../dist/publisher/webhooks.js');
  const body = Buffer.from('{"id":"obj_1"}');
  const signed = signedPayloadOf('v0:{timestamp}:{id}:{body}', { body, timestamp: '1714000000', id: 'd-1' });
  t.equal(signed.toString(), 'v0:1714000000:d-1:{"id":"obj_1"}', 'a template such as Slack\'s');
  const sig = createHmac('sha256', 'new').update(signed).digest('hex');
  t.match(verifyHmacSignature({ payload: signed, signature: sig, secrets: ['old', 'new'] }), { ok: true }, 'any configured secret verifies');
  t.match(verifyHmacSignature({ payload: signed, signature: sig, secrets: ['old'] }), { ok: false, outcome: 'bad_signature' }, 'a retired secret no longer does');
  t.match(checkTimestamp('1714000000', 300, 1_714_000_300), { ok: true, timestamp: 1_714_000_000 });
  t.match(checkTimestamp('1714000000', 300, 1_714_000_301), { ok: false, outcome: 'stale_timestamp' }, 'too old');
  t.match(checkTimestamp('1714000400', 300, 1_714_000_000), { ok: false, outcome: 'stale_timestamp' }, 'too far ahead');
  for (const bad of [undefined, '', 'yesterday', '1.5', '-1']) t.match(checkTimestamp(bad, 300, 1_714_000_000), { ok: false, outcome: 'stale_timestamp' }, `${bad}`);
});

t.test('the in-memory delivery ledger: bounded, least recently used dropped first', async (t) => {
  const { MemoryDeliveryLedger } = await import('../../dist/publisher/deliveries.js');
  const l = new MemoryDeliveryLedger(3);
  const now = 1_000_000;
  for (const id of ['a', 'b', 'c']) {
    t.equal(await l.claimDelivery('s', id, now, 1000), 'new');
    await l.completeDelivery('s', id, now, 60_000);
  }
  t.equal(await l.claimDelivery('s', 'a', now + 1, 1000), 'done', 'a is used again: most recent now');
  t.equal(await l.claimDelivery('s', 'd', now + 2, 1000), 'new');
  t.equal(l.size, 3, 'never more than the bound');
  t.equal(await l.claimDelivery('s', 'b', now + 3, 1000), 'new', 'b was the least recently used: dropped');
  t.equal(await l.claimDelivery('s', 'd', now + 4, 1000), 'pending');
  await l.releaseDelivery('s', 'd');
  t.equal(await l.claimDelivery('s', 'd', now + 5, 1000), 'new', 'released');
  t.equal(await l.claimDelivery('s', 'd', now + 1005, 1000), 'new', 'a lease that ran out');
  t.equal(await l.claimDelivery('s', 'a', now + 60_001, 1000), 'new', 'a completed record expires after its TTL');
  t.throws(() => new MemoryDeliveryLedger(0));
});
