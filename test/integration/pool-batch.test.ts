// The pool runs a whole receive per task; each message must still be timed, blamed and reported
// on its own. Real worker threads, no SQS (HandlerPool directly).
import t from 'tap';
import { fileURLToPath } from 'node:url';
import { HandlerPool } from '../../dist/supervisor/run/pool.js';
import { createLogger } from '../../dist/log.js';

const PROBE = fileURLToPath(new URL('../../test/fixtures/handlers/batch-probe.mjs', import.meta.url));

async function pool(t: { teardown(fn: () => unknown): void }, tasksPerThread = 8): Promise<HandlerPool> {
  const p = new HandlerPool({
    threads: 1,
    tasksPerThread,
    log: createLogger({ level: 'silent' }),
    worker: { handlers: [{ queue: 'q', file: PROBE }], aws: { endpoint: null, region: 'us-east-1' }, topicArn: null, source: 't', logLevel: 'silent', pretty: false, graceMs: 200 },
  });
  t.teardown(() => p.destroy());
  await p.warmup();
  return p;
}

const msg = (id: string, type: string, data: unknown = {}) => ({ messageId: id, receiveCount: 1, body: JSON.stringify({ type, id, data }) });

t.test('a handler that blocks its thread is blamed alone: finished neighbours keep their success, unstarted ones run again', async (t) => {
  // Expected: [OK, SPIN, OK, OK] in one task: SPIN `timeout`, the three OKs `success` without a new receive.
  // Broke: every message of the task got SPIN's start time, so all four were `timeout` and spent a receive.
  const p = await pool(t);
  const out = await Promise.all(p.runBatch('q', 'arn:q', 300, [msg('before', 'OK'), msg('spin', 'SPIN', { ms: 60_000 }), msg('after1', 'OK'), msg('after2', 'OK')], true));
  t.same(out.map((o) => o.result), ['success', 'timeout', 'success', 'success']);
  t.match(out[1]!.error, /did not yield 300 ms after start; thread replaced/);
  t.equal(out[1]!.eventType, 'SPIN', 'the labels still name the event (decoded on the main thread for a lost outcome)');
});

t.test('handlers that run synchronously for a while but honour their signal do not get their thread ended', async (t) => {
  // Expected: six messages of 250 ms CPU each, then waiting on ctx.signal: all `timeout` by their own signal; a neighbour task succeeds.
  // Broke: the batch ran 1.5 s without letting timers fire, the watchdog ended the thread and the neighbour became `crashed`.
  const p = await pool(t);
  const neighbour = p.runBatch('q', 'arn:q', 60_000, [msg('n', 'WAIT', { ms: 2_000 })], false);
  const cpu = p.runBatch('q', 'arn:q', 300, Array.from({ length: 6 }, (_, i) => msg(`c${i}`, 'CPU_THEN_WAIT', { ms: 250 })), false);
  const out = await Promise.all([...cpu, ...neighbour]);
  t.same(out.map((o) => o.result), ['timeout', 'timeout', 'timeout', 'timeout', 'timeout', 'timeout', 'success']);
  for (const o of out.slice(0, 6)) t.match(o.error, /^Error: handler timed out after 300 ms$/, 'ended by its own signal, not by a thread kill');
  for (const o of out.slice(0, 6)) t.ok(o.durationMs >= 300 && o.durationMs < 1_500, `timed from its own start (${Math.round(o.durationMs)} ms)`);
});

t.test('a handler may assign ctx.log and ctx.signal', async (t) => {
  // Expected: plain-property semantics. Broke: lazy getters without setters threw in strict-mode modules.
  const p = await pool(t);
  const [o] = await Promise.all(p.runBatch('q', 'arn:q', 5_000, [msg('a', 'ASSIGN')], false));
  t.equal(o!.result, 'success', o!.error ?? '');
});

t.test('moreUnstartedThan: counts the messages of a queue that wait on their thread behind a running handler', async (t) => {
  // The poller keeps its fill window open on it (CPU-bound handlers: fewer, fuller receives).
  const p = await pool(t);
  t.notOk(p.moreUnstartedThan('q', 0), 'nothing handed over yet');
  const out = p.runBatch('q', 'arn:q', 10_000, [msg('s1', 'SPIN', { ms: 150 }), msg('s2', 'SPIN', { ms: 150 }), msg('s3', 'SPIN', { ms: 600 })], false);
  t.ok(p.moreUnstartedThan('q', 1), 'the batch is queued on one thread: at least two wait');
  t.notOk(p.moreUnstartedThan('q', 3), 'but not more than the three handed over');
  t.notOk(p.moreUnstartedThan('other', 0), 'per queue');
  let thirdDone = false;
  void out[2]!.then(() => (thirdDone = true));
  await Promise.all([out[0], out[1]]);
  const deadline = Date.now() + 400;
  while (p.moreUnstartedThan('q', 0) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 2));
  t.notOk(p.moreUnstartedThan('q', 0), 'none once the last handler started');
  t.notOk(thirdDone, 'while that handler still runs');
  t.same((await Promise.all(out)).map((o) => o.result), ['success', 'success', 'success']);
  t.notOk(p.moreUnstartedThan('q', 0), 'none when all settled');
});

t.test('keepsThreadsBusy: true for handlers that burn their thread, false for handlers that wait', async (t) => {
  // The dispatcher splits a batch across threads only for the first kind; a split of waiting
  // handlers cost 5-8 % more CPU per message in the io bench for nothing.
  const p = await pool(t);
  t.ok(p.keepsThreadsBusy('q'), 'unknown yet: assumed busy (split)');
  for (let round = 0; round < 6; round++) {
    await Promise.all(p.runBatch('q', 'arn:q', 10_000, Array.from({ length: 5 }, (_, i) => msg(`w${round}-${i}`, 'WAIT', { ms: 40 })), false));
  }
  t.notOk(p.keepsThreadsBusy('q'), 'waiting handlers leave their thread idle');
  for (let round = 0; round < 6; round++) {
    await Promise.all(p.runBatch('q', 'arn:q', 10_000, Array.from({ length: 3 }, (_, i) => msg(`c${round}-${i}`, 'SPIN', { ms: 15 })), false));
  }
  t.ok(p.keepsThreadsBusy('q'), 'synchronous handlers keep it busy');
});
