// Shared pieces of the fault suite (test/faults): the profile knobs, a spawned supervisor on a
// pre-provisioned topology, metrics and readiness over HTTP, the handler log tally, RSS sampling,
// and the JSON result records that scripts/reliability-report.mjs renders into docs/RELIABILITY.md.
import { closeSync, existsSync, fstatSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { GetQueueAttributesCommand, GetQueueUrlCommand, ReceiveMessageCommand, DeleteMessageBatchCommand, type Message } from '@aws-sdk/client-sqs';
import { loadHandlers } from '../../dist/handlers.js';
import { provision } from '../../dist/publisher/provision.js';
import { createPublisher, type Publisher, type BatchEntry } from '../../dist/publisher/index.js';
import { emulator, uniqueName, waitFor, type TestEmulator } from './emulator.js';
import { ROOT, spawnNode, writeConfig, type Spawned } from './process.js';

export { waitFor, uniqueName };

/** `FAULTS_PROFILE=ci` makes every fault small enough for CI; the default is the full run behind docs/RELIABILITY.md. */
export const PROFILE: 'full' | 'ci' = process.env.FAULTS_PROFILE === 'ci' ? 'ci' : 'full';
const ci = PROFILE === 'ci';
const num = (name: string, full: number, small: number) => {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : ci ? small : full;
};

/** Sizes and durations per profile; each can be overridden by its env variable. */
export const KNOBS = {
  /**
   * Messages waiting before the backlog test starts (the 100,000). The CI size is the least
   * that gets past the heap's warm-up (~25,000 messages at full speed), so the drain's RSS criterion
   * compares a warm heap with a warm heap.
   */
  backlog: num('FAULTS_BACKLOG', 100_000, 50_000),
  /** Seconds of the slow phase of the backlog test. */
  backlogSlowSec: num('FAULTS_BACKLOG_SLOW_SEC', 60, 15),
  /** Messages of each crash run. */
  crashMessages: num('FAULTS_CRASH_MESSAGES', 5_000, 2_000),
  /** kill -9 of the single-process supervisor per run. */
  crashKills: num('FAULTS_CRASH_KILLS', 6, 3),
  /** kill -9 of one child in cluster mode. */
  childKills: num('FAULTS_CHILD_KILLS', 4, 2),
  /** How long each endpoint fault lasts (ms). */
  endpointFaultMs: num('FAULTS_ENDPOINT_MS', 12_000, 6_000),
  /** Messages published per endpoint-fault phase. */
  endpointMessages: num('FAULTS_ENDPOINT_MESSAGES', 200, 60),
  /** Messages in the shutdown-under-load run. */
  shutdownMessages: num('FAULTS_SHUTDOWN_MESSAGES', 2_000, 600),
  /** Good messages flowing beside misbehaving handlers. */
  goodMessages: num('FAULTS_GOOD_MESSAGES', 600, 200),
};

export const RESULTS_DIR = join(ROOT, 'dist-test', 'faults-results');
const SUPERVISOR = 'dist/supervisor/index.js';
export const FAULTY = fileURLToPath(new URL('../../test/fixtures/handlers/faulty.mjs', import.meta.url));

/** One row of docs/RELIABILITY.md: what was injected and what came of it. */
export interface FaultRecord {
  fault: string;
  case: string;
  injected: string;
  sent: number;
  handled: number;
  /** Messages that ended in a DLQ because the handler kept rejecting them (expected, not lost). */
  deadLettered?: number;
  duplicated: number;
  lost: number;
  /** From the end of the fault to normal service (ready again, work flowing); null if not applicable. */
  recoveryMs: number | null;
  durationMs: number;
  details?: Record<string, unknown>;
}

/** Appends a result record (one JSON file per record) for the report script. */
export function record(r: FaultRecord): void {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const slug = `${r.fault}-${r.case}`.replace(/[^A-Za-z0-9_.-]+/g, '_');
  writeFileSync(join(RESULTS_DIR, `${slug}.json`), JSON.stringify({ ...r, profile: PROFILE, node: process.version, at: new Date().toISOString() }, null, 2));
}

/** A temp folder with one handler module per spec, each the faulty fixture with its declaration. */
export function writeFaultyHandlers(specs: Array<{ queue: string; [k: string]: unknown }>): string {
  const dir = mkdtempSync(join(tmpdir(), 'eventbus-faults-handlers-'));
  for (const s of specs) {
    const { queue, ...decl } = s;
    writeFileSync(join(dir, `${queue}.mjs`), `import faulty from ${JSON.stringify(pathToFileURL(FAULTY).href)};\nexport default { ...faulty, ...${JSON.stringify(decl)} };\n`);
  }
  return dir;
}

export function tempFile(name: string): string {
  return join(mkdtempSync(join(tmpdir(), 'eventbus-faults-')), name);
}

/** The emulator, a provisioned topology (the supervisor runs with provision off, as in production) and a publisher. */
export interface World {
  emu: TestEmulator;
  topic: string;
  topicArn: string;
  prefix: string;
  handlersDir: string;
  publisher: Publisher;
  queueUrl(queue: string, dlq?: boolean): Promise<string>;
  /** Visible / in flight (not visible) counts. */
  depth(queue: string, dlq?: boolean): Promise<{ visible: number; inFlight: number }>;
  /** Receives everything from a queue (each message hidden for `hideSec`), optionally deleting it. */
  drain(queue: string, opts?: { dlq?: boolean; hideSec?: number; remove?: boolean }): Promise<Message[]>;
  stop(): Promise<void>;
}

export async function world(handlers: Array<{ queue: string; [k: string]: unknown }>, emu?: TestEmulator): Promise<World> {
  const e = emu ?? (await emulator());
  const prefix = `${uniqueName('f')}-`;
  const topic = uniqueName('topic');
  const handlersDir = writeFaultyHandlers(handlers);
  const resolved = await loadHandlers({ handlersDir, queuePrefix: prefix, concurrency: 10, queues: {} });
  const r = await provision(e, { topic, handlers: resolved });
  const publisher = createPublisher({ sns: e.sns, topic: r.topicArn, source: 'faults' });
  const urls = new Map<string, string>();
  const queueUrl = async (queue: string, dlq = false) => {
    const name = `${prefix}${queue}${dlq ? '-dlq' : ''}`;
    let url = urls.get(name);
    if (!url) urls.set(name, (url = (await e.sqs.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl!));
    return url;
  };
  return {
    emu: e,
    topic,
    topicArn: r.topicArn,
    prefix,
    handlersDir,
    publisher,
    queueUrl,
    async depth(queue, dlq = false) {
      const a = await e.sqs.send(
        new GetQueueAttributesCommand({ QueueUrl: await queueUrl(queue, dlq), AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }),
      );
      return { visible: Number(a.Attributes?.ApproximateNumberOfMessages), inFlight: Number(a.Attributes?.ApproximateNumberOfMessagesNotVisible) };
    },
    async drain(queue, o = {}) {
      const url = await queueUrl(queue, o.dlq ?? false);
      const out: Message[] = [];
      for (;;) {
        const r = await e.sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: url,
            MaxNumberOfMessages: 10,
            WaitTimeSeconds: 0,
            VisibilityTimeout: o.hideSec ?? 300,
            MessageSystemAttributeNames: ['ApproximateReceiveCount'],
            MessageAttributeNames: ['All'],
          }),
        );
        if (!r.Messages?.length) return out;
        out.push(...r.Messages);
        if (o.remove) await e.sqs.send(new DeleteMessageBatchCommand({ QueueUrl: url, Entries: r.Messages.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }));
      }
    },
    stop: () => (emu ? Promise.resolve() : e.stop()),
  };
}

