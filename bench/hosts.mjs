#!/usr/bin/env node
// `npm run bench -- --hosts [1,2,4]`: scale-out. K supervisors, each its own process (a "host"), all
// on the same queue, drain one preloaded backlog; every SQS call of theirs gets the net-* scenarios'
// round trip (+BENCH_NET_MS, added inside the emulator). Each host runs io handlers (await 20 ms)
// under a small cap C, so one host is bound by C / latency, not by the cores, and K hosts should
// drain K times as fast until the cores or the emulator are the bound: the report shows which
// (machine CPU busy during the measured window, and the emulator's own CPU).
// Then a join/leave run: two hosts start, one is killed with SIGKILL a third of the way in, a third
// host starts half-way; every message must still be handled (0 missing), and the only duplicates
// may be the killed host's unfinished messages, which come back after their visibility timeout.
//
// Network namespaces: not used. This harness runs as root here and `ip netns` works, but the
// kernel has no netem qdisc (`tc qdisc add ... netem` → "Specified qdisc kind is unknown"), so a
// per-namespace delay cannot be made; the delay stays in the emulator, as in the net-* scenarios,
// and the hosts are processes on loopback.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, totalmem } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CreateTopicCommand } from '@aws-sdk/client-sns';
import { createQueues, deleteQueues, die, eventbusHandlersDir, harnessClients, killAll, log, sleep, startBenchEmulator, tempDir, tail, track, withTimeout } from './lib/harness.mjs';
import { cpuMs, machine, machineCpu } from './lib/proc.mjs';
import { median, min, max } from './lib/stats.mjs';
import { hrNow } from './lib/work.mjs';
import { TOPIC } from './lib/messages.mjs';

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const REPO = dirname(BENCH_DIR);
const env = process.env;
env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const argv = process.argv.slice(2);

if (argv.includes('--help') || argv.includes('-h')) {
  process.stdout.write(`usage: node bench/run.mjs --hosts [K,K,...]   (npm run bench -- --hosts 1,2,4)

Environment:
  BENCH_HOSTS_C        cap (concurrency) of each host (default 5): one host's bound is C / (20 ms + hop)
  BENCH_HOSTS_SECS     seconds one host would take per drain; N = K x one host's rate x this (default 10)
  BENCH_HOSTS_RATE     one host's expected msgs/s, to size N before it is measured (default 200)
  BENCH_RUNS           drains per K (default 3; the median is reported)
  BENCH_NET_MS         added to every host SQS call (default 15)
  BENCH_EB_THREADS     worker threads per host (default 1: a 1-vCPU host)
  BENCH_HOSTS_CHURN=0  skip the join/leave run
  BENCH_OUT            markdown output (default bench/results/hosts.md)
`);
  process.exit(0);
}

const hostsArg = argv[argv.indexOf('--hosts') + 1];
const KS = (hostsArg && !hostsArg.startsWith('-') ? hostsArg : '1,2,4').split(',').map(Number);
if (KS.some((k) => !Number.isInteger(k) || k < 1)) die('--hosts takes a list of host counts, e.g. 1,2,4');
const C = Number(env.BENCH_HOSTS_C ?? 5);
const SECS = Number(env.BENCH_HOSTS_SECS ?? 10);
const RATE_GUESS = Number(env.BENCH_HOSTS_RATE ?? 200);
const RUNS = Number(env.BENCH_RUNS ?? 3);
const NET_MS = Number(env.BENCH_NET_MS ?? 15);
const THREADS = Number(env.BENCH_EB_THREADS ?? 1);
const WARMUP = 0.2;
const OUT = env.BENCH_OUT ?? join(BENCH_DIR, 'results', 'hosts.md');

const TMP = tempDir('eventbus-hosts-');

// The emulator (its own process) and the harness's SQS client, set in main().
let emu;
let endpoint;
let sqs;
let queueSeq = 0;
const newQueues = (visibilitySec) => createQueues(sqs, `h${++queueSeq}-`, visibilitySec);
let handlersDir;

