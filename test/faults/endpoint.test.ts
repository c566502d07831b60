// The SQS/SNS endpoint misbehaves (500, 503, throttling in both shapes, connection resets, latency,
// hanging calls), behind a fault-injecting proxy, while the supervisor runs and while it starts.
// Expected: the process stays up, retries with backoff and jitter (the request rate while failing is
// bounded), counts the errors in eventbus_sqs_errors_total, /readyz turns 503 after
// readiness.sqsFailureSec, it recovers by itself when the fault clears, and nothing is lost.
import t from 'tap';
import { emulator } from '../helpers/emulator.js';
import { FAULT_MODES, faultProxy, type FaultMode } from '../helpers/fault-proxy.js';
import {
  KNOBS,
  PROFILE,
  metricSum,
  publishMany,
  readHandlerLog,
  readyz,
  record,
  scrape,
  sleep,
  spawnSupervisor,
  supervisorConfig,
  saveOutput,
  tally,
  tempFile,
  waitFor,
  world,
} from '../helpers/faults.js';

const SQS_FAILURE_SEC = 2;
const LATENCY_MS = 3_000;
/** While failing, the supervisor may not call the endpoint more often than this (requests/s, averaged after the first 2 s). */
const MAX_FAILING_RATE = 10;
/** Nor more often than this in any 1 s window of the fault (a burst of retries without backoff). */
const MAX_FAILING_PEAK_RATE = 30;
/** A hung call must be given up within this long (the SDK's own retries included), so readiness can see it. */
const HANG_DETECT_MS = 45_000;
const failing = (m: FaultMode) => m !== 'latency';
/** `FAULTS_ENDPOINT_MODES=hang,reset` runs only those modes (while working on one). */
const MODES = process.env.FAULTS_ENDPOINT_MODES ? FAULT_MODES.filter((m) => process.env.FAULTS_ENDPOINT_MODES!.split(',').includes(m)) : FAULT_MODES;

/** Waits for /readyz to answer `status`; on timeout the error names the last reason given. */
async function waitReady(http: string, status: number, timeoutMs: number): Promise<void> {
  let last: unknown = null;
  try {
    await waitFor(`/readyz ${status}`, async () => {
      const r = await readyz(http);
      last = r.body;
      return r.status === status;
    }, timeoutMs, 200);
  } catch (err) {
    throw new Error(`${(err as Error).message}; last /readyz body: ${JSON.stringify(last)}`);
  }
}