/** Publishes many events through SNS, `parallel` PublishBatch calls at a time; returns the event ids. */
export async function publishMany(publisher: Publisher, entries: BatchEntry[], parallel = 8): Promise<string[]> {
  const ids: string[] = [];
  const chunks: BatchEntry[][] = [];
  for (let i = 0; i < entries.length; i += 10) chunks.push(entries.slice(i, i + 10));
  let next = 0;
  await Promise.all(
    Array.from({ length: parallel }, async () => {
      while (next < chunks.length) {
        const chunk = chunks[next++]!;
        const r = await publisher.publishBatch(chunk);
        if (r.failed.length) throw new Error(`publish failed: ${JSON.stringify(r.failed[0])}`);
        ids.push(...r.successful.map((s) => s.id));
      }
    }),
  );
  return ids;
}

/** A supervisor spawned as `node dist/supervisor --config FILE`. */
export interface RunningSupervisor extends Spawned {
  http: string;
  pid: number;
  /** Parsed JSON log lines of the process (stdout/stderr). */
  logs(): Array<Record<string, any>>;
}

export function supervisorConfig(w: World, overrides: Record<string, unknown> = {}, endpoint?: string): Record<string, unknown> {
  return {
    endpoint: endpoint ?? w.emu.endpoint,
    region: 'us-east-1',
    topic: w.topicArn,
    queuePrefix: w.prefix,
    provision: false,
    handlersDir: w.handlersDir,
    http: { host: '127.0.0.1', port: 0 },
    logLevel: 'info',
    ...overrides,
  };
}

