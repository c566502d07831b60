#!/usr/bin/env node
// `npm run bench`: eventbus's supervisor side by side with the best Node SQS consumers, on the same
// emulator, same preloaded queue shape, same handler logic, same cap on messages in flight.
// See BENCHMARKS.md for what is measured and how; `node bench/run.mjs --help` for the knobs.
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { closeSync, existsSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, totalmem } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CreateTopicCommand, PublishCommand, SubscribeCommand, UnsubscribeCommand } from '@aws-sdk/client-sns';
import { createQueues, deleteQueues, die, eventbusHandlersDir, harnessClients, killAll, log, sleep, startBenchEmulator, tempDir, tail, track, withTimeout } from './lib/harness.mjs';
import { cpuMs, mainThreadCpuMs, machine, machineCpu, memory, selfAndChildrenCpuMs } from './lib/proc.mjs';
import { median, percentile, min, max } from './lib/stats.mjs';
import { hrNow } from './lib/work.mjs';
import { cloudEvent, eventData, EVENT_TYPE, TOPIC, TOPIC_ARN } from './lib/messages.mjs';

const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
const REPO = dirname(BENCH_DIR);
const argv = process.argv.slice(2);

// `--hosts [K,...]`: the multi-host scale-out benchmark (bench/hosts.mjs), instead of the scenarios.
if (argv.includes('--hosts')) {
  await import('./hosts.mjs');
  await new Promise(() => undefined); // hosts.mjs exits by itself
}

if (argv.includes('--help') || argv.includes('-h')) {
  process.stdout.write(`usage: node bench/run.mjs [--smoke]   (npm run bench / npm run bench:smoke)
       node bench/run.mjs --hosts [1,2,4]   (npm run bench -- --hosts: scale-out; --hosts --help)

Environment:
  BENCH_SCENARIOS   comma-separated: noop,noop-steady,io,cpu,net-noop,net-io,latency (default: all); also: backlog
  BENCH_STEADY_N    messages of the steady-state noop drain (default 30000; 2000 with --smoke)
  BENCH_CONSUMERS   comma-separated: raw,sqs-consumer,sqs-consumer-batch,squiss-ts,eventbus (default: all)
  BENCH_N           messages of the noop drain (default 6000; 1000 with --smoke); the other scenarios
                    scale from it: io N/2, cpu N/10, net-noop and net-io N/3 (at least 200)
  BENCH_RUNS        interleaved runs per scenario (default 3; 1 with --smoke)
  BENCH_RAW_POLLERS poller counts the raw ceiling tries, best taken (default 3,5,8; 5 with --smoke)
  BENCH_LATENCY_SECS seconds of publishing per rate in the latency run (default 3; 1 with --smoke)
  BENCH_LATENCY_RATES events/s of the latency run (default 20,200)
  BENCH_LATENCY_WARMUP_SECS seconds of publishing at the highest rate before the latency is measured,
                    not counted (default 5; 0 with --smoke): latency of a warm supervisor
  BENCH_NET_MS      latency added to every consumer SQS call in the net-* scenarios (default 15)
  BENCH_WARMUP      fraction of each drain left out of msgs/s, CPU and calls (default 0.2: measured from
                    the delete that left 80% of the queue to the one that left it empty; 0 = whole drain)
  BENCH_EB_THREADS  eventbus 'threads' (default: the supervisor's default, usable cores)
  BENCH_EB_CONFIG   JSON merged into eventbus's config (e.g. '{"prefetch":0}'); not the baseline's
  BENCH_EB_BASELINE another checkout (built) to run as consumer eventbus-base beside eventbus: an
                    A/B in one interleaved run (add eventbus-base to BENCH_CONSUMERS)
  BENCH_EB_NODE_ARGS node flags for the supervisor's process (e.g. --trace-gc), space-separated
  BENCH_PROFILE=1   run eventbus under --cpu-prof (profiles in bench/results/profiles)
  BENCH_OUT         markdown output (default bench/results/latest.md; smoke.md with --smoke)
  BENCH_KEEP=1      keep the temporary folder (configs, handled ids, consumer logs)
`);
  process.exit(0);
}

const smoke = argv.includes('--smoke');
const env = process.env;
// The SDK warns once per process that its 2027 releases need Node 22: noise in every consumer log.
env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const list = (v, dflt) => (v ? v.split(',').map((s) => s.trim()).filter(Boolean) : dflt);

const N = Number(env.BENCH_N ?? (smoke ? 1000 : 6000));
const RUNS = Number(env.BENCH_RUNS ?? (smoke ? 1 : 3));
const RAW_POLLERS = list(env.BENCH_RAW_POLLERS, smoke ? ['5'] : ['3', '5', '8']).map(Number);
const LATENCY_SECS = Number(env.BENCH_LATENCY_SECS ?? (smoke ? 1 : 3));
const LATENCY_RATES = list(env.BENCH_LATENCY_RATES, ['20', '200']).map(Number);
const LATENCY_WARMUP_SECS = Number(env.BENCH_LATENCY_WARMUP_SECS ?? (smoke ? 0 : 5));
const NET_MS = Number(env.BENCH_NET_MS ?? 15);
const WARMUP = Number(env.BENCH_WARMUP ?? 0.2);
if (!(WARMUP >= 0 && WARMUP < 1)) die('BENCH_WARMUP must be in [0, 1)');
const OUT = env.BENCH_OUT ?? join(BENCH_DIR, 'results', smoke ? 'smoke.md' : 'latest.md');
const scaled = (f) => Math.max(200, Math.round(N * f));

