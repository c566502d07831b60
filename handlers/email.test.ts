// The email handler's tests, as a user of eventbus writes them: node:test and eventbus/testing.
// Compiled beside the handler into dist/handlers (test files are not handlers) and run by `npm test`.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NonRetryableError } from '@eventbus-sqs/eventbus';
import { makeEvent, runHandler } from '@eventbus-sqs/eventbus/testing';
import email from './email.js';

test('a new user gets the welcome mail, and EMAIL_SENT is published', async () => {
  const event = makeEvent('USER_CREATED', { email: 'ada@example.com', name: 'Ada' });
  const { result, published, logs, error } = await runHandler(email, event);
  assert.equal(result, 'success', String(error));
  assert.deepEqual(
    published.map((e) => [e.type, e.data]),
    [['EMAIL_SENT', { to: 'ada@example.com', subject: 'Welcome, Ada!' }]],
  );
  assert.ok(logs.some((l) => l.msg === 'email sent' && l.to === 'ada@example.com'));
});

test('a bad address is rejected: dead-lettered at once, not retried', async () => {
  const { result, error } = await runHandler(email, makeEvent('USER_CREATED', { email: 'not-an-address' }));
  assert.equal(result, 'rejected');
  assert.ok(error instanceof NonRetryableError);
  assert.match(error.message, /not an email address/);
});

test('a comment without its text is invalid: its schema says so', async () => {
  const { result, issues } = await runHandler(email, makeEvent('USER_COMMENT', { email: 'ada@example.com' }));
  assert.equal(result, 'invalid');
  assert.deepEqual(
    issues?.map((i) => i.path),
    ['comment'],
  );
});