let hostSeq = 0;
/** One host: `node dist/supervisor` with its own config, resolving `ready` at "supervisor running". */
function startHost(q, idsDir, extraEnv = {}) {
  const n = ++hostSeq;
  const dir = join(TMP, `host-${n}`);
  mkdirSync(dir, { recursive: true });
  const cfgFile = join(dir, 'eventbus.json');
  writeFileSync(
    cfgFile,
    JSON.stringify({
      endpoint,
      region: 'us-east-1',
      topic: TOPIC,
      queuePrefix: q.prefix,
      handlersDir: (handlersDir ??= eventbusHandlersDir(TMP)),
      provision: false,
      concurrency: C,
      threads: THREADS,
      http: { host: '127.0.0.1', port: 0 },
      logLevel: 'info',
      failureEvents: { enabled: false },
    }),
  );
  const logFile = join(dir, 'host.log');
  const childEnv = {
    ...env,
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    AWS_REGION: 'us-east-1',
    AWS_EC2_METADATA_DISABLED: 'true',
    EVENTBUS_LOG_FORMAT: 'json',
    BENCH_HANDLER: 'io',
    BENCH_C: String(C),
    BENCH_IDS_DIR: idsDir,
    BENCH_EB_QUEUE: 'q',
    ...extraEnv,
  };
  delete childEnv.NODE_OPTIONS;
  delete childEnv.AWS_PROFILE;
  const child = track(spawn(process.execPath, [join(REPO, 'dist', 'supervisor'), '--config', cfgFile], { cwd: REPO, env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] }));
  const fd = openSync(logFile, 'a');
  let out = '';
  let resolveReady;
  const ready = new Promise((r) => (resolveReady = r));
  const onData = (d) => {
    const s = d.toString();
    writeFileSync(fd, s);
    if (out !== null) {
      out += s;
      if (out.includes('"supervisor running"')) {
        out = null;
        resolveReady(hrNow());
      }
    }
  };
  child.stdout.on('data', onData);
  child.stderr.on('data', onData);
  const exited = new Promise((r) => child.once('exit', (code, signal) => (closeSync(fd), r({ code, signal }))));
  // A host that exits before it runs fails its run at once, with its log.
  const running = Promise.race([ready, exited.then((x) => Promise.reject(new Error(`host ${n} exited before running (code ${x.code}, signal ${x.signal}): ${tail(logFile, 3)}`)))]);
  running.catch(() => undefined);
  return { n, child, pid: child.pid, ready: running, exited, logFile };
}

async function stopHost(h, graceMs = 30_000) {
  if (h.child.exitCode === null && h.child.signalCode === null) h.child.kill('SIGTERM');
  const r = await Promise.race([h.exited, sleep(graceMs).then(() => null)]);
  if (r) return r;
  h.child.kill('SIGKILL');
  return h.exited;
}

/** Handled ids per host pid: `<pid>-<thread>.txt` files of the recorder. */
function readHandled(idsDir) {
  const byPid = new Map();
  for (const f of readdirSync(idsDir)) {
    const pid = Number(f.split('-')[0]);
    const ids = readFileSync(join(idsDir, f), 'utf8').split('\n').filter(Boolean).map((l) => l.split(' ')[0]);
    byPid.set(pid, [...(byPid.get(pid) ?? []), ...ids]);
  }
  return byPid;
}

/** Duplicates and missing against the preloaded ids; `redeliveredFrom` = pids whose unfinished ids may come back. */
function account(ids, byPid, redeliveredFrom = new Set()) {
  const expected = new Set(ids);
  const count = new Map();
  const startedOn = new Map();
  for (const [pid, list] of byPid) {
    for (const id of list) {
      count.set(id, (count.get(id) ?? 0) + 1);
      if (!startedOn.has(id)) startedOn.set(id, new Set());
      startedOn.get(id).add(pid);
    }
  }
  let dup = 0;
  let dupExpected = 0;
  let unknown = 0;
  for (const [id, k] of count) {
    if (!expected.has(id)) unknown++;
    else if (k > 1) {
      const fromKilled = [...startedOn.get(id)].some((p) => redeliveredFrom.has(p));
      if (fromKilled) dupExpected += k - 1;
      else dup += k - 1;
    }
  }
  let missing = 0;
  for (const id of ids) if (!count.has(id)) missing++;
  return { dup, dupExpected, missing, unknown };
}

