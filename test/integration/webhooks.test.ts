// Webhook ingress on the supervisor's HTTP port: a signed Stripe webhook reaches the billing handler and
// the archive (published once, even when redelivered); refused requests publish nothing and are counted.
import t from 'tap';
import { createHmac } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ARCHIVE_HANDLER_FILE, openArchive } from '../../dist/archive/index.js';
import { webhookEventId, WEBHOOK_MAX_BODY_BYTES } from '../../dist/publisher/webhooks.js';
import { startBus, waitFor } from '../helpers/bus.js';

const stripeHeader = (body: string, secret: string, t = Math.floor(Date.now() / 1000)) => `t=${t},v1=${createHmac('sha256', secret).update(`${t}.${body}`).digest('hex')}`;
const value = (text: string, re: RegExp) => Number(re.exec(text)?.[1] ?? 0);

t.test('Stripe and generic webhooks through the supervisor, into billing and the archive', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'eventbus-archive-'));
  const archiveUrl = join(dir, 'archive.sqlite');
  const bus = await startBus(
    [
      { queue: 'billing', events: ['STRIPE_INCOMING_WEBHOOK', 'USER_CREATED'] },
      { queue: 'archive', file: ARCHIVE_HANDLER_FILE },
    ],
    {
      config: {
        webhooks: { stripe: { secrets: ['whsec_old', 'whsec_new'] }, sources: { github: { secret: 'gh-secret', header: 'X-Hub-Signature-256' } } },
        archive: { enabled: true, url: archiveUrl },
      },
    },
  );
  t.teardown(async () => {
    await bus.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const base = `http://127.0.0.1:${bus.sup.httpPort}`;
  const post = (path: string, body: string | Buffer, headers: Record<string, string> = {}) =>
    fetch(`${base}${path}`, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });

  const stripeEvent = JSON.stringify({ id: 'evt_1PaidInvoice', object: 'event', type: 'invoice.paid', data: { object: { amount_paid: 1299 } } }, null, 2);
  const first = await post('/webhooks/stripe', stripeEvent, { 'stripe-signature': stripeHeader(stripeEvent, 'whsec_new') });
  t.equal(first.status, 200, 'accepted once SNS took it');
  const { id } = (await first.json()) as { id: string };
  t.equal(id, webhookEventId('stripe', 'evt_1PaidInvoice'), 'event id derived from the Stripe event id');

  const seen = await waitFor('billing ran the webhook', () => bus.started('billing').find((s) => s.id === id));
  t.equal(seen.type, 'STRIPE_INCOMING_WEBHOOK');
  t.same(seen.data, JSON.parse(stripeEvent), 'the Stripe event is the data');
  t.equal(seen.source, 'webhook/stripe');

  // Stripe redelivers (a timeout on its side): new timestamp, signed with the old secret during a rotation.
  // The delivery (Stripe's event id) was accepted already: 200, and it is not published again.
  const again = await post('/webhooks/stripe', stripeEvent, { 'stripe-signature': stripeHeader(stripeEvent, 'whsec_old', Math.floor(Date.now() / 1000) + 1) });
  t.equal(again.status, 200);
  t.same(await again.json(), { received: true, id, duplicate: true }, 'a redelivery gets the same event id, and is a duplicate');

  const gh = JSON.stringify({ id: 991, action: 'opened' });
  const ghRes = await post('/webhooks/github', gh, { 'x-hub-signature-256': `sha256=${createHmac('sha256', 'gh-secret').update(gh).digest('hex')}` });
  t.equal(ghRes.status, 200, 'generic HMAC source');

  // Refused: each publishes nothing. What fails authentication gets fastify's 404 (as for a path with
  // no route: nothing tells which sources exist); the rest, a 4xx with a short reason.
  const refusals: Array<[string, Promise<Response>, number, RegExp]> = [
    ['tampered body', post('/webhooks/stripe', stripeEvent.replace('1299', '1'), { 'stripe-signature': stripeHeader(stripeEvent, 'whsec_new') }), 404, /not found/],
    ['wrong secret', post('/webhooks/stripe', stripeEvent, { 'stripe-signature': stripeHeader(stripeEvent, 'whsec_other') }), 404, /not found/],
    ['no signature', post('/webhooks/stripe', stripeEvent), 404, /not found/],
    ['expired', post('/webhooks/stripe', stripeEvent, { 'stripe-signature': stripeHeader(stripeEvent, 'whsec_new', Math.floor(Date.now() / 1000) - 3600) }), 404, /not found/],
    ['not JSON', post('/webhooks/stripe', 'not json', { 'stripe-signature': stripeHeader('not json', 'whsec_new'), 'content-type': 'text/plain' }), 400, /Stripe event/],
    ['no event id', post('/webhooks/stripe', '{"type":"x"}', { 'stripe-signature': stripeHeader('{"type":"x"}', 'whsec_new') }), 400, /Stripe event/],
    ['unknown source', post('/webhooks/nobody', gh, { 'x-hub-signature-256': 'sha256=00' }), 404, /not found/],
    ['generic bad signature', post('/webhooks/github', gh, { 'x-hub-signature-256': `sha256=${'0'.repeat(64)}` }), 404, /not found/],
    ['too large', post('/webhooks/stripe', Buffer.alloc(WEBHOOK_MAX_BODY_BYTES + 10, 0x20), { 'stripe-signature': 't=1,v1=00' }), 413, /larger/],
  ];
  for (const [what, res, status, reason] of refusals) {
    const r = await res;
    t.equal(r.status, status, `${what}: ${status}`);
    const body = (await r.json()) as { error?: string; message?: string };
    t.match(body.error === 'Not Found' ? body.message : body.error, reason, `${what}: short reason`);
  }

  // Everything that was published is archived: the Stripe event once, the GitHub one once.
  const store = await openArchive(archiveUrl);
  t.teardown(() => store.close());
  await waitFor('both archived', async () => (await store.count({})) >= 2, 15_000);
  await waitFor('the archive queue drained', async () => {
    const d = await bus.depth('archive');
    return d.visible === 0 && d.inFlight === 0;
  });
  const page = await store.query({});
  t.same(page.events.map((e) => e.type).sort(), ['GITHUB_INCOMING_WEBHOOK', 'STRIPE_INCOMING_WEBHOOK'], 'the redelivered webhook is archived once; nothing refused was published');
  t.equal(page.events.find((e) => e.type === 'STRIPE_INCOMING_WEBHOOK')?.id, id);

  const metrics = await (await fetch(`${base}/metrics`)).text();
  t.equal(value(metrics, /eventbus_webhook_requests_total\{source="stripe",outcome="published"\} (\d+)/), 1);
  t.equal(value(metrics, /eventbus_webhook_requests_total\{source="stripe",outcome="duplicate"\} (\d+)/), 1);
  t.equal(value(metrics, /eventbus_webhook_requests_total\{source="github",outcome="published"\} (\d+)/), 1);
  t.equal(value(metrics, /eventbus_webhook_requests_total\{source="stripe",outcome="bad_signature"\} (\d+)/), 2);
  t.equal(value(metrics, /eventbus_webhook_requests_total\{source="stripe",outcome="missing_signature"\} (\d+)/), 1);
  t.equal(value(metrics, /eventbus_webhook_requests_total\{source="stripe",outcome="stale_timestamp"\} (\d+)/), 1);
  t.equal(value(metrics, /eventbus_webhook_requests_total\{source="stripe",outcome="malformed"\} (\d+)/), 2);
  t.equal(value(metrics, /eventbus_webhook_requests_total\{source="stripe",outcome="too_large"\} (\d+)/), 1);
  t.equal(value(metrics, /eventbus_webhook_requests_total\{source="unknown",outcome="unknown_source"\} (\d+)/), 1);
  t.equal(value(metrics, /eventbus_webhook_requests_total\{source="github",outcome="bad_signature"\} (\d+)/), 1);
  t.equal(value(metrics, /eventbus_events_published_total\{event_type="STRIPE_INCOMING_WEBHOOK"\} (\d+)/), 1, 'only the accepted delivery was published, once');
  t.equal(bus.started('billing').filter((s) => s.id === id).length, 1, 'billing ran it once');
  t.notMatch(metrics, /whsec_|gh-secret/, 'no secret in metrics');
});

t.test('no webhook configured: no webhook routes', async (t) => {
  const bus = await startBus([{ queue: 'q', events: ['X'] }]);
  t.teardown(() => bus.stop());
  const r = await fetch(`http://127.0.0.1:${bus.sup.httpPort}/webhooks/stripe`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });
  t.equal(r.status, 404);
  const e = await fetch(`http://127.0.0.1:${bus.sup.httpPort}/events`);
  t.equal(e.status, 404, '/events only when the archive is on');
});