t.test('endpoint faults while running: stays up, backs off, reports not-ready, recovers, loses nothing', async (t) => {
  const emu = await emulator();
  const proxy = await faultProxy(emu.endpoint);
  const w = await world([{ queue: 'work', events: ['WORK'], visibilityTimeout: 10, maxReceiveCount: 10 }], emu);
  t.teardown(async () => {
    await proxy.close();
    await emu.stop();
  });
  const logFile = tempFile('handled.jsonl');
  const config = supervisorConfig(
    w,
    { concurrency: 10, threads: 2, readiness: { sqsFailureSec: SQS_FAILURE_SEC }, retry: { baseDelaySec: 1, maxDelaySec: 2 }, shutdownTimeoutMs: 10_000 },
    proxy.endpoint,
  );
  const sup = await spawnSupervisor(config, { EVENTBUS_TEST_LOG: logFile });
  t.teardown(() => sup.kill());
  await waitFor('ready', async () => (await readyz(sup.http)).status === 200, 15_000);
  const M = KNOBS.endpointMessages;
  let n = 0;

  for (const mode of MODES) {
    await t.test(mode, async (t) => {
      const phaseStart = Date.now();
      const events = (k: number) => Array.from({ length: k }, () => ({ type: 'WORK', data: { n: n++, sleepMs: 20 } }));
      const before = await publishMany(w.publisher, events(M / 2));
      await waitFor('work flowing', () => tally(readHandlerLog(logFile)).handled(before) >= M / 4, 30_000);
      const normalRate = proxy.rate(phaseStart, Date.now());
      const errorsBefore = metricSum(await scrape(sup.http), 'eventbus_sqs_errors_total');

      const faultAt = Date.now();
      proxy.setFault(mode, { latencyMs: LATENCY_MS });
      const during = await publishMany(w.publisher, events(M / 2)); // the test's own client goes to the emulator directly
      const ids = [...before, ...during];
      let notReadyAfterMs: number | null = null;
      if (failing(mode)) {
        await waitReady(sup.http, 503, SQS_FAILURE_SEC * 1000 + HANG_DETECT_MS + 10_000);
        notReadyAfterMs = Date.now() - faultAt;
        t.ok(notReadyAfterMs >= SQS_FAILURE_SEC * 1000 - 250, `not ready only after readiness.sqsFailureSec (${notReadyAfterMs} ms)`);
      }
      // Hold the fault; readiness is sampled meanwhile (a slow endpoint is not a failing one).
      let readySamples = 0;
      let notReadySamples = 0;
      while (Date.now() < faultAt + KNOBS.endpointFaultMs) {
        if ((await readyz(sup.http)).status === 200) readySamples++;
        else notReadySamples++;
        await sleep(250);
      }
      const clearAt = Date.now();
      const steadyFrom = faultAt + 2_000;
      const failingRate = proxy.rate(steadyFrom, clearAt);
      const peakRate = proxy.peakRate(steadyFrom, clearAt);
      const calls = proxy.byOperation(faultAt);
      const faulted = proxy.faulted(undefined, faultAt);
      const hung = proxy.hanging();
      const logsAtClear = sup.logs().filter((l) => typeof l.time === 'number' && l.time >= faultAt);
      proxy.clear();
      t.equal(sup.child.exitCode, null, 'the supervisor process is still up');
      t.equal((await fetch(`${sup.http}/healthz`)).status, 200, '/healthz 200 throughout');

      await waitReady(sup.http, 200, HANG_DETECT_MS + 15_000);
      const readyAt = Date.now();
      await waitFor('every message handled', () => tally(readHandlerLog(logFile)).handled(ids) === ids.length, 60_000 + HANG_DETECT_MS, 200);
      const doneAt = Date.now();
      await waitFor('queue empty', async () => {
        const d = await w.depth('work');
        return d.visible + d.inFlight === 0;
      }, 30_000, 250);
      const errors = metricSum(await scrape(sup.http), 'eventbus_sqs_errors_total') - errorsBefore;
      const tl = tally(readHandlerLog(logFile));
      const lost = tl.missing(ids).length;
      t.equal(lost, 0, 'nothing lost');
      // The receive loop's own retries, as it logged them while the fault lasted.
      const retries = logsAtClear.filter((l) => l.msg === 'receive failed').map((l) => Number(l.retryInMs));
      if (failing(mode)) {
        t.ok(faulted > 0, `the fault was applied (${faulted} requests faulted)`);
        t.ok(errors > 0, `errors counted in eventbus_sqs_errors_total (${errors})`);
        t.ok(failingRate <= MAX_FAILING_RATE, `no tight loop: ${failingRate.toFixed(1)} requests/s while failing (normal: ${normalRate.toFixed(1)}/s)`);
        t.ok(peakRate <= MAX_FAILING_PEAK_RATE, `no burst: at most ${peakRate.toFixed(0)} requests in any second while failing (bound ${MAX_FAILING_PEAK_RATE})`);
        // Under a hang every slot stays held by a message whose delete hangs (a slot is freed only once
        // SQS settled it), so no receive is sent; the others fail fast enough to see the backoff grow.
        if (mode !== 'hang') {
          t.ok(retries.length >= 3 && retries.at(-1)! >= 2 * retries[0]!, `receive retries back off: ${retries.join(', ')} ms`);
        }
      }
      if (!failing(mode)) {
        t.equal(errors, 0, 'a slow endpoint is not an error: nothing counted in eventbus_sqs_errors_total');
        t.equal(notReadySamples, 0, `/readyz stayed 200 (${readySamples} samples)`);
      }
      t.equal((await w.depth('work', true)).visible, 0, 'nothing in the DLQ');
      record({
        fault: 'endpoint',
        case: mode,
        injected: `${mode === 'latency' ? `+${LATENCY_MS} ms on every call` : `every call answered with ${mode}`} for ${((clearAt - faultAt) / 1000).toFixed(1)} s while running`,
        sent: ids.length,
        handled: tl.handled(ids),
        duplicated: tl.duplicated(ids),
        lost,
        recoveryMs: doneAt - clearAt,
        durationMs: Date.now() - phaseStart,
        details: {
          faultMs: clearAt - faultAt,
          notReadyAfterMs,
          readyAgainAfterMs: readyAt - clearAt,
          allHandledAfterMs: doneAt - clearAt,
          requestsWhileFailing: Object.values(calls).reduce((a, b) => a + b, 0),
          faultedRequests: faulted,
          hungAtClear: hung,
          readyzSamplesDuringFault: { ready: readySamples, notReady: notReadySamples },
          requestsPerSecWhileFailing: Number(failingRate.toFixed(2)),
          peakRequestsPerSecWhileFailing: Number(peakRate.toFixed(1)),
          requestsPerSecNormal: Number(normalRate.toFixed(1)),
          byOperation: calls,
          sqsErrorsCounted: errors,
          receiveRetryDelaysMs: retries,
        },
      });
    });
  }

  // Jitter: a retry attempt met in several faults did not wait the same time each time.
  const byAttempt = new Map<number, number[]>();
  for (const l of sup.logs()) {
    if (l.msg !== 'receive failed') continue;
    byAttempt.set(Number(l.attempt), [...(byAttempt.get(Number(l.attempt)) ?? []), Number(l.retryInMs)]);
  }
  const repeated = [...byAttempt].filter(([, delays]) => delays.length >= 3);
  if (MODES.filter((m) => failing(m) && m !== 'hang').length >= 3) {
    t.ok(repeated.length > 0 && repeated.every(([, delays]) => new Set(delays).size > 1), `receive retries are jittered: ${JSON.stringify(repeated)}`);
  }
  sup.child.kill('SIGTERM');
  const exit = await sup.exited;
  saveOutput('endpoint-running', sup.output());
  t.equal(exit.code, 0, 'exits 0 on SIGTERM after all that');
});