/** One drain with K hosts. */
async function drainK(k, n) {
  const q = await newQueues(30);
  const idsDir = join(TMP, `ids-${q.name}`);
  mkdirSync(idsDir);
  const winId = await emu.openWindow({ queueName: q.name, latencyMs: NET_MS, drainCheck: true, markDepth: Math.floor(n * (1 - WARMUP)) });
  const hosts = Array.from({ length: k }, () => startHost(q, idsDir));
  const result = { k, n, ok: false };
  try {
    await withTimeout(Promise.all(hosts.map((h) => h.ready)), 60_000, `${k} hosts did not start`);
    const markP = once(emu.events, `mark:${winId}`);
    const drainedP = once(emu.events, `drained:${winId}`);
    const ids = (await emu.call('preload', 'preloaded', { queueUrl: q.url, n })).ids;
    result.ids = ids;
    const [mark] = await withTimeout(markP, 120_000, 'no 20% mark');
    const cpu0 = machineCpu();
    const hostCpu0 = hosts.map((h) => cpuMs(h.pid));
    const emuCpu0 = cpuMs(emu.pid);
    const [drained] = await withTimeout(drainedP, 180_000, 'not drained');
    const cpu1 = machineCpu();
    const hostCpu1 = hosts.map((h) => cpuMs(h.pid));
    const emuCpu1 = cpuMs(emu.pid);
    const { window: w } = await emu.call('close', 'closed');
    const ms = drained.t - mark.t;
    const m = mark.remaining;
    result.rate = (m * 1000) / ms;
    result.busyCores = cpu0 && cpu1 ? (cpu1.busy - cpu0.busy) / ms : NaN;
    result.hostCores = hostCpu1.reduce((a, c, i) => a + (c - hostCpu0[i]), 0) / ms;
    result.emuCores = (emuCpu1 - emuCpu0) / ms;
    const calls = Object.fromEntries(Object.entries(w.callsAtDrain).map(([op, c]) => [op, ((c - (w.callsAtMark[op] ?? 0)) * 1000) / m]));
    result.callsPer1k = calls;
    result.ok = true;
  } catch (err) {
    result.error = err.message;
    await emu.call('close', 'closed').catch(() => undefined);
    log(`  K=${k} failed: ${err.message}\n${tail(hosts[0].logFile)}`);
  }
  await Promise.all(hosts.map((h) => stopHost(h)));
  Object.assign(result, account(result.ids ?? [], readHandled(idsDir)));
  result.left = (await emu.call('depth', 'depth', { queueName: q.name })).depth;
  result.dlq = (await emu.call('depth', 'depth', { queueName: q.dlqName })).depth;
  await deleteQueues(sqs, q);
  return result;
}

