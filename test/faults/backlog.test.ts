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
  const sampler = setInterval(() => rss.push({ at: Date.now(), mb: rssMb(sup.pid) }), 1_000);
  t.teardown(() => clearInterval(sampler));

  const log = follow(logFile);
  const starts = new Map<string, number>();
  const ends = new Map<string, number>();
  const endTimes: number[] = [];
  const poll = () => {
    for (const r of log.poll()) {
      if (r.kind === 'start') starts.set(r.id, (starts.get(r.id) ?? 0) + 1);
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
  const inFlightAtSwitch = metricSum(slowMetrics, 'eventbus_messages_in_flight');
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

  // Memory: flat and bounded, from the end of the start-up to the end of the drain.
  const samples = rss.filter((s) => Number.isFinite(s.mb) && s.at >= startedAt + 5_000).map((s) => s.mb);
  const fifth = Math.max(1, Math.floor(samples.length / 5));
  const early = median(samples.slice(0, fifth));
  const late = median(samples.slice(-fifth));
  const peak = Math.max(...samples);
  t.ok(peak < MAX_RSS_MB, `RSS bounded: peak ${peak.toFixed(0)} MB < ${MAX_RSS_MB} MB`);
  t.ok(late <= early * 1.25 + 30, `RSS flat: ${early.toFixed(0)} MB early, ${late.toFixed(0)} MB late`);

  // Throughput: the slow phase runs at the caps' rate; the fast phase does not degrade as it goes.
  const expectedSlowRate = CONCURRENCY / (SLOW_MS / 1000);
  const slowRates = windows(endTimes, startedAt + SLOW_MS + 2_000, slowEndAt);
  const fastRates = windows(endTimes, slowEndAt + 2_000, drainedAt);
  t.ok(slowRates.every((r) => r >= expectedSlowRate * 0.7), `slow phase at the caps' rate: ${slowRates.map((r) => r.toFixed(1)).join(', ')} msgs/s (expected ${expectedSlowRate.toFixed(1)})`);
  if (fastRates.length >= 2) {
    t.ok(Math.min(...fastRates) >= median(fastRates) * 0.5, `fast phase steady: ${fastRates.map((r) => r.toFixed(0)).join(', ')} msgs/s`);
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
      rssMb: { early: Math.round(early), late: Math.round(late), peak: Math.round(peak), min: Math.round(Math.min(...samples)), samples: samples.length },
      slowPhase: { seconds: KNOBS.backlogSlowSec, handled: slowHandled, extensions: slowExtensions, inFlightAtEnd: inFlightAtSwitch, msgsPerSec: slowRates.map((r) => Number(r.toFixed(1))), expectedMsgsPerSec: Number(expectedSlowRate.toFixed(1)) },
      fastPhase: { seconds: Math.round((drainedAt - slowEndAt) / 1000), msgsPer10sWindow: fastRates.map((r) => Math.round(r)) },
      extensionsTotal: extensions,
      reruns,
    },
  });
});