const SCENARIOS = {
  noop: { handler: 'noop', cap: 50, n: N, netMs: 0, title: 'noop, C=50' },
  'noop-steady': { handler: 'noop', cap: 50, n: Number(env.BENCH_STEADY_N ?? (smoke ? 2000 : 30_000)), netMs: 0, title: 'noop steady state, C=50', calibrateLike: 'noop' },
  io: { handler: 'io', cap: 50, n: scaled(0.5), netMs: 0, title: 'io (20 ms), C=50' },
  cpu: { handler: 'cpu', cap: 10, n: scaled(0.1), netMs: 0, title: 'cpu (4 ms), C=10' },
  'net-noop': { handler: 'noop', cap: 50, n: scaled(1 / 3), netMs: NET_MS, title: `noop, C=50, +${NET_MS} ms/call` },
  'net-io': { handler: 'io', cap: 50, n: scaled(1 / 3), netMs: NET_MS, title: `io (20 ms), C=50, +${NET_MS} ms/call` },
  latency: { handler: 'noop', cap: 50, latency: true, title: 'latency (SNS publish to handler start), noop, C=50' },
  backlog: { handler: 'noop', cap: 50, n: 100_000, netMs: 0, title: 'backlog of 100,000, noop, C=50', only: ['raw', 'eventbus'], runs: 1 },
};
const DEFAULT_SCENARIOS = ['noop', 'noop-steady', 'io', 'cpu', 'net-noop', 'net-io', 'latency'];
const scenarioNames = list(env.BENCH_SCENARIOS, DEFAULT_SCENARIOS);
for (const s of scenarioNames) if (!SCENARIOS[s]) die(`unknown scenario ${s} (known: ${Object.keys(SCENARIOS).join(', ')})`);

const CONSUMERS = {
  raw: { label: 'raw ceiling', file: 'raw.mjs' },
  'sqs-consumer': { label: 'sqs-consumer handleMessage', file: 'sqs-consumer.mjs', env: { BENCH_SQSC_MODE: 'message' }, peer: true },
  'sqs-consumer-batch': { label: 'sqs-consumer handleMessageBatch', file: 'sqs-consumer.mjs', env: { BENCH_SQSC_MODE: 'batch' }, peer: true },
  'squiss-ts': { label: 'squiss-ts', file: 'squiss.mjs', peer: true },
  eventbus: { label: '**eventbus**', eventbus: true },
  // A/B in one interleaved run: another checkout's build (e.g. a git worktree of main).
  ...(env.BENCH_EB_BASELINE ? { 'eventbus-base': { label: `eventbus baseline (${env.BENCH_EB_BASELINE})`, eventbus: true, repo: env.BENCH_EB_BASELINE } } : {}),
};
const consumerNames = list(env.BENCH_CONSUMERS, Object.keys(CONSUMERS));
for (const c of consumerNames) if (!CONSUMERS[c]) die(`unknown consumer ${c} (known: ${Object.keys(CONSUMERS).join(', ')})`);
if (consumerNames.includes('eventbus') && !existsSync(join(REPO, 'dist', 'supervisor', 'index.js'))) {
  die('dist/supervisor is missing: run npm run build (npm run bench does)');
}
if (consumerNames.includes('eventbus-base') && !existsSync(join(env.BENCH_EB_BASELINE, 'dist', 'supervisor', 'index.js'))) {
  die(`BENCH_EB_BASELINE: ${env.BENCH_EB_BASELINE}/dist/supervisor is missing: build that checkout first`);
}
let EB_CONFIG = {};
try {
  EB_CONFIG = JSON.parse(env.BENCH_EB_CONFIG ?? '{}');
} catch (err) {
  die(`BENCH_EB_CONFIG must be a JSON object: ${err.message}`);
}

const TMP = tempDir('eventbus-bench-');

// The emulator (its own process) and the harness's clients, set in main().
let emu;
let endpoint;
let sqs;
let sns;
let queueSeq = 0;
const newQueues = () => createQueues(sqs, `b${++queueSeq}-`);

/** SendMessageBatch straight to the queue, run by the emulator process itself. Returns the event ids. */
async function preload(q, n) {
  const m = await emu.call('preload', 'preloaded', { queueUrl: q.url, n });
  if (m.error) throw new Error(`preload: ${m.error}`);
  return m.ids;
}

// ---------------------------------------------------------------------------------------------
// Consumers.
let handlersDir;