/** Hosts joining and leaving: A and B start; A is killed with -9 at a third; C starts at half. */
async function churn(n, visibilitySec) {
  const q = await newQueues(visibilitySec);
  const idsDir = join(TMP, `ids-${q.name}`);
  mkdirSync(idsDir);
  const winId = await emu.openWindow({ queueName: q.name, latencyMs: NET_MS, drainCheck: true, markDepth: Math.floor(n * (2 / 3)) });
  // One append per handled message: a host killed with -9 keeps its record of what it started.
  const hostEnv = { BENCH_RECORD_SYNC: '1', BENCH_EB_VISIBILITY: String(visibilitySec) };
  const a = startHost(q, idsDir, hostEnv);
  const b = startHost(q, idsDir, hostEnv);
  const hosts = [a, b];
  const r = { n, visibilitySec, ok: false, events: [] };
  const t0 = hrNow();
  const at = (what) => r.events.push(`${((hrNow() - t0) / 1000).toFixed(1)} s ${what}`);
  try {
    await withTimeout(Promise.all([a.ready, b.ready]), 60_000, 'hosts did not start');
    const markP = once(emu.events, `mark:${winId}`);
    const drainedP = once(emu.events, `drained:${winId}`);
    r.ids = (await emu.call('preload', 'preloaded', { queueUrl: q.url, n })).ids;
    at(`${n} messages preloaded, hosts A and B running`);
    await withTimeout(markP, 120_000, 'no third mark');
    a.child.kill('SIGKILL');
    at('host A killed with SIGKILL (a third handled)');
    // Half-way: poll the depth.
    for (;;) {
      const { depth } = await emu.call('depth', 'depth', { queueName: q.name });
      if (depth <= n / 2) break;
      await sleep(50);
    }
    const c = startHost(q, idsDir, hostEnv);
    hosts.push(c);
    await c.ready;
    at('host C started late (half handled) and running');
    const [drained] = await withTimeout(drainedP, 180_000, 'not drained');
    at('queue empty (every message deleted, the killed host\'s back after their visibility timeout)');
    r.drainSec = (drained.t - t0) / 1000;
    await emu.call('close', 'closed');
    r.ok = true;
  } catch (err) {
    r.error = err.message;
    await emu.call('close', 'closed').catch(() => undefined);
  }
  await Promise.all(hosts.map((h) => stopHost(h)));
  const byPid = readHandled(idsDir);
  Object.assign(r, account(r.ids ?? [], byPid, new Set([a.pid])));
  r.perHost = ['A', 'B', 'C'].map((name, i) => `${name} ${byPid.get(hosts[i]?.pid)?.length ?? 0}`).join(', ');
  r.left = (await emu.call('depth', 'depth', { queueName: q.name })).depth;
  r.dlq = (await emu.call('depth', 'depth', { queueName: q.dlqName })).depth;
  await deleteQueues(sqs, q);
  return r;
}

const f0 = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '–');
const f2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : '–');

const startedAt = hrNow();
const load0 = loadavg();
const rows = [];
let churnResult = null;
let exitCode = 0;
try {
  emu = await startBenchEmulator();
  endpoint = emu.endpoint;
  const clients = harnessClients(endpoint);
  sqs = clients.sqs;
  // The supervisor resolves the topic at start (it publishes failure events and ctx.publish there).
  await clients.sns.send(new CreateTopicCommand({ Name: TOPIC }));
  clients.sns.destroy();
  log(`fauxqs on ${endpoint}; hosts ${KS.join(', ')}, C=${C} per host, threads ${THREADS}, +${NET_MS} ms per call, ${RUNS} run(s) each`);
  let perHost = RATE_GUESS;
  for (const k of KS) {
    const n = Math.max(500, Math.round(k * perHost * SECS));
    const runs = [];
    for (let i = 0; i < RUNS; i++) {
      const r = await drainK(k, n);
      runs.push(r);
      log(`  K=${k} run ${i + 1}/${RUNS}: ${r.ok ? `${f0(r.rate)} msgs/s, machine ${f2(r.busyCores)} cores busy (hosts ${f2(r.hostCores)}, emulator ${f2(r.emuCores)})` : `FAILED ${r.error}`}, dup ${r.dup}, missing ${r.missing}, left ${r.left}`);
    }
    const good = runs.filter((r) => r.ok);
    const row = {
      k,
      n,
      rate: median(good.map((r) => r.rate)),
      rateMin: min(good.map((r) => r.rate)),
      rateMax: max(good.map((r) => r.rate)),
      busy: median(good.map((r) => r.busyCores)),
      hostCores: median(good.map((r) => r.hostCores)),
      emuCores: median(good.map((r) => r.emuCores)),
      calls: Object.fromEntries(Object.keys(good[0]?.callsPer1k ?? {}).sort().map((op) => [op, median(good.map((r) => r.callsPer1k[op] ?? 0))])),
      dup: runs.reduce((a, r) => a + r.dup, 0),
      missing: runs.reduce((a, r) => a + r.missing + r.left + r.dlq, 0),
      failed: runs.length - good.length,
    };
    rows.push(row);
    if (k === KS[0] && Number.isFinite(row.rate)) perHost = row.rate / k;
  }
  if (env.BENCH_HOSTS_CHURN !== '0') {
    const n = Math.round(2 * perHost * SECS * 1.5);
    log(`join/leave: ${n} messages, hosts A and B, A killed at a third, C started at half`);
    churnResult = await churn(n, 5);
    log(`  ${churnResult.ok ? 'drained' : `FAILED ${churnResult.error}`}: missing ${churnResult.missing}, dup ${churnResult.dup} (+ ${churnResult.dupExpected} redelivered from the killed host), per host ${churnResult.perHost}`);
  }
} catch (err) {
  log(`failed: ${err?.stack ?? err}`);
  exitCode = 1;
} finally {
  killAll();
}

