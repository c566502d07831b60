// SIGTERM in the middle of heavy work: every slot busy with a mix of short, CPU-bound and
// longer-than-the-deadline handlers (some ignoring their signal). Expected (SPEC "Shutdown"): exit 0
// within shutdownTimeoutMs; nothing left in flight (what could not finish is released at once,
// visibility 0, not left to its 60 s visibility timeout); a new supervisor handles it; nothing lost.
import t from 'tap';
import { writeFileSync } from 'node:fs';
import {
  KNOBS,
  PROFILE,
  parseLines,
  publishMany,
  randomInt,
  readHandlerLog,
  record,
  saveOutput,
  sleep,
  spawnSupervisor,
  supervisorConfig,
  tally,
  tempFile,
  waitFor,
  world,
} from '../helpers/faults.js';

const SHUTDOWN_TIMEOUT_MS = 6_000;
/** Process exit after the supervisor's stop resolved. */
const EXIT_SLACK_MS = 500;
const ROUNDS = PROFILE === 'ci' ? 2 : 3;

t.test('SIGTERM under load: exit 0 in time, unfinished work released at once, nothing lost', async (t) => {
  const w = await world([{ queue: 'work', events: ['WORK'], visibilityTimeout: 60, timeoutMs: 120_000, maxReceiveCount: 20 }]);
  t.teardown(() => w.stop());
  const logFile = tempFile('handled.jsonl');
  const fastFile = tempFile('fast');
  const N = KNOBS.shutdownMessages;
  // 60% short I/O, 20% CPU-bound (blocks its thread), 15% longer than the deadline, 5% of those ignoring their signal.
  const ids = await publishMany(
    w.publisher,
    Array.from({ length: N }, (_, n) => {
      const r = n % 20;
      const data =
        r < 12 ? { n, sleepMs: randomInt(20, 200) } : r < 16 ? { n, spinMs: randomInt(50, 200) } : r < 19 ? { n, slowMs: 60_000 } : { n, slowMs: 60_000, honourSignal: false };
      return { type: 'WORK', data };
    }),
  );
  const config = supervisorConfig(w, { concurrency: 16, threads: 2, tasksPerThread: 8, shutdownTimeoutMs: SHUTDOWN_TIMEOUT_MS });
  const started = Date.now();
  const rounds: Array<{ exitMs: number; code: number | null; inFlightAfter: number; released: number; handledBefore: number }> = [];
  let outputs = '';
  for (let round = 0; round < ROUNDS; round++) {
    const sup = await spawnSupervisor(config, { EVENTBUS_TEST_LOG: logFile, FAULTS_FAST_FILE: fastFile });
    t.teardown(() => sup.kill());
    // Heavy work: every slot taken this round (long handlers hold some), and a random moment of it.
    // Counted by handler starts, not completions: the messages released by the last round come back
    // first, and once 60 s handlers hold all 16 slots nothing completes for a minute. That is
    // heavy work too, not a stall (the last round shows everything gets handled).
    const startsOf = () => [...tally(readHandlerLog(logFile), 'work').starts.values()].reduce((a, b) => a + b, 0);
    const before = startsOf();
    await waitFor('work under way', () => startsOf() >= before + 16 + 20, 60_000, 100);
    await sleep(randomInt(0, 1_500));
    const handledBefore = tally(readHandlerLog(logFile), 'work').handled(ids);
    const sentAt = Date.now();
    sup.child.kill('SIGTERM');
    const exit = await sup.exited;
    const exitMs = exit.atMs - sentAt;
    const d = await w.depth('work');
    outputs += sup.output();
    const released = parseLines(sup.output()).reduce((a, l) => a + (l.msg === 'released unfinished messages at the shutdown deadline' ? Number(l.released) : l.msg === 'released at shutdown' ? 1 : 0), 0);
    rounds.push({ exitMs, code: exit.code, inFlightAfter: d.inFlight, released, handledBefore });
    t.equal(exit.code, 0, `round ${round + 1}: exit 0`);
    t.ok(exitMs <= SHUTDOWN_TIMEOUT_MS + EXIT_SLACK_MS, `round ${round + 1}: exited in ${exitMs} ms (shutdownTimeoutMs ${SHUTDOWN_TIMEOUT_MS})`);
    t.equal(d.inFlight, 0, `round ${round + 1}: nothing left in flight right after exit (${released} released, ${d.visible} visible)`);
    t.ok(released > 0, `round ${round + 1}: the unfinished work was released`);
  }
  // The rest is handled by a new supervisor, the long handlers now quick.
  writeFileSync(fastFile, '');
  const last = await spawnSupervisor(config, { EVENTBUS_TEST_LOG: logFile, FAULTS_FAST_FILE: fastFile });
  t.teardown(() => last.kill());
  const restartAt = Date.now();
  await waitFor('everything handled', () => tally(readHandlerLog(logFile), 'work').handled(ids) === ids.length, 120_000, 250);
  const doneAt = Date.now();
  await waitFor('queue empty', async () => {
    const d = await w.depth('work');
    return d.visible + d.inFlight === 0;
  }, 30_000, 250);
  last.child.kill('SIGTERM');
  t.equal((await last.exited).code, 0, 'the last supervisor exits 0');
  saveOutput('shutdown', outputs + last.output());
  const tl = tally(readHandlerLog(logFile), 'work');
  const lost = tl.missing(ids).length;
  t.equal(lost, 0, 'nothing lost');
  t.equal(tl.duplicated(ids), 0, 'nothing that finished ran again');
  record({
    fault: 'shutdown',
    case: `SIGTERM x${ROUNDS} under load`,
    injected: `${ROUNDS} x SIGTERM at a random moment of work (16 slots busy: 60% short I/O, 20% CPU-bound, 20% longer than the deadline, a quarter of those ignoring their signal); shutdownTimeoutMs ${SHUTDOWN_TIMEOUT_MS}, visibility 60 s`,
    sent: ids.length,
    handled: tl.handled(ids),
    duplicated: tl.duplicated(ids),
    lost,
    recoveryMs: doneAt - restartAt,
    durationMs: doneAt - started,
    details: {
      exitMs: rounds.map((r) => r.exitMs),
      exitCodes: rounds.map((r) => r.code),
      releasedAtDeadline: rounds.map((r) => r.released),
      inFlightRightAfterExit: rounds.map((r) => r.inFlightAfter),
      handledBeforeSigterm: rounds.map((r) => r.handledBefore),
      reruns: tl.reruns(ids),
    },
  });
});
