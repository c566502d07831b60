// Handlers that misbehave: throw (synchronously and by rejecting, with non-Error values too), return
// false or garbage, call process.exit() in the thread, spin forever, exhaust their heap
// (threadHeapMb), never settle. Expected: a message that keeps failing is retried and ends in the
// DLQ with the reason logged; one that fails once succeeds on its retry; garbage return values are
// success (SPEC "Results"); the pool recovers; another queue keeps flowing all along; the process never dies.
import t from 'tap';
import {
  KNOBS,
  metricSum,
  publishMany,
  readHandlerLog,
  record,
  saveOutput,
  scrape,
  sleep,
  spawnSupervisor,
  supervisorConfig,
  tally,
  tempFile,
  waitFor,
  world,
} from '../helpers/faults.js';

const MAX_RECEIVES = 3;
const TIMEOUT_MS = 1_000;
/**
 * A handler that never yields holds its thread, and the tasks already on it, until the watchdog ends
 * the thread (timeoutMs + 2 s grace + 1 s margin); one that exhausts its heap holds it while V8
 * collects in vain (2-3 s here); a replacement thread takes 1-1.5 s to load on 2 busy cores. With
 * two threads and this storm of blockers both threads can be taken through a chain of such windows.
 */
const MAX_PAUSE_MS = 3 * (TIMEOUT_MS + 2_000 + 1_000) + 3 * 1_500;
/** Always failing: each must end in the DLQ. */
const ALWAYS = ['sync-throw', 'reject-string', 'reject-undefined', 'thenable-reject', 'false', 'throw', 'exit', 'spin', 'oom', 'never-settles'] as const;
/** The reason logged on the last attempt (a handler still pending when a neighbour ends its thread is `crashed`). */
const REASON: Record<(typeof ALWAYS)[number], RegExp> = {
  'sync-throw': /^error: TypeError: thrown synchronously/,
  // A value that is not an Error is described as what it is (issue 13).
  'reject-string': /^error: a string was thrown: a bare string/,
  'reject-undefined': /^error: undefined was thrown/,
  'thenable-reject': /^error: RangeError: a thenable that rejects/,
  false: /^failure: handler returned false/,
  throw: /^error: Error: async rejection/,
  exit: /^crashed: worker thread died: worker exited with code: 7/,
  spin: /^timeout: handler did not yield/,
  oom: /^crashed: worker thread died: .*out of memory/i,
  // Its own timer cannot fire while a spinning neighbour blocks the thread: then the watchdog ends both.
  'never-settles': /^(timeout: |crashed: worker thread died)/,
};
/** Failing on the first receive only: each must succeed on its retry. */
const ONCE = ['sync-throw', 'exit', 'spin', 'oom', 'never-settles'] as const;
/** Returned values that are not `false`: success, deleted. */
const GARBAGE = ['function', 'symbol', 'bigint', 'circular', 'nan', 'string-false', 'zero', 'null', 'error-object', 'huge'] as const;

const dataFor = (kind: string, extra: Record<string, unknown> = {}) =>
  kind === 'false' ? { fail: 'false', ...extra } : kind === 'throw' ? { fail: 'throw', message: 'async rejection', ...extra } : { misbehave: kind, ...extra };