const base = rows[0] && Number.isFinite(rows[0].rate) ? rows[0].rate / rows[0].k : NaN;
const cores = availableParallelism();
const table = [
  '| hosts K | messages | msgs/s median (min–max) | × one host | efficiency (× / K) | machine CPU busy (of ' + cores + ' cores) | hosts\' CPU | emulator CPU | SQS calls / 1k msgs | dup | missing |',
  '|---|---|---|---|---|---|---|---|---|---|---|',
  ...rows.map((r) => {
    const x = r.rate / base;
    const calls = Object.entries(r.calls).filter(([, v]) => v >= 0.5).map(([op, v]) => `${op.replace('Message', '').replace('Batch', 'B').replace('ChangeVisibility', 'CMV')} ${v < 10 ? v.toFixed(1) : Math.round(v)}`).join(', ');
    return `| ${r.k} | ${f0(r.n)} | ${f0(r.rate)} (${f0(r.rateMin)}–${f0(r.rateMax)})${r.failed ? ` ⚠ ${r.failed} failed` : ''} | ${f2(x)} | ${f2(x / r.k)} | ${f2(r.busy)} | ${f2(r.hostCores)} | ${f2(r.emuCores)} | ${calls} | ${r.dup} | ${r.missing} |`;
  }),
].join('\n');
const churnText = churnResult
  ? [
      '',
      `Join/leave (${f0(churnResult.n)} messages, visibility timeout ${churnResult.visibilitySec} s, +${NET_MS} ms per call): ${churnResult.ok ? 'drained' : `FAILED: ${churnResult.error}`}; ` +
        `missing ${churnResult.missing} (left in the queue ${churnResult.left}, in the DLQ ${churnResult.dlq}); duplicates ${churnResult.dup} beyond the killed host's, ` +
        `${churnResult.dupExpected} redelivered after the killed host's visibility timeout; handled per host: ${churnResult.perHost}.`,
      '',
      ...churnResult.events.map((e) => `- ${e}`),
    ].join('\n')
  : '';
const totalSec = (hrNow() - startedAt) / 1000;
const md = [
  `# eventbus multi-host benchmark (${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC)`,
  '',
  `\`npm run bench -- --hosts ${KS.join(',')}\` — ${cores} cores (${machine()}), ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}, fauxqs 1.9.2; load average at start ${load0.map((x) => x.toFixed(2)).join(' ')}; took ${totalSec.toFixed(0)} s.`,
  `Each host: \`node dist/supervisor\`, concurrency ${C}, threads ${THREADS}, handler io (await 20 ms), +${NET_MS} ms on every SQS call; all hosts on one queue; msgs/s from the delete that left 80% of the backlog to the one that left it empty; median of ${RUNS} run(s).`,
  '',
  table,
  churnText,
  '',
].join('\n');
mkdirSync(dirname(OUT), { recursive: true });
writeFileSync(OUT, md);
process.stdout.write(`\n${md}\n`);
log(`written to ${relative(REPO, OUT)} in ${totalSec.toFixed(0)} s`);
const broken = rows.some((r) => r.dup || r.missing || r.failed) || (churnResult && (!churnResult.ok || churnResult.missing || churnResult.dup));
process.exit(broken ? 1 : exitCode);
