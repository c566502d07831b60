// `eventbus ingress`: the webhook ingress on its own port publishes a signed Stripe webhook and refuses a bad one.
import t from 'tap';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { provision } from '../../dist/publisher/provision.js';
import { signStripePayload } from '../../dist/publisher/webhooks.js';
import { emulator, uniqueName, waitFor } from '../helpers/emulator.js';
import { freePort } from '../helpers/ports.js';
import { spawnNode, writeConfig, writeHandlers } from '../helpers/process.js';

t.test('a signed Stripe webhook is published; a tampered one gets 4xx and publishes nothing', async (t) => {
  const emu = await emulator();
  t.teardown(() => emu.stop());
  const topic = uniqueName('topic');
  const queue = uniqueName('billing');
  const r = await provision(emu, {
    topic,
    handlers: [{ file: 'x', queue, queueName: queue, dlqName: `${queue}-dlq`, events: ['STRIPE_INCOMING_WEBHOOK'], concurrency: 1, prefetch: 1, visibilityTimeoutSec: 30, timeoutMs: 1000, maxReceiveCount: 5, ordered: false, groupConcurrency: null, publishes: null }],
  });
  const port = await freePort();
  const secret = 'whsec_test_secret';
  const config = writeConfig({
    endpoint: emu.endpoint,
    region: 'us-east-1',
    topic,
    handlersDir: writeHandlers([{ queue: 'unused', events: ['X'] }]),
    webhooks: { stripe: { secrets: [secret] } },
  });
  const p = spawnNode('bin/eventbus.js', ['ingress', '--config', config, '--host', '127.0.0.1', '--port', String(port)]);
  t.teardown(() => p.kill());
  await waitFor('ingress listening', async () => (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => null))?.status === 200, 20_000);

  const body = JSON.stringify({ id: 'evt_123', type: 'invoice.paid', data: { object: { amount: 4200 } } });
  const ok = await fetch(`http://127.0.0.1:${port}/webhooks/stripe`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'stripe-signature': signStripePayload(body, secret) },
    body,
  });
  t.equal(ok.status, 200, 'accepted once SNS took it');
  const tampered = await fetch(`http://127.0.0.1:${port}/webhooks/stripe`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'stripe-signature': signStripePayload(body, secret) },
    body: body.replace('4200', '1'),
  });
  t.ok(tampered.status >= 400 && tampered.status < 500, `tampered body refused (${tampered.status})`);

  const got = await waitFor('the event on the billing queue', async () => {
    const m = await emu.sqs.send(new ReceiveMessageCommand({ QueueUrl: r.queues[0]!.url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
    return m.Messages?.length ? m.Messages : null;
  });
  t.equal(got.length, 1, 'exactly one event published');
  const event = JSON.parse(JSON.parse(got[0]!.Body!).Message);
  t.match(event, { type: 'STRIPE_INCOMING_WEBHOOK', data: { id: 'evt_123', type: 'invoice.paid' } });
  const again = await emu.sqs.send(new ReceiveMessageCommand({ QueueUrl: r.queues[0]!.url, WaitTimeSeconds: 1 }));
  t.notOk(again.Messages?.length, 'the refused webhook published nothing');
  const metrics = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  t.match(metrics, /eventbus_webhook_requests_total\{[^}]*source="stripe"[^}]*\} 1/, 'attempts are counted');
  p.child.kill('SIGTERM');
  t.equal((await p.exited).code, 0);
});