t.test('misbehaving handlers: retried, dead-lettered with the reason logged, the pool recovers, other queues flow', async (t) => {
  const w = await world([
    { queue: 'bad', events: ['BAD'], visibilityTimeout: 10, timeoutMs: TIMEOUT_MS, maxReceiveCount: MAX_RECEIVES },
    { queue: 'good', events: ['GOOD'], visibilityTimeout: 10, maxReceiveCount: 10 },
  ]);
  t.teardown(() => w.stop());
  const logFile = tempFile('handled.jsonl');
  const config = supervisorConfig(w, {
    concurrency: 12,
    threads: 2,
    tasksPerThread: 6,
    threadHeapMb: 64,
    retry: { baseDelaySec: 1, maxDelaySec: 2 },
    shutdownTimeoutMs: 10_000,
  });
  const sup = await spawnSupervisor(config, { EVENTBUS_TEST_LOG: logFile });
  t.teardown(() => sup.kill());
  const started = Date.now();

  // Ordinary work on the other queue, in waves during the whole bad phase.
  const goodIds: string[] = [];
  let goodDone = false;
  const goodWaves = (async () => {
    let n = 0;
    const per = Math.ceil(KNOBS.goodMessages / 20);
    for (let wave = 0; wave < 20; wave++) {
      goodIds.push(...(await publishMany(w.publisher, Array.from({ length: per }, () => ({ type: 'GOOD', data: { n: n++, sleepMs: 20 } })))));
      await sleep(1_000);
    }
    goodDone = true;
  })();

  const always = await publishMany(w.publisher, ALWAYS.map((k) => ({ type: 'BAD', data: dataFor(k, { tag: `always:${k}` }) })));
  const once = await publishMany(w.publisher, ONCE.map((k) => ({ type: 'BAD', data: dataFor(k, { tag: `once:${k}`, failTimes: 1 }) })));
  const garbage = await publishMany(w.publisher, GARBAGE.map((k) => ({ type: 'BAD', data: { misbehave: 'garbage', garbage: k, tag: `garbage:${k}` } })));
  const sent = always.length + once.length + garbage.length;
  const kindOf = new Map<string, string>();
  ALWAYS.forEach((k, i) => kindOf.set(always[i]!, `always:${k}`));
  ONCE.forEach((k, i) => kindOf.set(once[i]!, `once:${k}`));
  GARBAGE.forEach((k, i) => kindOf.set(garbage[i]!, `garbage:${k}`));

  // The DLQ gets every always-failing message (SQS moves it on the receive after maxReceiveCount).
  const dlqIds = new Set<string>();
  const dlqReceives = new Map<string, number>();
  await waitFor(
    'every always-failing message in the DLQ',
    async () => {
      for (const m of await w.drain('bad', { dlq: true, remove: true })) {
        const id = JSON.parse(JSON.parse(m.Body!).Message).id as string;
        dlqIds.add(id);
        dlqReceives.set(id, Number(m.Attributes?.ApproximateReceiveCount));
      }
      return always.every((id) => dlqIds.has(id));
    },
    120_000,
    1_000,
  );
  const badDoneAt = Date.now();
  await goodWaves;
  t.ok(goodDone);
  await waitFor('every good message handled', () => tally(readHandlerLog(logFile), 'good').handled(goodIds) === goodIds.length, 60_000, 250);
  const tb = tally(readHandlerLog(logFile), 'bad');
  for (const id of [...once, ...garbage]) t.ok(tb.ends.has(id), `${kindOf.get(id)} succeeded`);
  t.same([...dlqIds].filter((id) => !always.includes(id)), [], 'nothing else in the DLQ');
  for (const id of always) t.notOk(tb.ends.has(id), `${kindOf.get(id)} never succeeded`);
  // Retried before the DLQ: SQS received it maxReceiveCount times (the move itself counts one more, FAUXQS F8).
  for (const id of always) t.ok(dlqReceives.get(id)! > MAX_RECEIVES, `${kindOf.get(id)} was received ${MAX_RECEIVES} times before the DLQ (ApproximateReceiveCount ${dlqReceives.get(id)})`);
  const badLost = sent - tb.handled([...once, ...garbage]) - always.filter((id) => dlqIds.has(id)).length;
  t.equal(badLost, 0, 'nothing of the misbehaving queue lost: handled or in the DLQ');

  // The reason is logged for each message on its last attempt.
  const logs = sup.logs();
  const messageIdOf = new Map(readHandlerLog(logFile).filter((r) => r.queue === 'bad').map((r) => [r.id, r.messageId]));
  const lastAttempt = new Map(logs.filter((l) => l.msg === 'handler failed; the next receive moves the message to the DLQ').map((l) => [l.messageId, l]));
  const reasons: Record<string, string> = {};
  ALWAYS.forEach((kind, i) => {
    const line = lastAttempt.get(messageIdOf.get(always[i]!));
    const reason = `${line?.result}: ${line?.error}`;
    t.match(reason, REASON[kind], `always:${kind}: the reason is logged (${reason})`);
    reasons[kind] = reason.slice(0, 90);
  });

  // Other work was not held up: the gaps between good completions while the bad queue misbehaved.
  const goodEnds = readHandlerLog(logFile)
    .filter((r) => r.queue === 'good' && r.kind === 'end' && r.at <= badDoneAt)
    .map((r) => r.at)
    .sort((a, b) => a - b);
  let maxGapMs = 0;
  for (let i = 1; i < goodEnds.length; i++) maxGapMs = Math.max(maxGapMs, goodEnds[i]! - goodEnds[i - 1]!);
  t.ok(maxGapMs < MAX_PAUSE_MS, `the good queue kept flowing (longest pause ${maxGapMs} ms, bound ${MAX_PAUSE_MS} ms)`);
  const tg = tally(readHandlerLog(logFile), 'good');
  t.equal(tg.missing(goodIds).length, 0, 'nothing of the good queue lost');
  t.equal((await w.depth('good', true)).visible, 0, 'nothing of the good queue in its DLQ');

  // The pool recovered: a last wave runs on whatever threads there are now.
  const after = await publishMany(w.publisher, Array.from({ length: 20 }, (_, n) => ({ type: 'GOOD', data: { n, sleepMs: 5 } })));
  await waitFor('the pool works after all that', () => tally(readHandlerLog(logFile), 'good').handled(after) === after.length, 30_000, 250);
  const metrics = await scrape(sup.http);
  const results = Object.fromEntries(['success', 'failure', 'error', 'timeout', 'crashed'].map((r) => [r, metricSum(metrics, 'eventbus_handler_results_total', { queue: 'bad', result: r })]));
  t.ok(results.crashed! > 0 && results.timeout! > 0 && results.error! > 0 && results.failure! > 0, `every result kind seen: ${JSON.stringify(results)}`);
  t.equal(sup.child.exitCode, null, 'the supervisor never died');
  const crashedGood = metricSum(metrics, 'eventbus_handler_results_total', { queue: 'good', result: 'crashed' });
  sup.child.kill('SIGTERM');
  t.equal((await sup.exited).code, 0, 'exit 0 on SIGTERM');
  saveOutput('handlers', sup.output());

  record({
    fault: 'handlers',
    case: 'misbehaving queue',
    injected: `${ALWAYS.length} always failing (${ALWAYS.join(', ')}), ${ONCE.length} failing once (${ONCE.join(', ')}), ${GARBAGE.length} returning garbage (${GARBAGE.join(', ')}); timeoutMs ${TIMEOUT_MS}, maxReceiveCount ${MAX_RECEIVES}, threadHeapMb 64, 2 threads x 6 tasks`,
    sent,
    handled: tb.handled([...once, ...garbage]),
    deadLettered: always.filter((id) => dlqIds.has(id)).length,
    duplicated: tb.duplicated([...once, ...garbage]),
    lost: badLost,
    recoveryMs: null,
    durationMs: badDoneAt - started,
    details: { results, reasonsLogged: reasons },
  });
  record({
    fault: 'handlers',
    case: 'ordinary queue beside it',
    injected: `${goodIds.length} messages in 20 waves, one a second, while the other queue misbehaved, then ${after.length} more`,
    sent: goodIds.length + after.length,
    handled: tg.handled(goodIds) + tally(readHandlerLog(logFile), 'good').handled(after),
    duplicated: tally(readHandlerLog(logFile), 'good').duplicated([...goodIds, ...after]),
    lost: tally(readHandlerLog(logFile), 'good').missing([...goodIds, ...after]).length,
    recoveryMs: null,
    durationMs: Date.now() - started,
    details: { longestPauseBetweenCompletionsMs: maxGapMs, crashedWithANeighbour: crashedGood },
  });
});
