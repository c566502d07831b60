import t from 'tap';
import { RECOVERED_AFTER_MS, SqsHealth } from '../../dist/supervisor/serve/health.js';

t.test('a queue failing forever is not hidden by another one working', async (t) => {
  const h = new SqsHealth();
  h.failed('billing', 1_000);
  h.ok('email');
  t.equal(h.failingForMs(61_000), 60_000);
  t.equal(h.failingKey, 'billing', 'the key, never the error text (it can carry the account id)');
  h.ok('billing');
  t.equal(h.failingForMs(61_000), 0);
  t.equal(h.failingKey, null);
});

t.test('an operation that failed and is not called again stops counting once its queue answers again', async (t) => {
  // Expected: /readyz recovers after an outage even if no extension is needed afterwards.
  // Broke: a failed ChangeMessageVisibilityBatch held /readyz at 503 until the next extension, i.e. forever on a quiet queue.
  const h = new SqsHealth();
  h.failed('email ChangeMessageVisibilityBatch', 1_000, 1_000);
  h.failed('email', 1_000, 2_000);
  h.ok('email', 5_000);
  t.equal(h.failingForMs(5_000), 4_000, 'a recent failure of the operation still counts');
  h.ok('email', 1_000 + RECOVERED_AFTER_MS);
  t.equal(h.failingForMs(1_000 + RECOVERED_AFTER_MS), 0, 'quiet since its failure while the queue answers: recovered');
  h.failed('billing DeleteMessageBatch', 0, 60_000);
  h.ok('email', 70_000);
  t.equal(h.failingForMs(70_000), 70_000, 'another queue answering does not clear it');
});

t.test('a hung call has been failing since it was sent', async (t) => {
  const h = new SqsHealth();
  h.failed('email', 10_000, 40_000);
  t.equal(h.failingForMs(40_000), 30_000);
});