t.test('endpoint faults at start: retried with backoff, not ready meanwhile, starts once the fault clears', async (t) => {
  const emu = await emulator();
  const proxy = await faultProxy(emu.endpoint);
  const w = await world([{ queue: 'work', events: ['WORK'], visibilityTimeout: 10 }], emu);
  t.teardown(async () => {
    await proxy.close();
    await emu.stop();
  });
  const logFile = tempFile('handled.jsonl');
  const config = supervisorConfig(w, { concurrency: 4, threads: 1, readiness: { sqsFailureSec: SQS_FAILURE_SEC }, shutdownTimeoutMs: 5_000 }, proxy.endpoint);
  let n = 0;
  await t.test('SNS throttled (RequestLimitExceeded) while the topic is resolved by name', async (t) => {
    // Expected: the topic lookup is retried like any throttled call, and failure events stay on.
    // Broke: RequestLimitExceeded (a throttling code the SDK knows) was not retryable for us: the
    // supervisor started with "topic not resolved" and failure events off until restarted.
    const ids = await publishMany(w.publisher, Array.from({ length: 5 }, () => ({ type: 'WORK', data: { n: n++ } })));
    proxy.setFault('throttle-legacy', { operations: ['ListTopics'] });
    const faultAt = Date.now();
    const sup = await spawnSupervisor({ ...config, topic: w.topic }, { EVENTBUS_TEST_LOG: logFile }, { waitRunning: false });
    t.teardown(() => sup.kill());
    await sup.waitForOutput(/ListTopics .* failed; retrying|"msg":"supervisor running"/, 30_000);
    await sleep(3_000);
    const clearAt = Date.now();
    proxy.clear();
    await sup.waitForOutput(/"msg":"supervisor running"/, 30_000);
    const runningAt = Date.now();
    t.notMatch(sup.output(), /topic not resolved/, 'the topic was resolved: failure events and ctx.publish stay on');
    t.ok(proxy.faulted('ListTopics', faultAt) > 0, `ListTopics was throttled (${proxy.faulted('ListTopics', faultAt)} times) and retried (${proxy.calls('ListTopics', faultAt)} calls)`);
    t.ok(proxy.calls('ListTopics', faultAt) > proxy.faulted('ListTopics', faultAt), 'ListTopics succeeded after the fault');
    await waitFor('the queued messages handled', () => tally(readHandlerLog(logFile)).handled(ids) === ids.length, 30_000, 200);
    sup.child.kill('SIGTERM');
    t.equal((await sup.exited).code, 0, 'exit 0');
    saveOutput('endpoint-at-start-sns-throttled', sup.output());
    const tl = tally(readHandlerLog(logFile));
    record({
      fault: 'endpoint-at-start',
      case: 'SNS RequestLimitExceeded',
      injected: `ListTopics (topic configured by name) answered with RequestLimitExceeded for the first ${((clearAt - faultAt) / 1000).toFixed(1)} s`,
      sent: ids.length,
      handled: tl.handled(ids),
      duplicated: tl.duplicated(ids),
      lost: tl.missing(ids).length,
      recoveryMs: runningAt - clearAt,
      durationMs: Date.now() - faultAt,
      details: { listTopicsCalls: proxy.calls('ListTopics', faultAt) },
    });
  });

  // The CI profile starts under three faults only (one of each kind: an error answer, no answer at all, a hang).
  const startModes = MODES.filter(failing).filter((m) => PROFILE === 'full' || ['throttle-legacy', 'reset', 'hang'].includes(m));
  for (const mode of startModes) {
    await t.test(mode, async (t) => {
      const ids = await publishMany(w.publisher, Array.from({ length: 10 }, () => ({ type: 'WORK', data: { n: n++ } })));
      proxy.setFault(mode);
      const faultAt = Date.now();
      const sup = await spawnSupervisor(config, { EVENTBUS_TEST_LOG: logFile }, { waitRunning: false });
      t.teardown(() => sup.kill());
      const holdMs = Math.max(4_000, SQS_FAILURE_SEC * 1000 + 2_000);
      await sleep(holdMs);
      const clearAt = Date.now();
      const rate = proxy.rate(faultAt + 1_000, clearAt);
      t.equal(sup.child.exitCode, null, 'still up while the endpoint fails at start');
      t.equal((await readyz(sup.http)).status, 503, '/readyz 503 while it cannot start');
      t.equal((await fetch(`${sup.http}/healthz`)).status, 200, '/healthz 200');
      t.ok(rate <= MAX_FAILING_RATE, `start retries back off: ${rate.toFixed(1)} requests/s`);
      t.ok(proxy.faulted(undefined, faultAt) > 0, `the fault was applied (${proxy.faulted(undefined, faultAt)} requests faulted)`);
      proxy.clear();
      await sup.waitForOutput(/"msg":"supervisor running"/, HANG_DETECT_MS + 30_000);
      const runningAt = Date.now();
      await waitFor('the queued messages handled', () => tally(readHandlerLog(logFile)).handled(ids) === ids.length, 30_000, 200);
      const doneAt = Date.now();
      t.equal(tally(readHandlerLog(logFile)).missing(ids).length, 0, 'nothing lost');
      t.notMatch(sup.output(), /topic not resolved/, 'the topic was resolved (failure events and ctx.publish stay on)');
      sup.child.kill('SIGTERM');
      t.equal((await sup.exited).code, 0, 'exit 0');
      saveOutput(`endpoint-at-start-${mode}`, sup.output());
      const tl = tally(readHandlerLog(logFile));
      record({
        fault: 'endpoint-at-start',
        case: mode,
        injected: `every call answered with ${mode} for the first ${(holdMs / 1000).toFixed(1)} s of the start`,
        sent: ids.length,
        handled: tl.handled(ids),
        duplicated: tl.duplicated(ids),
        lost: tl.missing(ids).length,
        recoveryMs: runningAt - clearAt,
        durationMs: doneAt - faultAt,
        details: { requestsPerSecWhileFailing: Number(rate.toFixed(2)), startedAfterClearMs: runningAt - clearAt, handledAfterClearMs: doneAt - clearAt },
      });
    });
  }
});