let spawnSeq = 0;
/** Starts one consumer process for queue q. Returns { child, pid, exited, logFile, idsDir }. */
function startConsumer(name, scenario, q, extra = {}) {
  const spec = CONSUMERS[name];
  const dir = join(TMP, `run-${++spawnSeq}-${name}`);
  const idsDir = join(dir, 'ids');
  mkdirSync(idsDir, { recursive: true });
  const logFile = join(dir, 'consumer.log');
  const fd = openSync(logFile, 'a');
  const childEnv = {
    ...env,
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    AWS_REGION: 'us-east-1',
    AWS_EC2_METADATA_DISABLED: 'true',
    BENCH_ENDPOINT: endpoint,
    BENCH_QUEUE_URL: q.url,
    BENCH_HANDLER: scenario.handler,
    BENCH_C: String(scenario.cap),
    BENCH_IDS_DIR: idsDir,
    ...(spec.env ?? {}),
    ...extra,
  };
  delete childEnv.AWS_PROFILE;
  delete childEnv.NODE_OPTIONS;
  let args;
  if (spec.eventbus) {
    const config = {
      endpoint,
      region: 'us-east-1',
      topic: TOPIC,
      queuePrefix: q.prefix,
      handlersDir: (handlersDir ??= eventbusHandlersDir(TMP)),
      provision: false,
      concurrency: scenario.cap,
      ...(env.BENCH_EB_THREADS ? { threads: Number(env.BENCH_EB_THREADS) } : {}),
      http: { host: '127.0.0.1', port: 0 },
      logLevel: 'warn',
      failureEvents: { enabled: false },
      ...(spec.repo ? {} : EB_CONFIG),
    };
    const cfgFile = join(dir, 'eventbus.json');
    writeFileSync(cfgFile, JSON.stringify(config, null, 2));
    childEnv.EVENTBUS_LOG_FORMAT = 'json';
    childEnv.BENCH_EB_QUEUE = 'q';
    const prof = env.BENCH_PROFILE === '1' ? ['--cpu-prof', `--cpu-prof-dir=${join(BENCH_DIR, 'results', 'profiles')}`] : [];
    const nodeArgs = env.BENCH_EB_NODE_ARGS ? env.BENCH_EB_NODE_ARGS.split(/\s+/).filter(Boolean) : [];
    args = [...prof, ...nodeArgs, join(spec.repo ?? REPO, 'dist', 'supervisor'), '--config', cfgFile];
  } else {
    args = [join(BENCH_DIR, 'consumers', spec.file)];
  }
  const spawnedAt = hrNow();
  const child = track(spawn(process.execPath, args, { cwd: REPO, env: childEnv, stdio: ['ignore', fd, fd] }));
  closeSync(fd);
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal, at: hrNow() })));
  return { child, pid: child.pid, exited, logFile, idsDir, spawnedAt };
}

/** SIGTERM, then SIGKILL after `graceMs`. Returns { code, signal, shutdownMs, killed }. */
async function stopConsumer(c, graceMs = 30_000) {
  const t0 = hrNow();
  if (c.child.exitCode === null && c.child.signalCode === null) c.child.kill('SIGTERM');
  let killed = false;
  const r = await Promise.race([c.exited, sleep(graceMs).then(() => null)]);
  if (r) return { ...r, shutdownMs: r.at - t0, killed };
  killed = true;
  c.child.kill('SIGKILL');
  const r2 = await c.exited;
  return { ...r2, shutdownMs: r2.at - t0, killed };
}

