import t, { type Test } from 'tap';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, redactConfig } from '../../dist/config.js';
import { EventBusError } from '../../dist/errors.js';

const fail = (t: Test, fn: () => unknown, re: RegExp) => {
  try {
    fn();
    t.fail('expected a config error');
  } catch (err) {
    t.type(err, EventBusError);
    t.equal((err as EventBusError).code, 'ERR_CONFIG_INVALID');
    t.notOk((err as Error).message.includes('\n'), 'the error is one line');
    t.match((err as Error).message, re);
  }
};

t.test('defaults', async (t) => {
  const c = loadConfig({ env: {} });
  t.equal(c.topic, 'events');
  t.equal(c.concurrency, 10);
  t.ok(c.threads >= 1);
  t.equal(c.tasksPerThread, Math.ceil(10 / c.threads), 'tasksPerThread covers the global cap');
  t.equal(c.shutdownTimeoutMs, 25_000);
  t.same(c.retry, { baseDelaySec: 2, maxDelaySec: 900 });
  t.ok(Object.isFrozen(c) && Object.isFrozen(c.http), 'frozen');
});

t.test('env vars', async (t) => {
  const c = loadConfig({ env: { EVENTBUS_CONCURRENCY: '40', EVENTBUS_THREADS: '4', EVENTBUS_PROVISION: 'true', EVENTBUS_STRIPE_WEBHOOK_SECRETS: 'a, b' } });
  t.equal(c.concurrency, 40);
  t.equal(c.threads, 4);
  t.equal(c.tasksPerThread, 10);
  t.equal(c.provision, true);
  t.same(c.webhooks.stripe.secrets, ['a', 'b']);
});

t.test('bad values and unknown keys fail naming the key', async (t) => {
  fail(t, () => loadConfig({ env: { EVENTBUS_CONCURRENCY: 'lots' } }), /concurrency: must be an integer >= 1/);
  fail(t, () => loadConfig({ env: {}, overrides: { concurency: 3 } }), /concurency/);
  fail(t, () => loadConfig({ env: {}, overrides: { logLevel: 'loud' } }), /logLevel/);
  fail(t, () => loadConfig({ env: {}, overrides: { queues: { email: { concurency: 2 } } } }), /queues\.email\.concurency is not a known key/);
  fail(t, () => loadConfig({ env: {}, overrides: { retry: { baseDelaySec: 10, maxDelaySec: 5 } } }), /retry\.maxDelaySec \(5\) must be >= retry\.baseDelaySec \(10\)/);
  fail(t, () => loadConfig({ env: {}, overrides: { concurrency: 1, processes: 2 } }), /concurrency \(1\) must be >= processes \(2\)/);
  fail(t, () => loadConfig({ env: {}, overrides: { topic: 'events.fifo' } }), /FIFO/);
});

t.test('a config file is read; a bad file is named', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'eventbus-config-'));
  const file = join(dir, 'c.json');
  writeFileSync(file, JSON.stringify({ concurrency: 7, queues: { email: { timeoutMs: 1000 } } }));
  const c = loadConfig({ env: {}, file });
  t.equal(c.concurrency, 7);
  t.same(c.queues.email, { timeoutMs: 1000 });
  fail(t, () => loadConfig({ env: {}, file: join(dir, 'missing.json') }), /missing\.json/);
});

t.test('redaction hides secrets', async (t) => {
  const c = loadConfig({
    env: { EVENTBUS_API_TOKEN: 'tok-123', EVENTBUS_STRIPE_WEBHOOK_SECRETS: 'whsec_1', EVENTBUS_ARCHIVE_URL: 'postgres://u:pw@h/db' },
    overrides: { webhooks: { sources: { github: { secret: 's3', header: 'x-sig' } } } },
  });
  const text = JSON.stringify(redactConfig(c));
  for (const secret of ['tok-123', 'whsec_1', 's3"', 'u:pw']) t.notOk(text.includes(secret), `${secret} is not printed`);
  t.match(text, /postgres:\/\/u:\[redacted\]@h\/db/);
});

t.test('a cluster child gets its exact share of the caps; the host cap stays for handler defaults', async (t) => {
  const { shareOf } = await import('../../dist/config.js');
  t.same([0, 1, 2].map((index) => shareOf(10, { index, count: 3 })), [4, 3, 3], 'shares add up to the cap');
  const c = loadConfig({ env: { EVENTBUS_CONCURRENCY: '10', EVENTBUS_THREADS: '1' }, child: { index: 1, count: 2 } });
  t.equal(c.concurrency, 5);
  t.equal(c.hostConcurrency, 10);
  t.equal(c.tasksPerThread, 5);
});

t.test('queues.<name>.groupConcurrency: an integer from 1', async (t) => {
  t.same(loadConfig({ env: {}, overrides: { queues: { email: { groupConcurrency: 3 } } } }).queues, { email: { groupConcurrency: 3 } });
  t.throws(() => loadConfig({ env: {}, overrides: { queues: { email: { groupConcurrency: 0 } } } }), /queues\.email\.groupConcurrency must be an integer from 1 to 100000/);
});
