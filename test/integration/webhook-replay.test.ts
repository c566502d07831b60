// Webhook replay (issue 14, Medium): each delivery is accepted once, per (source, delivery id); a repeat
// answers 200 and publishes nothing. Generic sources: signed timestamps, several secrets, event ids from
// the delivery id (never the body's `id`). Unknown sources and failed signatures answer alike (Low).
import t from 'tap';
import { createHash, createHmac } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fastify from 'fastify';
import type { AddressInfo } from 'node:net';
import { loadConfig } from '../../dist/config.js';
import { extraRoutes } from '../../dist/http/routes.js';
import { createLogger } from '../../dist/log.js';
import { createMetrics } from '../../dist/metrics/registry.js';
import { webhookEventId } from '../../dist/publisher/webhooks.js';
import type { Publisher } from '../../dist/publisher/index.js';
import { startBus, waitFor } from '../helpers/bus.js';

const hmac = (secret: string, payload: string) => createHmac('sha256', secret).update(payload).digest('hex');
const stripeHeader = (body: string, secret: string, ts = Math.floor(Date.now() / 1000)) => `t=${ts},v1=${hmac(secret, `${ts}.${body}`)}`;
const value = (text: string, re: RegExp) => Number(re.exec(text)?.[1] ?? 0);
const nowSec = () => Math.floor(Date.now() / 1000);

t.test('generic sources through the supervisor: timestamps, rotation, replays, delivery ids', async (t) => {
  const bus = await startBus([{ queue: 'shop', events: ['SHOP_INCOMING_WEBHOOK', 'HOOKS_INCOMING_WEBHOOK'] }], {
    config: {
      webhooks: {
        stripe: { secrets: ['whsec_x'] },
        sources: {
          // A sender that signs `<timestamp>.<body>` and sends a delivery id it does not sign.
          shop: { header: 'X-Shop-Signature', secrets: ['shop-old', 'shop-new'], timestampHeader: 'X-Shop-Timestamp', toleranceSec: 300, deliveryIdHeader: 'X-Shop-Delivery' },
          // A sender with neither (GitHub-like): the body is signed, the event id is the body's hash.
          hooks: { header: 'X-Hooks-Signature', secret: 'hooks-secret' },
        },
      },
    },
  });
  t.teardown(() => bus.stop());
  const base = `http://127.0.0.1:${bus.sup.httpPort}`;
  const post = (path: string, body: string, headers: Record<string, string>) => fetch(`${base}${path}`, { method: 'POST', body, headers: { 'content-type': 'application/json', ...headers } });
  const shop = (body: string, o: { delivery: string; ts?: number; secret?: string; signedTs?: number }) => {
    const ts = o.ts ?? nowSec();
    return post('/webhooks/shop', body, {
      'x-shop-delivery': o.delivery,
      'x-shop-timestamp': String(ts),
      'x-shop-signature': `sha256=${hmac(o.secret ?? 'shop-old', `${o.signedTs ?? ts}.${body}`)}`,
    });
  };

  // Two deliveries about one order: the body's `id` is the order's. Each is its own event.
  const paid = JSON.stringify({ id: 'order_1', status: 'paid' });
  const shipped = JSON.stringify({ id: 'order_1', status: 'shipped' });
  const ts = nowSec();
  const first = await shop(paid, { delivery: 'd-1', ts });
  t.equal(first.status, 200);
  t.same(await first.json(), { received: true, id: webhookEventId('shop', 'delivery:d-1') }, 'event id from the delivery id header');
  const second = await shop(shipped, { delivery: 'd-2', secret: 'shop-new' });
  t.equal(second.status, 200, 'the new secret verifies too (rotation)');
  t.same(await second.json(), { received: true, id: webhookEventId('shop', 'delivery:d-2') }, 'another delivery about the same object: another event id');

  // Replays of the first delivery: each answers 200 and publishes nothing.
  const replays: Array<[string, () => Promise<Response>]> = [
    ['the captured request, again', () => shop(paid, { delivery: 'd-1', ts })],
    ['with the unsigned delivery id changed', () => shop(paid, { delivery: 'd-1-forged', ts })],
    ["the sender's own retry (new timestamp, same delivery id)", () => shop(paid, { delivery: 'd-1', ts: ts + 1, secret: 'shop-new' })],
  ];
  for (const [what, send] of replays) {
    const r = await send();
    t.equal(r.status, 200, what);
    t.match(await r.json(), { received: true, duplicate: true }, what);
  }

  // The body's hash is the id of a source without a delivery id header.
  const h1 = JSON.stringify({ id: 42, action: 'opened' });
  const h2 = JSON.stringify({ id: 42, action: 'closed' });
  for (const body of [h1, h2, h1]) await post('/webhooks/hooks', body, { 'x-hooks-signature': hmac('hooks-secret', body) });
  const ids = [h1, h2].map((b) => webhookEventId('hooks', `sha256:${createHash('sha256').update(b).digest('hex')}`));

  const seen = await waitFor('four events handled', () => (bus.started('shop').length >= 4 ? bus.started('shop') : undefined));
  t.same(seen.map((s) => s.id).sort(), [webhookEventId('shop', 'delivery:d-1'), webhookEventId('shop', 'delivery:d-2'), ...ids].sort(), 'one event per delivery');
  t.same(seen.filter((s) => s.type === 'SHOP_INCOMING_WEBHOOK').map((s) => s.data.status).sort(), ['paid', 'shipped']);

  // Refused: a stale or unsigned timestamp, and an unknown source, all look like a path with no route.
  const refusals: Array<[string, Promise<Response>]> = [
    ['a timestamp past the tolerance', shop(JSON.stringify({ n: 1 }), { delivery: 'd-3', ts: nowSec() - 301 })],
    ['a timestamp from the future (by more than the tolerance, whatever second the server reads)', shop(JSON.stringify({ n: 2 }), { delivery: 'd-4', ts: nowSec() + 360 })],
    ['a timestamp that is not the signed one', shop(JSON.stringify({ n: 3 }), { delivery: 'd-5', signedTs: nowSec() - 1000 })],
    ['a retired secret', shop(JSON.stringify({ n: 4 }), { delivery: 'd-6', secret: 'shop-retired' })],
    ['no signature', post('/webhooks/shop', '{}', { 'x-shop-delivery': 'd-7', 'x-shop-timestamp': String(nowSec()) })],
    ['an unknown source', post('/webhooks/nobody', '{}', { 'x-shop-signature': 'sha256=00' })],
    ['a bad Stripe signature', post('/webhooks/stripe', '{"id":"evt_1"}', { 'stripe-signature': stripeHeader('{"id":"evt_1"}', 'whsec_other') })],
  ];
  const answers: string[] = [];
  for (const [what, res] of refusals) {
    const r = await res;
    t.equal(r.status, 404, what);
    // The same answer as fastify gives a path no route serves (its URL aside).
    answers.push(JSON.stringify({ status: r.status, type: r.headers.get('content-type'), body: (await r.text()).replace(/POST:\/webhooks\/[a-z]+/, 'POST:<path>') }));
  }
  const none = await post('/webhooks-none', '{}', {});
  const noRoute = JSON.stringify({ status: none.status, type: none.headers.get('content-type'), body: (await none.text()).replace('POST:/webhooks-none', 'POST:<path>') });
  t.same(new Set(answers), new Set([noRoute]), 'every refusal is the answer for a path with no route');

  const metrics = await (await fetch(`${base}/metrics`)).text();
  t.equal(value(metrics, /eventbus_events_published_total\{event_type="SHOP_INCOMING_WEBHOOK"\} (\d+)/), 2, 'two deliveries, two events');
  t.equal(value(metrics, /eventbus_webhook_requests_total\{source="shop",outcome="duplicate"\} (\d+)/), 3);
  t.equal(value(metrics, /eventbus_webhook_requests_total\{source="hooks",outcome="duplicate"\} (\d+)/), 1);
  t.equal(value(metrics, /eventbus_webhook_requests_total\{source="shop",outcome="stale_timestamp"\} (\d+)/), 2);
  t.equal(value(metrics, /eventbus_webhook_requests_total\{source="shop",outcome="bad_signature"\} (\d+)/), 2);
  t.equal(value(metrics, /eventbus_webhook_requests_total\{source="unknown",outcome="unknown_source"\} (\d+)/), 1);
});