/** Every handled line of a consumer: [{ id, lat }]. */
function readHandled(idsDir) {
  const out = [];
  for (const f of readdirSync(idsDir)) {
    for (const line of readFileSync(join(idsDir, f), 'utf8').split('\n')) {
      if (!line) continue;
      const sp = line.indexOf(' ');
      out.push(sp < 0 ? { id: line, lat: NaN } : { id: line.slice(0, sp), lat: Number(line.slice(sp + 1)) });
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// One drain: fresh queue, preload n, start the consumer, measure from its first ReceiveMessage to the
// delete that left the queue empty, stop it, check what it handled.
async function drain(name, scenario, n, extra = {}) {
  const q = await newQueues();
  const t0 = hrNow();
  const ids = await preload(q, n);
  const preloadMs = hrNow() - t0;
  const markDepth = WARMUP > 0 ? Math.floor(n * (1 - WARMUP)) : -1;
  const winId = await emu.openWindow({ queueName: q.name, latencyMs: scenario.netMs, drainCheck: true, markDepth });
  const firstP = once(emu.events, `first:${winId}`);
  const markP = once(emu.events, `mark:${winId}`);
  const drainedP = once(emu.events, `drained:${winId}`);
  const c = startConsumer(name, scenario, q, extra);
  const result = { consumer: name, n, preloadMs, ok: false, error: null, log: c.logFile };
  const exitedEarly = c.exited.then((r) => {
    throw new Error(`consumer exited early (code ${r.code}, signal ${r.signal})`);
  });
  exitedEarly.catch(() => undefined);
  let stall;
  let sampler;
  const rssSamples = [];
  try {
    const [first] = await Promise.race([withTimeout(firstP, 60_000, 'no ReceiveMessage'), exitedEarly]);
    // Start-up: process spawned to its first ReceiveMessage (both on the monotonic clock).
    result.startMs = first.t - c.spawnedAt;
    const cpu0 = cpuMs(c.pid);
    let mainMark = mainThreadCpuMs(c.pid);
    sampler = setInterval(() => rssSamples.push(memory(c.pid)?.rssMB ?? NaN), 250);
    // Stall detection: fail when the depth has not moved for 20 s; at most 180 s per drain.
    let lastDepth = -1;
    let lastMove = hrNow();
    const stalled = new Promise((_, reject) => {
      stall = setInterval(async () => {
        const { depth } = await emu.call('depth', 'depth', { queueName: q.name }).catch(() => ({ depth: -2 }));
        if (depth !== lastDepth) {
          lastDepth = depth;
          lastMove = hrNow();
        } else if (hrNow() - lastMove > 20_000) reject(new Error(`stalled at depth ${depth}`));
        if (hrNow() - first.t > 180_000) reject(new Error('drain took over 180 s'));
      }, 1000);
    });
    let cpuMark = cpu0;
    let mark = { t: first.t, remaining: n };
    if (WARMUP > 0) {
      [mark] = await Promise.race([markP, exitedEarly, stalled]);
      cpuMark = cpuMs(c.pid);
      mainMark = mainThreadCpuMs(c.pid);
    }
    const [drained] = await Promise.race([drainedP, exitedEarly, stalled]);
    const cpu1 = cpuMs(c.pid);
    const main1 = mainThreadCpuMs(c.pid);
    const mem = memory(c.pid);
    clearInterval(stall);
    clearInterval(sampler);
    rssSamples.push(mem?.rssMB ?? NaN);
    result.rssSamples = rssSamples;
    const { window: w } = await emu.call('close', 'closed');
    // Whole drain: first receive to empty. Measured (steady) window: from the warm-up mark to empty.
    result.wholeMs = drained.t - first.t;
    result.wholeRate = (n * 1000) / result.wholeMs;
    result.wholeCpuPer1k = cpu0 !== null && cpu1 !== null ? ((cpu1 - cpu0) * 1000) / n : NaN;
    const m = WARMUP > 0 ? mark.remaining : n; // messages deleted in the measured window
    result.measured = m;
    result.elapsedMs = drained.t - mark.t;
    result.rate = (m * 1000) / result.elapsedMs;
    result.cpuPer1k = cpuMark !== null && cpu1 !== null ? ((cpu1 - cpuMark) * 1000) / m : NaN;
    result.mainCpuPer1k = mainMark !== null && main1 !== null ? ((main1 - mainMark) * 1000) / m : NaN;
    result.rssMB = mem?.hwmMB ?? NaN;
    const callsFrom = WARMUP > 0 ? w.callsAtMark : {};
    result.calls = Object.fromEntries(Object.entries(w.callsAtDrain).map(([op, k]) => [op, k - (callsFrom[op] ?? 0)]));
    result.callsPer1k = (Object.values(result.calls).reduce((a, b) => a + b, 0) * 1000) / m;
    result.emptyPer1k = ((w.emptyAtDrain - (WARMUP > 0 ? w.emptyAtMark : 0)) * 1000) / m;
    const emuFrom = WARMUP > 0 ? w.cpuAtMark : w.cpuAtFirst;
    result.emuCpuPer1k =
      emuFrom && w.cpuAtDrain ? ((w.cpuAtDrain.user + w.cpuAtDrain.system - emuFrom.user - emuFrom.system) / 1000) * (1000 / m) : NaN;
    result.ok = true;
  } catch (err) {
    clearInterval(stall);
    clearInterval(sampler);
    result.error = err.message;
    await emu.call('close', 'closed').catch(() => undefined);
  }
  // Stop the consumer: each flushes its handled ids at SIGTERM (a SIGKILL would show up as missing).
  const stop = await stopConsumer(c);
  result.shutdownMs = stop.shutdownMs;
  result.exit = stop.killed ? 'SIGKILL' : stop.signal ? stop.signal : `exit ${stop.code}`;
  const handled = readHandled(c.idsDir);
  const expected = new Set(ids);
  const seen = new Set();
  let dup = 0;
  let unknown = 0;
  for (const h of handled) {
    if (!expected.has(h.id)) unknown++;
    else if (seen.has(h.id)) dup++;
    else seen.add(h.id);
  }
  result.handled = handled.length;
  result.dup = dup;
  result.missing = n - seen.size;
  result.unknown = unknown;
  const { depth } = await emu.call('depth', 'depth', { queueName: q.name });
  result.leftInQueue = depth;
  await deleteQueues(sqs, q);
  if (!result.ok || result.dup || result.missing || result.unknown) {
    log(`  ${name}: ${result.error ?? 'incorrect'} (dup ${dup}, missing ${result.missing}, unknown ${unknown}); log tail:\n${tail(c.logFile)}`);
  }
  return result;
}

// ---------------------------------------------------------------------------------------------
// Scenario runs.
const results = {}; // scenario -> consumer -> [drain results]
const calibration = {}; // scenario -> [{ pollers, rate }]
const rawPollers = {}; // scenario -> best count

function fmtRate(r) {
  return r.ok ? `${Math.round(r.rate)}/s` : `FAILED (${r.error})`;
}

/** CPU that processes other than the harness, its children and the emulator used since `from`, in cores. */
function backgroundMark() {
  return { t: hrNow(), machine: machineCpu(), self: selfAndChildrenCpuMs(), emu: cpuMs(emu.pid) };
}
function backgroundCores(from) {
  const to = backgroundMark();
  if (!from.machine || !to.machine || from.self === null || to.self === null || from.emu === null || to.emu === null) return NaN;
  return (to.machine.busy - from.machine.busy - (to.self - from.self) - (to.emu - from.emu)) / (to.t - from.t);
}
const background = {}; // scenario -> cores used by other processes

async function runDrainScenario(sname) {
  const bg0 = backgroundMark();
  const scenario = SCENARIOS[sname];
  const names = consumerNames.filter((c) => !scenario.only || scenario.only.includes(c));
  const runs = scenario.runs ?? RUNS;
  results[sname] = Object.fromEntries(names.map((c) => [c, []]));
  log(`scenario ${sname}: ${scenario.title}, N=${scenario.n}, ${runs} run(s), consumers ${names.join(', ')}`);
  if (names.includes('raw')) {
    if (scenario.calibrateLike && rawPollers[scenario.calibrateLike]) {
      rawPollers[sname] = rawPollers[scenario.calibrateLike]; // the same load: the count found there
    } else if (RAW_POLLERS.length > 1) {
      const nCal = Math.max(200, Math.round(scenario.n / 3));
      calibration[sname] = [];
      for (const p of RAW_POLLERS) {
        const r = await drain('raw', scenario, nCal, { BENCH_POLLERS: String(p) });
        calibration[sname].push({ pollers: p, rate: r.ok && !r.dup && !r.missing ? r.rate : NaN });
        log(`  raw calibration: ${p} poller(s): ${fmtRate(r)}`);
      }
      const best = calibration[sname].reduce((a, b) => (Number.isFinite(b.rate) && !(b.rate <= a.rate) ? b : a));
      rawPollers[sname] = best.pollers;
    } else rawPollers[sname] = RAW_POLLERS[0];
  }
  for (let run = 0; run < runs; run++) {
    const order = names.map((_, i) => names[(i + run) % names.length]);
    for (const name of order) {
      const extra = name === 'raw' ? { BENCH_POLLERS: String(rawPollers[sname]) } : {};
      const r = await drain(name, scenario, scenario.n, extra);
      results[sname][name].push(r);
      log(
        `  run ${run + 1}/${runs} ${name}: ${fmtRate(r)}${r.ok ? ` (whole drain ${Math.round(r.wholeRate)}/s)` : ''}` +
          (r.ok ? `, cpu ${r.cpuPer1k.toFixed(0)} ms/1k, rss ${r.rssMB.toFixed(0)} MB, calls ${r.callsPer1k.toFixed(0)}/1k` : '') +
          `, dup ${r.dup}, missing ${r.missing}, stop ${Math.round(r.shutdownMs)} ms (${r.exit})`,
      );
    }
  }
  background[sname] = backgroundCores(bg0);
  log(`  other processes on the machine: ${background[sname].toFixed(2)} cores on average during ${sname}`);
}

// Latency: the consumer runs on an empty queue subscribed to the topic; events are published through SNS
// at each rate; each handler records now - sentAt at its start.
const latency = {}; // consumer -> rate -> { lats, missing, dup }
async function runLatency() {
  const bg0 = backgroundMark();
  const scenario = SCENARIOS.latency;
  log(`scenario latency: ${LATENCY_RATES.join(' and ')} events/s for ${LATENCY_SECS} s each, consumers ${consumerNames.join(', ')}`);
  for (const name of consumerNames) {
    const q = await newQueues();
    const sub = await sns.send(new SubscribeCommand({ TopicArn: TOPIC_ARN, Protocol: 'sqs', Endpoint: q.arn }));
    const winId = await emu.openWindow({ queueName: q.name, latencyMs: 0, drainCheck: false });
    const extra = name === 'raw' ? { BENCH_POLLERS: String(rawPollers.noop ?? (RAW_POLLERS.length === 1 ? RAW_POLLERS[0] : 4)) } : {};
    const firstP = once(emu.events, `first:${winId}`);
    const c = startConsumer(name, scenario, q, extra);
    const sentIds = new Map(); // id -> rate
    latency[name] = {};
    let error = null;
    try {
      await Promise.race([
        withTimeout(firstP, 60_000, 'no ReceiveMessage'),
        c.exited.then(() => Promise.reject(new Error('consumer exited early'))),
      ]);
      await sleep(1000); // every lane polling
      const publishAt = async (rate, secs, record) => {
        const count = Math.max(1, Math.round(rate * secs));
        const interval = 1000 / rate;
        const start = hrNow();
        const pending = [];
        for (let i = 0; i < count; i++) {
          const due = start + i * interval;
          const wait = due - hrNow();
          if (wait > 1) await sleep(wait);
          const id = randomUUID();
          if (record) sentIds.set(id, rate);
          // sentAt: stamped by the emulator when the Publish arrives (see fauxqs-server.mjs).
          const message = cloudEvent(id, { ...eventData(i), sentAt: -1, rate });
          pending.push(
            sns.send(
              new PublishCommand({
                TopicArn: TOPIC_ARN,
                Message: message,
                MessageAttributes: { 'event-type': { DataType: 'String', StringValue: EVENT_TYPE } },
              }),
            ),
          );
        }
        await Promise.all(pending);
        await sleep(500);
      };
      // Warm-up, not measured: a supervisor runs for days, so its latency is measured JIT-warm.
      if (LATENCY_WARMUP_SECS > 0) await publishAt(Math.max(...LATENCY_RATES), LATENCY_WARMUP_SECS, false);
      for (const rate of LATENCY_RATES) await publishAt(rate, LATENCY_SECS, true);
      // Wait for the queue to empty (at most 15 s).
      const until = hrNow() + 15_000;
      while (hrNow() < until) {
        const { depth } = await emu.call('depth', 'depth', { queueName: q.name });
        if (depth === 0) break;
        await sleep(100);
      }
    } catch (err) {
      error = err.message;
    }
    const closed = await emu.call('close', 'closed').catch(() => null);
    await stopConsumer(c);
    const handled = readHandled(c.idsDir);
    const calls = closed?.window ? Object.values(closed.window.calls).reduce((a, b) => a + b, 0) : NaN;
    latency[name].callsPerEvent = calls / sentIds.size;
    latency[name].emptyPerEvent = (closed?.window?.emptyReceives ?? NaN) / sentIds.size;
    for (const rate of LATENCY_RATES) latency[name][rate] = { lats: [], dup: 0, missing: 0, sent: 0, error };
    const seen = new Set();
    for (const h of handled) {
      const rate = sentIds.get(h.id);
      if (rate === undefined) continue;
      if (seen.has(h.id)) latency[name][rate].dup++;
      else {
        seen.add(h.id);
        latency[name][rate].lats.push(h.lat);
      }
    }
    for (const [id, rate] of sentIds) {
      latency[name][rate].sent++;
      if (!seen.has(id)) latency[name][rate].missing++;
    }
    for (const rate of LATENCY_RATES) {
      const L = latency[name][rate];
      log(
        `  ${name} @${rate}/s: p50 ${percentile(L.lats, 50).toFixed(1)} ms, p95 ${percentile(L.lats, 95).toFixed(1)}, p99 ${percentile(L.lats, 99).toFixed(1)}` +
          `, n ${L.lats.length}, dup ${L.dup}, missing ${L.missing}${error ? `, ERROR ${error}` : ''}`,
      );
    }
    if (error) log(`  ${name} log tail:\n${tail(c.logFile)}`);
    await sns.send(new UnsubscribeCommand({ SubscriptionArn: sub.SubscriptionArn })).catch(() => undefined);
    await deleteQueues(sqs, q);
  }
  background.latency = backgroundCores(bg0);
  log(`  other processes on the machine: ${background.latency.toFixed(2)} cores on average during latency`);
}

// ---------------------------------------------------------------------------------------------
// Report.
const f0 = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : '–');
const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : '–');
const f2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : '–');

