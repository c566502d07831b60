// The console's sampler and failure ring (issue 16): rates, series and percentiles from the metrics
// registry; the latest failures kept, newest first, within a bound.
import t from 'tap';
import { createMetrics } from '../../dist/metrics/registry.js';
import { ConsoleSampler, quantiles } from '../../dist/console/sampler.js';
import { FailureLog, failureOf } from '../../dist/console/failures.js';

t.test('quantiles interpolate inside the bucket, over the observations between two snapshots', async (t) => {
  const before: Array<[number, number]> = [[0.01, 5], [0.1, 5], [1, 5], [Infinity, 5]];
  const now: Array<[number, number]> = [[0.01, 5], [0.1, 55], [1, 105], [Infinity, 105]];
  const [p50, p99] = quantiles(now, before, [0.5, 0.99]);
  t.ok(Math.abs(p50! - 0.1) < 1e-9, `half of the 100 new observations are under 0.1 s: ${p50}`);
  t.ok(Math.abs(p99! - (0.1 + 0.9 * 0.98)) < 1e-9, `p99 ${p99}`);
  t.same(quantiles(now, now, [0.5]), [null], 'nothing observed in between');
  t.same(quantiles([[1, 0], [Infinity, 3]], [], [0.5]), [1], 'past the last finite bound: that bound');
});

t.test('the overview: totals, rates over the window, series points after `since`', async (t) => {
  const metrics = createMetrics({ defaultMetrics: false });
  let now = 1_000_000;
  const sampler = new ConsoleSampler({
    metrics: () => metrics.registry.getMetricsAsJSON(),
    queues: () => [{ queue: 'q', events: ['A'], dlq: 'q-dlq', dlqName: 'p-q-dlq', cap: 4, ordered: false }],
    now: () => now,
  });
  await sampler.sample();
  for (let i = 0; i < 5; i++) {
    now += 2_000;
    metrics.received.inc({ queue: 'q' }, 4);
    metrics.results.inc({ queue: 'q', event_type: 'A', result: 'success' }, 3);
    metrics.results.inc({ queue: 'q', event_type: 'A', result: 'error' }, 1);
    metrics.duration.observe({ queue: 'q' }, 0.02);
    await sampler.sample();
  }
  metrics.queueMessages.set({ queue: 'q', state: 'visible' }, 7);
  metrics.queueMessages.set({ queue: 'q-dlq', state: 'visible' }, 2);
  metrics.inFlight.set({ queue: 'q' }, 3);
  await sampler.sample(); // same instant: a point with no time passed
  const o = sampler.overview();
  const q = o.queues[0]!;
  t.match(q, { queue: 'q', received: 20, succeeded: 15, failed: 5, visible: 7, dlqDepth: 2, inFlightHere: 3, cap: 4 });
  t.equal(q.rate.received, 2, '4 per 2 s over the 10 s window');
  t.equal(q.rate.failed, 0.5);
  t.ok(q.p50Ms! > 10 && q.p50Ms! <= 25, `p50 ${q.p50Ms} ms in the 10-25 ms bucket`);
  t.equal(o.series.t.length, 6);
  t.same(o.series.queues.q!.received.slice(0, 5), [2, 2, 2, 2, 2]);
  const later = sampler.overview(o.series.t[3]);
  t.equal(later.series.t.length, 2, 'only the points after since');
});

t.test('the failure ring keeps the latest, newest first', async (t) => {
  const log = new FailureLog(3);
  const seen: string[] = [];
  log.subscribe((f) => seen.push(f.eventId));
  t.equal(failureOf({ queue: 'q', messageId: 'm', receiveCount: 1, result: 'success', eventType: 'A', eventId: 'e' }), null);
  for (let i = 1; i <= 5; i++) {
    log.add(failureOf({ queue: i % 2 ? 'odd' : 'even', messageId: `m${i}`, receiveCount: i, result: 'error', error: `E${i}`, err: { name: 'Error', message: `E${i}`, stack: `Error: E${i}\n    at x.js:1:1` }, eventType: 'A', eventId: `e${i}` })!);
  }
  t.equal(log.total, 5);
  t.same(log.list().map((f) => f.eventId), ['e5', 'e4', 'e3']);
  t.same(log.list(10, 'odd').map((f) => f.eventId), ['e5', 'e3']);
  t.same(seen, ['e1', 'e2', 'e3', 'e4', 'e5']);
  t.equal(log.list(1)[0]!.stack, 'Error: E5\n    at x.js:1:1');
});

t.test('viewedWithin: true only after a page asked for the overview, for the window given', async (t) => {
  const sampler = new ConsoleSampler({ metrics: async () => [], queues: () => [] });
  t.equal(sampler.viewedWithin(10_000), false, 'never viewed: the queue depths keep their usual pace');
  sampler.overview();
  t.equal(sampler.viewedWithin(10_000), true, 'viewed just now');
  await new Promise((r) => setTimeout(r, 30));
  t.equal(sampler.viewedWithin(10), false, 'the window passed');
});