t.test('with the archive on, the delivery records are shared: a replay to another host publishes nothing', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'eventbus-replay-'));
  const published: string[] = [];
  const publisher = {
    async createEvent(type: string, data: unknown, opts: { id: string }) {
      published.push(opts.id);
      return { specversion: '1.0', id: opts.id, type, source: 'test', time: new Date().toISOString(), data };
    },
  } as unknown as Publisher;
  const config = loadConfig({
    env: {},
    overrides: { http: { host: '127.0.0.1', port: 0 }, archive: { enabled: true, url: join(dir, 'archive.sqlite') }, webhooks: { stripe: { secrets: ['whsec_x'] } } },
  });
  // Two hosts: each its own HTTP server and its own connection to the one archive.
  const hosts = await Promise.all(
    [0, 1].map(async () => {
      const app = fastify();
      const routes = extraRoutes({ config, metrics: createMetrics(), log: createLogger({ level: 'silent' }), publisher: () => publisher });
      await routes.register(app);
      await app.listen({ host: '127.0.0.1', port: 0 });
      return { app, routes, url: `http://127.0.0.1:${(app.server.address() as AddressInfo).port}` };
    }),
  );
  t.teardown(async () => {
    for (const h of hosts) {
      await h.app.close();
      await h.routes.close();
    }
    rmSync(dir, { recursive: true, force: true });
  });
  const body = JSON.stringify({ id: 'evt_shared', type: 'invoice.paid' });
  const headers = { 'content-type': 'application/json', 'stripe-signature': stripeHeader(body, 'whsec_x') };
  const a = await fetch(`${hosts[0]!.url}/webhooks/stripe`, { method: 'POST', body, headers });
  t.equal(a.status, 200);
  const b = await fetch(`${hosts[1]!.url}/webhooks/stripe`, { method: 'POST', body, headers });
  t.equal(b.status, 200);
  t.match(await b.json(), { duplicate: true }, 'the other host knows the delivery');
  t.same(published, [webhookEventId('stripe', 'evt_shared')], 'published once');
});
