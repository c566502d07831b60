import t from 'tap';
import { SqsHealth } from '../../dist/supervisor/health.js';

t.test('a queue failing forever is not hidden by another one working', async (t) => {
  const h = new SqsHealth();
  h.failed(new Error('AccessDenied'), 'billing', 1_000);
  h.ok('email');
  t.equal(h.failingForMs(61_000), 60_000);
  t.match(h.lastError, /^billing: Error: AccessDenied/);
  h.ok('billing');
  t.equal(h.failingForMs(61_000), 0);
  t.equal(h.lastError, null);
});
