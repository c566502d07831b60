// A large backlog (100,000 messages in the full profile) and a handler slower than the visibility
// timeout, then fast until the queue is empty. Expected (SPEC "Slots", "Extension", "Guarantees"):
// memory stays flat, bounded by the caps and not by the backlog; no visibility timeout expires on a
// message in flight (no message runs twice; the extensions are counted); throughput holds.
import t from 'tap';
import { writeFileSync } from 'node:fs';
import {
  KNOBS,
  follow,
  median,
  metricSum,
  publishMany,
  record,
  rssMb,
  saveOutput,
  scrape,
  sleep,
  spawnSupervisor,
  supervisorConfig,
  tempFile,
  waitFor,
  world,
} from '../helpers/faults.js';

const VISIBILITY_SEC = 4;
/** Longer than the visibility timeout: each slow message needs at least two extensions. */
const SLOW_MS = 6_000;
const CONCURRENCY = 100;
/** The default prefetch (SPEC "Slots"): received ahead of a free slot, in flight meanwhile. */
const PREFETCH = 10;
/** Whatever the backlog, the supervisor's RSS stays under this (it holds at most CONCURRENCY messages). */
const MAX_RSS_MB = 400;
const WINDOW_MS = 10_000;

/** Completions per second in consecutive windows of [from, to). */
function windows(times: number[], from: number, to: number): number[] {
  const out: number[] = [];
  for (let w = from; w + WINDOW_MS <= to; w += WINDOW_MS) out.push(times.filter((x) => x >= w && x < w + WINDOW_MS).length / (WINDOW_MS / 1000));
  return out;
}

