#!/usr/bin/env node
// The worker thread's per-message cost of tracing (issue 15), isolated from SQS and the emulator:
// noop messages (the bench's SNS envelopes) through HandlerRunner.run, this checkout's build against
// another build without the tracing code (A/B interleaved in one process, CPU time per 1,000
// messages, medians), then this build again with an SDK that samples everything
// (bench/lib/otel-setup.mjs). A machine shared with other work moves both arms alike.
//   node bench/tracing-overhead.mjs /path/to/baseline-checkout   (built; e.g. a git archive of main)
import { pathToFileURL } from 'node:url';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { preloadMessage } from './lib/messages.mjs';
import { median } from './lib/stats.mjs';

const REPO = dirname(dirname(fileURLToPath(import.meta.url)));
const baseline = process.argv[2];
if (!baseline) {
  process.stderr.write('usage: node bench/tracing-overhead.mjs BASELINE_CHECKOUT (built)\n');
  process.exit(2);
}
const ROUNDS = Number(process.env.ROUNDS ?? 15);
const MESSAGES = Number(process.env.MESSAGES ?? 20_000);
const BATCH = 10;

async function arm(root) {
  const { HandlerRunner, LoadedHandler } = await import(pathToFileURL(join(root, 'dist/worker/runner.js')).href);
  const { RunTable } = await import(pathToFileURL(join(root, 'dist/worker/run-table.js')).href);
  const { pino } = await import('pino');
  const log = pino({ level: 'silent' });
  const def = { queue: 'q', handle() {} };
  const runner = new HandlerRunner(
    { log, table: new RunTable(BATCH, Date.now()), threadId: 1, graceMs: 1000, sendOutcomes() {}, publish: () => Promise.reject(new Error('no')) },
    new Map([['q', new LoadedHandler('q', def, log)]]),
  );
  return runner;
}

const bodies = Array.from({ length: 1000 }, (_, i) => preloadMessage(i));
let taskId = 0;
async function drain(runner) {
  const start = process.cpuUsage();
  for (let n = 0; n < MESSAGES; n += BATCH) {
    const items = [];
    for (let i = 0; i < BATCH; i++) {
      const m = bodies[(n + i) % bodies.length];
      items.push({ row: i, messageId: `m${n + i}`, receiveCount: 1, body: m.body, attributes: undefined, sentTimestampMs: Date.now() });
    }
    await runner.run({ taskId: ++taskId, queue: 'q', queueArn: 'arn:aws:sqs:us-east-1:000000000000:q', topicArn: null, timeoutMs: 60_000, items });
  }
  const u = process.cpuUsage(start);
  return ((u.user + u.system) / 1000 / MESSAGES) * 1000;
}

const A = await arm(baseline);
const B = await arm(REPO);
// Warm-up: JIT both paths.
await drain(A);
await drain(B);
const rows = { A: [], B: [], 'B+SDK': [] };
for (let r = 0; r < ROUNDS; r++) {
  for (const [k, runner] of r % 2 ? [['B', B], ['A', A]] : [['A', A], ['B', B]]) rows[k].push(await drain(runner));
}
await import(pathToFileURL(join(REPO, 'bench/lib/otel-setup.mjs')).href);
await drain(B);
const rowsSdkA = [];
for (let r = 0; r < ROUNDS; r++) {
  for (const [k, runner] of r % 2 ? [['B+SDK', B], ['A', A]] : [['A', A], ['B+SDK', B]]) (k === 'A' ? rowsSdkA : rows[k]).push(await drain(runner));
}
const fmt = (xs) => `${median(xs).toFixed(1)} (${Math.min(...xs).toFixed(1)}–${Math.max(...xs).toFixed(1)})`;
process.stdout.write(`${MESSAGES} noop messages per drain, ${ROUNDS} interleaved drains per arm, CPU ms per 1,000 messages, median (min–max)\n`);
process.stdout.write(`A  baseline (${baseline}):        ${fmt(rows.A)}\n`);
process.stdout.write(`B  this build, no SDK:            ${fmt(rows.B)}   B/A ${(median(rows.B) / median(rows.A)).toFixed(3)}\n`);
process.stdout.write(`A  baseline, second phase:        ${fmt(rowsSdkA)}\n`);
process.stdout.write(`B+SDK this build, SDK, all sampled: ${fmt(rows['B+SDK'])}   B+SDK/A ${(median(rows['B+SDK']) / median(rowsSdkA)).toFixed(3)}\n`);