export const LOGS_DIR = join(ROOT, 'dist-test', 'faults-logs');

/** Keeps a process's output under dist-test/faults-logs/ for a look after the run. */
export function saveOutput(name: string, text: string): void {
  mkdirSync(LOGS_DIR, { recursive: true });
  writeFileSync(join(LOGS_DIR, `${name.replace(/[^A-Za-z0-9_.-]+/g, '_')}.log`), text);
}

/** Spawns the supervisor; resolves once its HTTP port is known (and, unless `waitRunning` is false, once it is running). */
export async function spawnSupervisor(config: Record<string, unknown>, env: Record<string, string> = {}, o: { waitRunning?: boolean; cluster?: boolean } = {}): Promise<RunningSupervisor> {
  const p = spawnNode(SUPERVISOR, ['--config', writeConfig(config)], env);
  let http: string;
  try {
    const line = await p.waitForOutput(/"port":\d+,"msg":"http listening"/, 30_000);
    http = `http://127.0.0.1:${/"port":(\d+)/.exec(line)![1]}`;
    if (o.waitRunning !== false) await p.waitForOutput(o.cluster ? /"msg":"cluster primary running"/ : /"msg":"supervisor running"/, 60_000);
  } catch (err) {
    p.kill();
    throw err;
  }
  return {
    ...p,
    http,
    pid: p.child.pid!,
    logs: () => parseLines(p.output()),
  };
}

export function parseLines(text: string): Array<Record<string, any>> {
  const out: Array<Record<string, any>> = [];
  for (const l of text.split('\n')) {
    if (!l.startsWith('{')) continue;
    try {
      out.push(JSON.parse(l) as Record<string, any>);
    } catch {
      // a line cut by kill -9
    }
  }
  return out;
}

/** Prometheus text → sum of the samples of `name` whose labels include `labels`. */
export function metricSum(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const m = /^([^{ ]+)(?:\{([^}]*)\})? (\S+)/.exec(line);
    if (!m || m[1] !== name) continue;
    const have: Record<string, string> = {};
    for (const kv of (m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)) have[kv[1]!] = kv[2]!;
    if (Object.entries(labels).every(([k, v]) => have[k] === v)) sum += Number(m[3]);
  }
  return sum;
}