function summarize(runs) {
  const good = runs.filter((r) => r.ok);
  return {
    rate: median(good.map((r) => r.rate)),
    rateMin: min(good.map((r) => r.rate)),
    rateMax: max(good.map((r) => r.rate)),
    cpu: median(good.map((r) => r.cpuPer1k)),
    rss: max(good.map((r) => r.rssMB)),
    calls: median(good.map((r) => r.callsPer1k)),
    empty: median(good.map((r) => r.emptyPer1k)),
    emuCpu: median(good.map((r) => r.emuCpuPer1k)),
    mainCpu: median(good.map((r) => r.mainCpuPer1k)),
    wholeRate: median(good.map((r) => r.wholeRate)),
    wholeCpu: median(good.map((r) => r.wholeCpuPer1k)),
    dup: runs.reduce((a, r) => a + r.dup, 0),
    missing: runs.reduce((a, r) => a + r.missing, 0),
    failed: runs.filter((r) => !r.ok).length,
    errors: [...new Set(runs.filter((r) => !r.ok).map((r) => r.error))],
    shutdown: median(runs.map((r) => r.shutdownMs)),
    startMs: runs.map((r) => r.startMs).filter(Number.isFinite),
    ops: opsMedian(good),
    n: runs[0]?.n,
    runs: runs.length,
  };
}

