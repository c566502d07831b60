// The example handlers on the real supervisor and the embedded emulator (eventbus/testing's
// startTestBus), as a user's integration test: both handlers of a USER_CREATED, the Stripe webhook
// event, and a bad address ending in email's DLQ at once.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { makeEvent, runHandler, startTestBus, type TestBus } from '@eventbus-sqs/eventbus/testing';
import billing from './billing.js';

test('billing handles a Stripe webhook event', async () => {
  const { result, logs } = await runHandler(billing, makeEvent('STRIPE_INCOMING_WEBHOOK', { type: 'invoice.paid' }));
  assert.equal(result, 'success');
  assert.ok(logs.some((l) => l.msg === 'stripe webhook processed' && l.stripeType === 'invoice.paid'));
});

let bus: TestBus;
before(async () => {
  // This folder, compiled: email.js and billing.js (the .test.js files are not handlers).
  bus = await startTestBus({ handlersDir: new URL('./', import.meta.url) });
});
after(() => bus.stop());

test('USER_CREATED reaches email and billing', async () => {
  const event = await bus.publish('USER_CREATED', { email: 'ada@example.com' });
  const outcomes = await bus.waitFor({ eventId: event.id }, { count: 2 });
  assert.deepEqual(outcomes.map((o) => [o.queue, o.result]).sort(), [
    ['billing', 'success'],
    ['email', 'success'],
  ]);
});

test('a bad address is in email-dlq after one receive', async () => {
  const event = await bus.publish('USER_CREATED', { email: 'nope' });
  const [outcome] = await bus.waitFor({ eventId: event.id, queue: 'email' });
  assert.equal(outcome?.result, 'rejected');
  assert.equal(outcome?.receiveCount, 1);
});