export async function scrape(http: string): Promise<string> {
  const r = await fetch(`${http}/metrics`, { signal: AbortSignal.timeout(5_000) });
  return r.text();
}

export async function readyz(http: string): Promise<{ status: number; body: any }> {
  const r = await fetch(`${http}/readyz`, { signal: AbortSignal.timeout(5_000) });
  return { status: r.status, body: await r.json().catch(() => null) };
}

export interface LogRecord {
  kind: string;
  id: string;
  pid: number;
  queue: string;
  messageId: string;
  receiveCount: number;
  at: number;
  data?: any;
}

/** Reads the fixture's JSON lines (a line cut by kill -9 is skipped). */
export function readHandlerLog(file: string): LogRecord[] {
  if (!existsSync(file)) return [];
  const out: LogRecord[] = [];
  for (const l of readFileSync(file, 'utf8').split('\n')) {
    if (!l) continue;
    try {
      out.push(JSON.parse(l) as LogRecord);
    } catch {
      // partial line
    }
  }
  return out;
}

/** Follows the fixture's log file: each poll returns the records appended since the last one (for long runs). */
export function follow(file: string): { poll(): LogRecord[] } {
  let offset = 0;
  let rest = '';
  return {
    poll() {
      if (!existsSync(file)) return [];
      const fd = openSync(file, 'r');
      try {
        const size = fstatSync(fd).size;
        if (size <= offset) return [];
        const buf = Buffer.alloc(size - offset);
        readSync(fd, buf, 0, buf.length, offset);
        offset = size;
        const text = rest + buf.toString('utf8');
        const lines = text.split('\n');
        rest = lines.pop() ?? '';
        const out: LogRecord[] = [];
        for (const l of lines) {
          try {
            if (l) out.push(JSON.parse(l) as LogRecord);
          } catch {
            // a line cut by kill -9
          }
        }
        return out;
      } finally {
        closeSync(fd);
      }
    },
  };
}

/** Per event id: how often its handler started and succeeded. */
export interface Tally {
  starts: Map<string, number>;
  ends: Map<string, number>;
  /** Distinct ids that succeeded at least once. */
  handled(ids?: Iterable<string>): number;
  /** Successes beyond the first, summed over ids. */
  duplicated(ids?: Iterable<string>): number;
  /** Starts beyond the first, summed over ids (runs cut short by a kill and run again, plus duplicates). */
  reruns(ids?: Iterable<string>): number;
  missing(ids: Iterable<string>): string[];
}

export function tally(records: LogRecord[], queue?: string): Tally {
  const starts = new Map<string, number>();
  const ends = new Map<string, number>();
  for (const r of records) {
    if (queue && r.queue !== queue) continue;
    if (r.kind === 'start') starts.set(r.id, (starts.get(r.id) ?? 0) + 1);
    else if (r.kind === 'end') ends.set(r.id, (ends.get(r.id) ?? 0) + 1);
  }
  const over = (m: Map<string, number>, ids?: Iterable<string>) => {
    let n = 0;
    for (const id of ids ?? m.keys()) n += Math.max(0, (m.get(id) ?? 0) - 1);
    return n;
  };
  return {
    starts,
    ends,
    handled: (ids) => (ids ? [...ids].filter((id) => ends.has(id)).length : ends.size),
    duplicated: (ids) => over(ends, ids),
    reruns: (ids) => over(starts, ids),
    missing: (ids) => [...ids].filter((id) => !ends.has(id)),
  };
}

/** Resident set size of a process in MiB (Linux /proc), or NaN once it is gone. */
export function rssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : NaN;
  } catch {
    return NaN;
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A random integer in [min, max]. */
export const randomInt = (min: number, max: number) => min + Math.floor(Math.random() * (max - min + 1));

export function median(xs: number[]): number {
  if (!xs.length) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** Kills a process and waits for its exit. */
export async function kill9(p: Spawned): Promise<void> {
  p.kill();
  await p.exited;
}