t.test(`a backlog of ${KNOBS.backlog.toLocaleString('en-US')} messages with a slow handler: flat memory, no expiry in flight, steady throughput`, async (t) => {
  const w = await world([{ queue: 'slow', events: ['SLOW'], visibilityTimeout: VISIBILITY_SEC, maxReceiveCount: 10 }]);
  t.teardown(() => w.stop());
  const logFile = tempFile('handled.jsonl');
  const fastFile = tempFile('fast');
  const publishStart = Date.now();
  const ids = await publishMany(w.publisher, Array.from({ length: KNOBS.backlog }, (_, n) => ({ type: 'SLOW', data: { n, slowMs: SLOW_MS } })), 16);
  const publishMs = Date.now() - publishStart;
  const queued = await w.depth('slow');
  t.equal(queued.visible, KNOBS.backlog, `the backlog is waiting (${queued.visible}, published in ${(publishMs / 1000).toFixed(1)} s)`);

  const sup = await spawnSupervisor(
    supervisorConfig(w, { concurrency: CONCURRENCY, threads: 2, tasksPerThread: CONCURRENCY / 2, shutdownTimeoutMs: 10_000 }),
    { EVENTBUS_TEST_LOG: logFile, FAULTS_FAST_FILE: fastFile },
  );
  t.teardown(() => sup.kill());
  const startedAt = Date.now();
  const rss: Array<{ at: number; mb: number }> = [];
  // What SQS holds in flight for the supervisor: the caps, never more, however long the backlog.
  const held: number[] = [];
  let depthBusy = false;
  const sampler = setInterval(() => {
    rss.push({ at: Date.now(), mb: rssMb(sup.pid) });
    if (depthBusy) return;
    depthBusy = true;
    w.depth('slow')
      .then((d) => held.push(d.inFlight))
      .catch(() => undefined)
      .finally(() => (depthBusy = false));
  }, 1_000);
  t.teardown(() => clearInterval(sampler));

  const log = follow(logFile);
  const starts = new Map<string, number>();
  const ends = new Map<string, number>();
  const endTimes: number[] = [];
  let firstStartAt = Infinity;
  const poll = () => {
    for (const r of log.poll()) {
      if (r.kind === 'start') {
        starts.set(r.id, (starts.get(r.id) ?? 0) + 1);
        firstStartAt = Math.min(firstStartAt, r.at);
      }
      else if (r.kind === 'end') {
        ends.set(r.id, (ends.get(r.id) ?? 0) + 1);
        endTimes.push(r.at);
      }
    }
  };

  // Slow phase: every slot busy for SLOW_MS, extended every VISIBILITY_SEC / 2.
  await sleep(KNOBS.backlogSlowSec * 1000);
  poll();
  const slowEndAt = Date.now();
  const slowMetrics = await scrape(sup.http);
  const slowHandled = ends.size;
  const prefetchedAtSwitch = metricSum(slowMetrics, 'eventbus_messages_prefetched');
  const inFlightAtSwitch = metricSum(slowMetrics, 'eventbus_messages_in_flight') - prefetchedAtSwitch;
  writeFileSync(fastFile, '');

  // Fast phase: drain the rest.
  await waitFor('the backlog drained', () => (poll(), ends.size === ids.length), Math.max(600_000, KNOBS.backlog * 10), 1_000);
  const drainedAt = Date.now();
  clearInterval(sampler);
  await sleep(VISIBILITY_SEC * 1000 + 2_000);
  poll();
  const metrics = await scrape(sup.http);
  await waitFor('queue empty', async () => {
    const d = await w.depth('slow');
    return d.visible + d.inFlight === 0;
  }, 30_000, 500);
  sup.child.kill('SIGTERM');
  t.equal((await sup.exited).code, 0, 'exit 0');
  saveOutput('backlog', sup.output());

  const duplicated = [...ends.values()].reduce((a, n) => a + n - 1, 0);
  const reruns = [...starts.values()].reduce((a, n) => a + n - 1, 0);
  const lost = ids.filter((id) => !ends.has(id)).length;
  const extensions = metricSum(metrics, 'eventbus_visibility_extensions_total', { queue: 'slow' });
  const slowExtensions = metricSum(slowMetrics, 'eventbus_visibility_extensions_total', { queue: 'slow' });
  const received = metricSum(metrics, 'eventbus_messages_received_total', { queue: 'slow' });
  t.equal(lost, 0, 'nothing lost');
  t.equal(reruns, 0, 'no message started twice: no visibility timeout expired in flight');
  t.equal(duplicated, 0, 'no duplicates');
  t.equal(received, ids.length, 'received exactly once each');
  // Each slow message ran SLOW_MS and needed floor(SLOW_MS / (VISIBILITY / 2)) extensions.
  const perSlow = Math.floor(SLOW_MS / ((VISIBILITY_SEC * 1000) / 2));
  t.ok(slowExtensions >= slowHandled * (perSlow - 1), `extensions counted (${slowExtensions} for ${slowHandled} slow messages)`);

  // Memory: bounded, and flat within each phase (the backlog shrinks; what is held must not).
  const mb = (from: number, to: number) => rss.filter((s) => Number.isFinite(s.mb) && s.at >= from && s.at < to).map((s) => s.mb);
  const trend = (xs: number[]) => {
    const fifth = Math.max(1, Math.floor(xs.length / 5));
    return { early: median(xs.slice(0, fifth)), late: median(xs.slice(-fifth)) };
  };
  const slowMb = mb(startedAt + 5_000, slowEndAt);
  const fastMb = mb(slowEndAt + 2_000, drainedAt);
  const all = [...slowMb, ...fastMb];
  const peak = all.reduce((a, b) => Math.max(a, b), 0);
  t.ok(peak < MAX_RSS_MB, `RSS bounded: peak ${peak.toFixed(0)} MB < ${MAX_RSS_MB} MB`);
  const slowTrend = trend(slowMb);
  t.ok(slowTrend.late <= slowTrend.early * 1.2 + 20, `RSS flat in the slow phase: ${slowTrend.early.toFixed(0)} MB early, ${slowTrend.late.toFixed(0)} MB late`);
  const fastTrend = trend(fastMb);
  const maxHeld = held.reduce((a, b) => Math.max(a, b), 0);
  // The caps bound running handlers (C) and, apart from them, messages received ahead of a slot (the
  // prefetch) and messages whose handler settled and whose delete is on its way to SQS (at most C
  // more): SPEC "Slots" (v3).
  t.ok(
    held.length >= 10 && maxHeld <= 2 * CONCURRENCY + PREFETCH,
    `SQS never held more than the caps in flight: at most ${maxHeld} of ${CONCURRENCY} running + ${PREFETCH} prefetched + ${CONCURRENCY} settling (${held.length} samples)`,
  );
  // At full speed the heap first grows to its working size (V8 sizes it to the allocation rate, over the
  // first ~25,000 messages here); after that it must not grow with the messages handled. So the drain
  // is cut in quarters by messages handled: late in the drain (the last quarter, the backlog nearly
  // gone) RSS may not rise above what it reached in the second quarter.
  const fastFrom = slowEndAt + SLOW_MS; // the last slow runs are over
  const drainSamples = rss
    .filter((r) => Number.isFinite(r.mb) && r.at >= fastFrom && r.at < drainedAt)
    .map((r) => ({ mb: r.mb, handled: endTimes.filter((e) => e <= r.at).length }));
  const drainTotal = ids.length - slowHandled;
  const quarter = (q: number) => drainSamples.filter((r) => r.handled - slowHandled >= (drainTotal * q) / 4 && r.handled - slowHandled < (drainTotal * (q + 1)) / 4).map((r) => r.mb);
  const [q2, q4] = [quarter(1), quarter(3)];
  const midMax = q2.reduce((a, b) => Math.max(a, b), 0);
  const lateMax = q4.reduce((a, b) => Math.max(a, b), 0);
  t.ok(q2.length >= 2 && q4.length >= 2, `RSS sampled through the drain (${q2.length} samples in its second quarter, ${q4.length} in its last)`);
  t.ok(lateMax <= midMax * 1.15 + 15, `RSS flat while draining: at most ${midMax.toFixed(0)} MB in the drain's second quarter, ${lateMax.toFixed(0)} MB in its last`);
  const half = Math.floor(fastMb.length / 2);
  const firstHalfMax = fastMb.slice(0, half).reduce((a, b) => Math.max(a, b), 0);
  const secondHalfMax = fastMb.slice(half).reduce((a, b) => Math.max(a, b), 0);

  // Throughput: the slow phase keeps every slot busy; the fast phase does not degrade as it goes.
  const cohorts = Math.floor((slowEndAt - firstStartAt) / SLOW_MS);
  t.ok(slowHandled >= CONCURRENCY * cohorts * 0.9, `slow phase at the caps' rate: ${slowHandled} handled in ${cohorts} runs of ${SLOW_MS / 1000} s with ${CONCURRENCY} slots`);
  t.equal(inFlightAtSwitch, CONCURRENCY, 'every slot busy at the end of the slow phase');
  t.equal(prefetchedAtSwitch, PREFETCH, 'and the prefetch full behind them');
  const expectedSlowRate = CONCURRENCY / (SLOW_MS / 1000);
  // From when the last slow message (still sleeping at the switch) is done.
  const fastRates = windows(endTimes, slowEndAt + SLOW_MS, drainedAt);
  if (fastRates.length >= 2) {
    t.ok(Math.min(...fastRates) >= median(fastRates) * 0.4, `fast phase steady: ${fastRates.map((r) => r.toFixed(0)).join(', ')} msgs/s`);
    t.ok(fastRates.at(-1)! >= fastRates[0]! * 0.6, 'no slow-down as the backlog shrinks');
  }
  record({
    fault: 'backlog',
    case: `${KNOBS.backlog.toLocaleString('en-US')} waiting`,
    injected: `${KNOBS.backlog.toLocaleString('en-US')} messages queued before start (published in ${(publishMs / 1000).toFixed(0)} s); handler ${SLOW_MS / 1000} s per message for ${KNOBS.backlogSlowSec} s with visibility ${VISIBILITY_SEC} s, then fast until empty; concurrency ${CONCURRENCY}`,
    sent: ids.length,
    handled: ends.size,
    duplicated,
    lost,
    recoveryMs: null,
    durationMs: drainedAt - startedAt,
    details: {
      rssMb: { peak: Math.round(peak), min: Math.round(all.reduce((a, b) => Math.min(a, b), Infinity)), slowPhaseEarlyLate: [Math.round(slowTrend.early), Math.round(slowTrend.late)], drainEarlyLate: [Math.round(fastTrend.early), Math.round(fastTrend.late)], drainHalvesMax: [Math.round(firstHalfMax), Math.round(secondHalfMax)], drainQuarter2And4Max: [Math.round(midMax), Math.round(lateMax)], samples: all.length },
      sqsInFlightMax: maxHeld,
      slowPhase: { seconds: KNOBS.backlogSlowSec, handled: slowHandled, extensions: slowExtensions, inFlightAtEnd: inFlightAtSwitch, prefetchedAtEnd: prefetchedAtSwitch, capsRateMsgsPerSec: Number(expectedSlowRate.toFixed(1)) },
      fastPhase: { seconds: Math.round((drainedAt - slowEndAt) / 1000), msgsPerSecPer10sWindow: fastRates.map((r) => Math.round(r)) },
      extensionsTotal: extensions,
      rssMbEvery5s: rss.filter((_, i) => i % 5 === 0).map((x) => Math.round(x.mb)),
      handledEvery5s: rss.filter((_, i) => i % 5 === 0).map((x) => endTimes.filter((e) => e <= x.at).length),
      reruns,
    },
  });
});