function opsMedian(runs) {
  const names = new Set(runs.flatMap((r) => Object.keys(r.calls ?? {})));
  return Object.fromEntries([...names].sort().map((op) => [op, median(runs.map((r) => ((r.calls?.[op] ?? 0) * 1000) / r.measured))]));
}

const SHORT_OPS = {
  ReceiveMessage: 'Rcv',
  DeleteMessage: 'Del',
  DeleteMessageBatch: 'DelB',
  ChangeMessageVisibility: 'CMV',
  ChangeMessageVisibilityBatch: 'CMVB',
  GetQueueAttributes: 'GQA',
  GetQueueUrl: 'GQU',
};

function report() {
  const out = [];
  const summaries = {};
  out.push('| scenario | consumer | msgs/s median (min–max) | × raw | × best peer | CPU ms / 1k msgs (× raw) | peak RSS MB | SQS calls / 1k msgs (× raw) | dup | missing |');
  out.push('|---|---|---|---|---|---|---|---|---|---|');
  for (const sname of scenarioNames) {
    if (!results[sname]) continue;
    const S = (summaries[sname] = Object.fromEntries(Object.entries(results[sname]).map(([c, runs]) => [c, summarize(runs)])));
    const raw = S.raw;
    const peers = Object.entries(S).filter(([c]) => CONSUMERS[c].peer);
    const bestPeer = peers.length ? Math.max(...peers.map(([, s]) => s.rate).filter(Number.isFinite)) : NaN;
    let firstRow = true;
    for (const [c, s] of Object.entries(S)) {
      const label = CONSUMERS[c].label + (c === 'raw' && rawPollers[sname] ? ` (${rawPollers[sname]} pollers)` : '');
      const rateCell = s.failed === s.runs ? `FAILED: ${s.errors.join('; ')}` : `${f0(s.rate)} (${f0(s.rateMin)}–${f0(s.rateMax)})${s.failed ? ` ⚠ ${s.failed} run(s) failed: ${s.errors.join('; ')}` : ''}`;
      out.push(
        `| ${firstRow ? `${sname} (N=${s.n.toLocaleString('en-US')}${Number.isFinite(background[sname]) ? `; others ${f2(background[sname])} cores` : ''})` : ''} | ${label} | ${rateCell} | ${raw ? f2(s.rate / raw.rate) : '–'} | ${f2(s.rate / bestPeer)} | ${f0(s.cpu)}${raw ? ` (${f2(s.cpu / raw.cpu)})` : ''} | ${f0(s.rss)} | ${f0(s.calls)}${raw ? ` (${f2(s.calls / raw.calls)})` : ''} | ${s.dup ? `**${s.dup}**` : 0} | ${s.missing ? `**${s.missing}**` : 0} |`,
      );
      firstRow = false;
    }
  }
  const main = out.join('\n');

  const lat = [];
  if (Object.keys(latency).length) {
    lat.push('| consumer | events/s | p50 ms | p95 ms | p99 ms | max ms | handled | dup | missing | SQS calls / event (empty receives) |');
    lat.push('|---|---|---|---|---|---|---|---|---|---|');
    for (const [c, byRate] of Object.entries(latency)) {
      LATENCY_RATES.forEach((rate, i) => {
        const L = byRate[rate];
        lat.push(
          `| ${i === 0 ? CONSUMERS[c].label : ''} | ${rate} | ${f1(percentile(L.lats, 50))} | ${f1(percentile(L.lats, 95))} | ${f1(percentile(L.lats, 99))} | ${f1(max(L.lats))} | ${L.lats.length}/${L.sent} | ${L.dup} | ${L.missing}${L.error ? ` (error: ${L.error})` : ''} | ${i === 0 ? `${f1(byRate.callsPerEvent)} (${f1(byRate.emptyPerEvent)})` : ''} |`,
        );
      });
    }
  }

  const detail = [
    '| scenario | consumer | whole drain msgs/s | whole drain CPU ms / 1k | main thread CPU ms / 1k (measured window) | calls / 1k msgs by operation | empty receives / 1k | emulator CPU ms / 1k | SIGTERM to exit ms |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  for (const [sname, S] of Object.entries(summaries)) {
    for (const [c, s] of Object.entries(S)) {
      const ops = Object.entries(s.ops)
        .map(([op, v]) => `${SHORT_OPS[op] ?? op} ${v < 10 ? v.toFixed(1) : Math.round(v)}`)
        .join(', ');
      detail.push(`| ${sname} | ${CONSUMERS[c].label} | ${f0(s.wholeRate)} | ${f0(s.wholeCpu)} | ${f0(s.mainCpu)} | ${ops} | ${f0(s.empty)} | ${f0(s.emuCpu)} | ${f0(s.shutdown)} |`);
    }
  }
  const rssCurve = [];
  for (const [sname, byConsumer] of Object.entries(results)) {
    if (sname !== 'backlog') continue;
    rssCurve.push('| consumer | RSS MB at 10% / 25% / 50% / 75% / 100% of the drain | peak |', '|---|---|---|');
    for (const [c, runs] of Object.entries(byConsumer)) {
      const r = runs.find((x) => x.ok && x.rssSamples?.length);
      if (!r) continue;
      const at = (f) => r.rssSamples[Math.min(r.rssSamples.length - 1, Math.floor(f * (r.rssSamples.length - 1)))];
      rssCurve.push(`| ${CONSUMERS[c].label} | ${[0.1, 0.25, 0.5, 0.75, 1].map((f) => f0(at(f))).join(' / ')} | ${f0(r.rssMB)} |`);
    }
  }
  const calib = Object.entries(calibration).map(
    ([s, cs]) => `- ${s}: ${cs.map((c) => `${c.pollers} → ${f0(c.rate)}/s`).join(', ')} (best: ${rawPollers[s]})`,
  );
  return { main, lat: lat.join('\n'), detail: detail.join('\n'), calib, rssCurve: rssCurve.join('\n'), summaries, targets: targets(summaries) };
}

