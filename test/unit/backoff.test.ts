import t from 'tap';
import { callRetryDelayMs, retryDelaySec, SQS_MAX_VISIBILITY_SEC } from '../../dist/backoff.js';

t.test('retry delay doubles per receive within [ceiling/2, ceiling]', async (t) => {
  const lo = () => 0;
  const hi = () => 0.999999;
  t.equal(retryDelaySec(1, 2, 900, lo), 1);
  t.equal(retryDelaySec(1, 2, 900, hi), 2);
  t.equal(retryDelaySec(2, 2, 900, lo), 2);
  t.equal(retryDelaySec(2, 2, 900, hi), 4);
  t.equal(retryDelaySec(4, 2, 900, hi), 16);
  t.equal(retryDelaySec(20, 2, 900, hi), 900, 'capped at maxDelaySec');
  t.equal(retryDelaySec(20, 2, 900, lo), 450);
  t.equal(retryDelaySec(100, 2, 1e9, hi), SQS_MAX_VISIBILITY_SEC, 'never above the SQS limit');
  t.equal(retryDelaySec(0, 2, 900, hi), 2, 'a receive count below 1 counts as the first');
});

t.test('jitter spreads retries', async (t) => {
  const values = new Set(Array.from({ length: 200 }, () => retryDelaySec(8, 2, 900)));
  t.ok(values.size > 20, `many distinct delays (${values.size})`);
  for (const v of values) t.ok(v >= 128 && v <= 256, `${v} within [128, 256]`);
});

t.test('call retry delay grows and is capped', async (t) => {
  t.equal(callRetryDelayMs(0, 20_000, 100, () => 1), 100);
  t.equal(callRetryDelayMs(3, 20_000, 100, () => 1), 800);
  t.equal(callRetryDelayMs(30, 20_000, 100, () => 1), 20_000);
  t.equal(callRetryDelayMs(30, 20_000, 100, () => 0), 10_000);
});
