#!/usr/bin/env node
// Renders docs/RELIABILITY.md from the fault suite's result records (dist-test/faults-results/*.json),
// which each test of `npm run test:faults` writes from its own run. `--clean` removes old records
// (run before the suite). Under FAULTS_PROFILE=ci the report goes to dist-test/faults-results/RELIABILITY.md
// so a CI run never rewrites the committed one; `--out FILE` overrides.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const RESULTS = join(ROOT, 'dist-test', 'faults-results');
const args = process.argv.slice(2);

if (args.includes('--clean')) {
  rmSync(RESULTS, { recursive: true, force: true });
  // When the run started (the suite runs right after this), for the report's run time.
  mkdirSync(RESULTS, { recursive: true });
  writeFileSync(join(RESULTS, 'started-at'), new Date().toISOString());
  process.exit(0);
}

const outArg = args.indexOf('--out');
const profile = process.env.FAULTS_PROFILE === 'ci' ? 'ci' : 'full';
const out = outArg >= 0 ? args[outArg + 1] : profile === 'ci' ? join(RESULTS, 'RELIABILITY.md') : join(ROOT, 'docs', 'RELIABILITY.md');

if (!existsSync(RESULTS)) {
  console.error(`no results in ${RESULTS}: run npm run test:faults`);
  process.exit(1);
}
const records = readdirSync(RESULTS)
  .filter((f) => f.endsWith('.json'))
  .map((f) => JSON.parse(readFileSync(join(RESULTS, f), 'utf8')));

/** The faults in the issue's order, with what each proves. */
const FAULTS = [
  ['endpoint', 'The SQS/SNS endpoint misbehaves while the supervisor runs', 'A fault-injecting HTTP proxy (`test/helpers/fault-proxy.ts`) sits between the supervisor and the emulator; the test publishes through the emulator directly. Each mode lasts the stated time, then clears. The supervisor must stay up, back off (request rate while failing asserted at most 10/s on average and 30 in any second; the receive loop\'s retry delays growing, and jittered across faults), count the errors in `eventbus_sqs_errors_total`, turn `/readyz` 503 after `readiness.sqsFailureSec` (2 s here), recover by itself and lose nothing. Recovery = from the fault clearing to every message of the phase handled.'],
  ['endpoint-at-start', 'The endpoint misbehaves while the supervisor starts', 'The supervisor is started while the proxy fails every call; it must keep retrying with backoff (not exit), answer `/readyz` 503 and `/healthz` 200 meanwhile, and start once the fault clears. Recovery = from the fault clearing to `supervisor running`.'],
  ['crash', 'kill -9 at a random moment', 'A run of messages with short random handler times; at random moments the process is frozen (SIGSTOP), the messages SQS holds in flight are counted, and it is killed with SIGKILL; then restarted. Every message must end handled at least once, none lost, and the messages run more than once (duplicates: succeeded twice; re-runs: started again) may not exceed what was in flight at the kills.'],
  ['handlers', 'Handlers that misbehave', 'One queue gets handlers that throw, reject, return garbage, exit the thread, spin forever, exhaust their heap (`threadHeapMb`), never settle; another queue carries ordinary work at the same time. Always-failing messages must be retried and end in the DLQ with the reason logged; transient ones succeed on a retry; the pool must recover; the ordinary queue must keep flowing.'],
  ['poison', 'Poison input', 'Bodies no publisher of ours would send, sent raw to SQS: a lenient handler must receive each as the SPEC decodes it; a strict handler rejects what it cannot use, which ends in the DLQ with the reason logged. The supervisor must never crash.'],
  ['backlog', 'A large backlog with a slow handler', 'The queue holds the backlog before the supervisor starts; the handler first runs slower than the visibility timeout (so every message needs extensions), then fast until the queue is empty. RSS of the supervisor process is sampled every second; it must stay flat (bounded by the caps, not the backlog: flat through the slow phase, and no higher in the last quarter of the drain than in its second quarter, by messages handled, beyond 15% + 15 MB), SQS may never hold more than the caps allow in flight (the cap of running handlers plus at most the cap again of messages whose delete is on its way), no message may be delivered twice (no visibility expiry in flight; extensions counted), and throughput must hold.'],
  ['shutdown', 'SIGTERM under load', 'SIGTERM while every slot is busy with a mix of short, CPU-bound and longer-than-the-deadline handlers. The process must exit 0 within `shutdownTimeoutMs`, with nothing left in flight (what could not finish released at once, visibility 0); a new supervisor then handles everything; nothing lost.'],
];

const fmt = (n) => (typeof n === 'number' ? n.toLocaleString('en-US') : n ?? '-');
const secs = (ms) => (ms === null || ms === undefined ? '-' : `${(ms / 1000).toFixed(1)} s`);