/** Issue 12's targets, checked for eventbus where this run has the figures. */
function targets(S) {
  const t = [];
  const eb = (s) => S[s]?.eventbus;
  const bestPeer = (s) => Math.max(...Object.entries(S[s] ?? {}).filter(([c]) => CONSUMERS[c].peer).map(([, x]) => x.rate).filter(Number.isFinite));
  const check = (name, value, goal, ok) => t.push(`- ${ok ? '✅' : '❌'} ${name}: ${value} (target ${goal})`);
  for (const s of ['noop', 'noop-steady']) {
    if (eb(s) && S[s].raw) {
      check(`${s} msgs/s vs raw ceiling`, `${f2(eb(s).rate / S[s].raw.rate)}×`, '≥ 0.90× (steady state)', eb(s).rate / S[s].raw.rate >= 0.9);
      check(`${s} CPU / 1k vs raw ceiling`, `${f2(eb(s).cpu / S[s].raw.cpu)}×`, '≤ 1.25×', eb(s).cpu / S[s].raw.cpu <= 1.25);
    }
    if (eb(s) && Number.isFinite(bestPeer(s))) {
      check(`${s} msgs/s vs best peer`, `${f2(eb(s).rate / bestPeer(s))}×`, '≥ 1.00×', eb(s).rate / bestPeer(s) >= 1.0);
    }
  }
  if (eb('io')) check('io msgs/s (0.9 × C / 20 ms)', f0(eb('io').rate), '≥ 2,250', eb('io').rate >= 2250);
  if (eb('net-io')) check(`io with +${NET_MS} ms per SQS call`, f0(eb('net-io').rate), '≥ 2,000', eb('net-io').rate >= 2000);
  if (eb('net-noop') && Number.isFinite(bestPeer('net-noop'))) {
    check(`noop with +${NET_MS} ms per SQS call vs best peer`, `${f2(eb('net-noop').rate / bestPeer('net-noop'))}×`, '≥ 1.50×', eb('net-noop').rate / bestPeer('net-noop') >= 1.5);
  }
  if (eb('cpu') && Number.isFinite(bestPeer('cpu'))) {
    check('cpu msgs/s vs best (single-threaded) peer', `${f2(eb('cpu').rate / bestPeer('cpu'))}×`, '≥ 1.50×', eb('cpu').rate / bestPeer('cpu') >= 1.5);
  }
  const hi = Math.max(...LATENCY_RATES);
  if (latency.eventbus?.[hi]) {
    const p99 = (c) => percentile(latency[c][hi].lats, 99);
    const peers = Object.keys(latency).filter((c) => CONSUMERS[c].peer);
    if (peers.length) {
      const best = Math.min(...peers.map(p99).filter(Number.isFinite));
      check(`p99 latency at ${hi}/s, warm, vs best peer's p99 + 2 ms`, `${f1(p99('eventbus'))} ms`, `≤ ${f1(best + 2)} ms`, p99('eventbus') <= best + 2);
    }
  }
  const starts = startUps(S).eventbus;
  if (starts?.length) check('start-up to the first ReceiveMessage (median of every drain)', `${f0(median(starts))} ms`, '≤ 300 ms', median(starts) <= 300);
  if (S.backlog?.eventbus) {
    const r = results.backlog.eventbus.find((x) => x.ok && x.rssSamples?.length > 8);
    if (r) {
      const q = r.rssSamples.filter(Number.isFinite);
      // Sampled in time at an even drain rate: the middle sample is about 50,000 messages in.
      const mid = q[Math.floor(q.length / 2)];
      const peak = max(q.slice(Math.floor(q.length / 2)));
      check('backlog RSS from half-way (≈50k messages) to the end: highest vs half-way', `${f0(mid)} → ${f0(peak)} MB`, 'within 10 %', (peak - mid) / mid <= 0.1);
    }
  }
  for (const [s, x] of Object.entries(S)) {
    for (const [c, y] of Object.entries(x)) {
      if (y.dup || y.missing || y.failed) t.push(`- ❌ ${s} / ${CONSUMERS[c].label}: dup ${y.dup}, missing ${y.missing}, failed runs ${y.failed}`);
    }
  }
  return t;
}

/** Every drain's start-up (spawn to first ReceiveMessage), per consumer, across the scenarios without added network delay. */
function startUps(S) {
  const out = {};
  for (const [s, x] of Object.entries(S)) {
    if (SCENARIOS[s].netMs) continue;
    for (const [c, y] of Object.entries(x)) (out[c] ??= []).push(...y.startMs);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
const startedAt = hrNow();
const load0 = loadavg();
const machine0 = machineCpu();
const self0 = selfAndChildrenCpuMs();
let exitCode = 0;
try {
  emu = await startBenchEmulator();
  endpoint = emu.endpoint;
  ({ sqs, sns } = harnessClients(endpoint));
  await sns.send(new CreateTopicCommand({ Name: TOPIC }));
  log(`fauxqs on ${endpoint} (pid ${emu.pid}); temp ${TMP}`);
  for (const s of scenarioNames) {
    if (SCENARIOS[s].latency) await runLatency();
    else await runDrainScenario(s);
  }
} catch (err) {
  log(`failed: ${err?.stack ?? err}`);
  exitCode = 1;
} finally {
  killAll();
}

const totalSec = (hrNow() - startedAt) / 1000;
// Other work on the machine during the run: machine-wide busy CPU minus the harness and its children.
await sleep(100); // the last children reaped
const machine1 = machineCpu();
const self1 = selfAndChildrenCpuMs();
const otherCores =
  machine0 && machine1 && self0 !== null && self1 !== null ? (machine1.busy - machine0.busy - (self1 - self0)) / (totalSec * 1000) : NaN;
const rep = report();
const cmd = smoke ? 'npm run bench:smoke' : 'npm run bench';
const envUsed = Object.entries(env)
  .filter(([k]) => k.startsWith('BENCH_'))
  .map(([k, v]) => `${k}=${v}`)
  .join(' ');
const md = [
  `# eventbus benchmark (${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC)`,
  '',
  `\`${envUsed ? `${envUsed} ` : ''}${cmd}\` — ${availableParallelism()} cores (${machine()}), ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Node ${process.version}, fauxqs 1.9.2; load average at start ${load0.map((x) => x.toFixed(2)).join(' ')}; other processes used ${Number.isFinite(otherCores) ? otherCores.toFixed(2) : '?'} cores on average during the run (per scenario in the first column: the figures swing with it); took ${totalSec.toFixed(0)} s.`,
  '',
  WARMUP > 0
    ? `Drain msgs/s: from the delete that left ${Math.round((1 - WARMUP) * 100)}% of the preloaded queue (start-up and JIT warm-up left out) to the delete that left it empty; median of ${RUNS} interleaved run(s); the whole drain from the first ReceiveMessage is in the details. CPU: the consumer process (all threads), SQS calls: every call the consumer made, both over the same window. RSS: peak (VmHWM) of the consumer process.`
    : `Drain msgs/s: from the consumer's first ReceiveMessage to the delete that left the queue empty; median of ${RUNS} interleaved run(s). CPU: the consumer process (all threads), SQS calls: every call the consumer made, both over the same window. RSS: peak (VmHWM) of the consumer process.`,
  '',
  rep.main,
  '',
  ...(rep.lat
    ? [
        `Latency: SNS Publish to handler start, events published through the topic while the consumer runs${Number.isFinite(background.latency) ? ` (other processes: ${f2(background.latency)} cores)` : ''}.`,
        '',
        rep.lat,
        '',
      ]
    : []),
  ...(rep.rssCurve ? ['Memory while draining the backlog (VmRSS sampled every 250 ms):', '', rep.rssCurve, ''] : []),
  ...(Object.keys(startUps(rep.summaries)).length
    ? [
        'Start-up: process spawned to its first ReceiveMessage, every drain of the scenarios without added delay (median, min–max):',
        '',
        '| consumer | start-up ms |',
        '|---|---|',
        ...Object.entries(startUps(rep.summaries)).map(([c, v]) => `| ${CONSUMERS[c].label} | ${f0(median(v))} (${f0(min(v))}–${f0(max(v))}) |`),
        '',
      ]
    : []),
  ...(rep.targets.length ? ['Targets of issue 12 (eventbus):', '', ...rep.targets, ''] : []),
  ...(rep.calib.length ? ['Raw ceiling, poller counts tried (msgs/s, a third of N):', '', ...rep.calib, ''] : []),
  'Details (medians):',
  '',
  rep.detail,
  '',
].join('\n');

mkdirSync(dirname(OUT), { recursive: true });
writeFileSync(OUT, md);
process.stdout.write(`\n${md}\n`);
log(`written to ${relative(REPO, OUT)} in ${totalSec.toFixed(0)} s`);

const broken = Object.values(rep.summaries).some((S) => ['raw', 'eventbus'].some((c) => S[c] && (S[c].dup || S[c].missing || S[c].failed)));
const latBroken = ['raw', 'eventbus'].some((c) => latency[c] && LATENCY_RATES.some((r) => latency[c][r] && (latency[c][r].dup || latency[c][r].missing || latency[c][r].error)));
if (broken || latBroken) exitCode = 1;
process.exit(exitCode);