const lines = [];
const first = records.map((r) => r.at).sort()[0];
// From the `--clean` before the suite (else the start of the earliest case, whose record is written at its end) to the last record.
const startedFile = join(RESULTS, 'started-at');
const startedMs = existsSync(startedFile) ? Date.parse(readFileSync(startedFile, 'utf8')) : Math.min(...records.map((r) => Date.parse(r.at) - (r.durationMs ?? 0)));
const endedMs = Math.max(...records.map((r) => Date.parse(r.at)));
const runMinutes = records.length ? Math.round((endedMs - startedMs) / 60_000) : '?';
const totals = records.reduce((a, r) => ({ sent: a.sent + r.sent, handled: a.handled + r.handled, dup: a.dup + r.duplicated, lost: a.lost + r.lost, dlq: a.dlq + (r.deadLettered ?? 0) }), { sent: 0, handled: 0, dup: 0, lost: 0, dlq: 0 });
lines.push('# Reliability under faults');
lines.push('');
lines.push('Written by `npm run test:faults` (the fault-injection suite in `test/faults/`) from its own results: every');
lines.push('number below was measured in that run. The guarantees under test are in [REFERENCE.md](REFERENCE.md#guarantees)');
lines.push('("Guarantees") and the README ("Writing a handler", "How the supervisor works" in ARCHITECTURE.md).');
lines.push('');
lines.push(`Run: ${Number.isFinite(startedMs) ? new Date(startedMs).toISOString().slice(0, 16).replace('T', ' ') : first ? first.slice(0, 16).replace('T', ' ') : '?'} UTC, profile \`${profile}\`, Node ${records[0]?.node ?? process.version}, ${cpus().length} cores, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, fauxqs 1.9.2 on 127.0.0.1, real processes (the supervisor is \`node dist/supervisor\` spawned by the test).`);
lines.push('');
lines.push(`**${records.length} fault cases, ${fmt(totals.sent)} messages sent, ${fmt(totals.handled)} handled, ${fmt(totals.dlq)} dead-lettered on purpose, ${fmt(totals.dup)} duplicated, ${fmt(totals.lost)} lost.**`);
lines.push('');
lines.push('Columns: *sent* = distinct messages the case published; *handled* = distinct messages whose handler');
lines.push('succeeded; *DLQ* = messages that ended in the dead-letter queue because the handler kept rejecting them');
lines.push('(expected, found there); *dup* = successful handler runs beyond the first; *lost* = sent minus handled minus');
lines.push('DLQ (must be 0); *recovery* = from the end of the fault to normal service (defined per fault below).');
lines.push('');
lines.push('## Reproduce');
lines.push('');
lines.push('```sh');
lines.push('npm run test:faults                      # the full profile: this report (backlog 100,000)');
lines.push('FAULTS_PROFILE=ci npm run test:faults    # the CI profile: smaller, report in dist-test/faults-results/');
lines.push('FAULTS_BACKLOG=50000 npm run test:faults # any knob of test/helpers/faults.ts (KNOBS) by its env variable');
lines.push('```');
lines.push('');
lines.push('From a clean checkout: `npm ci` first (Node 20; fauxqs 1.9.2 is a dependency and runs in the test process on');
lines.push('127.0.0.1, no network needed). The script renders this file only after every test passed, and fails if any case');
lines.push('lost a message; each case also leaves its JSON record in `dist-test/faults-results/` and the supervisor logs in');
lines.push('`dist-test/faults-logs/`.');
lines.push(`This run took ${runMinutes} minutes on the machine above; \`.ci/run\` runs the CI profile (6 to 7 minutes here) after \`npm test\` on Node 20.`);
lines.push('');
for (const [key, title, what] of FAULTS) {
  const rs = records.filter((r) => r.fault === key).sort((a, b) => a.at.localeCompare(b.at));
  if (!rs.length) continue;
  lines.push(`## ${title}`);
  lines.push('');
  lines.push(what);
  lines.push('');
  lines.push('| case | injected | sent | handled | DLQ | dup | lost | recovery | took |');
  lines.push('|---|---|---|---|---|---|---|---|---|');
  for (const r of rs) {
    lines.push(`| ${r.case} | ${r.injected} | ${fmt(r.sent)} | ${fmt(r.handled)} | ${fmt(r.deadLettered ?? 0)} | ${fmt(r.duplicated)} | ${r.lost === 0 ? '0' : `**${r.lost}**`} | ${secs(r.recoveryMs)} | ${secs(r.durationMs)} |`);
  }
  lines.push('');
  const withDetails = rs.filter((r) => r.details && Object.keys(r.details).length);
  if (withDetails.length) {
    lines.push('<details><summary>Measurements</summary>');
    lines.push('');
    for (const r of withDetails) {
      lines.push(`- **${r.case}**: ${Object.entries(r.details).map(([k, v]) => `${k} ${typeof v === 'object' ? JSON.stringify(v).replace(/"/g, '') : fmt(v)}`).join('; ')}`);
    }
    lines.push('');
    lines.push('</details>');
    lines.push('');
  }
}
const known = new Set(FAULTS.map(([k]) => k));
const other = records.filter((r) => !known.has(r.fault));
if (other.length) {
  lines.push('## Other');
  lines.push('');
  for (const r of other) lines.push(`- ${r.fault} / ${r.case}: sent ${r.sent}, handled ${r.handled}, lost ${r.lost}`);
  lines.push('');
}

const notes = join(ROOT, 'test', 'faults', 'NOTES.md');
if (existsSync(notes)) {
  lines.push(readFileSync(notes, 'utf8').trim());
  lines.push('');
}

mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, lines.join('\n'));
console.log(`${out}: ${records.length} cases, ${totals.sent} sent, ${totals.handled} handled, ${totals.dlq} dead-lettered, ${totals.dup} duplicated, ${totals.lost} lost`);
if (totals.lost > 0) process.exit(1);
