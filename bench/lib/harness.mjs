// What every benchmark script shares: logging, child-process tracking (killed at the end, on failure
// and on signals), a temp folder, the emulator in its own process (bench/lib/fauxqs-server.mjs: it
// counts and delays every call but the harness's own), the harness's SDK clients, and a fresh queue
// with its DLQ per drain.
import { fork } from 'node:child_process';
import { EventEmitter, once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { CreateQueueCommand, DeleteQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { SNSClient } from '@aws-sdk/client-sns';

const LIB = dirname(fileURLToPath(import.meta.url));

export function die(msg) {
  process.stderr.write(`bench: ${msg}\n`);
  process.exit(2);
}
export const log = (msg) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export function withTimeout(p, ms, what) {
  let t;
  return Promise.race([p, new Promise((_, reject) => (t = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms)))]).finally(() =>
    clearTimeout(t),
  );
}

const children = new Set();
/** Tracks a child process: it is killed (SIGKILL) when this process exits or gets a signal. */
export function track(child) {
  children.add(child);
  child.once('exit', () => children.delete(child));
  return child;
}
export function killAll() {
  for (const c of children) {
    try {
      c.kill('SIGKILL');
    } catch {
      // gone
    }
  }
}
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    log(`${sig}: stopping`);
    killAll();
    process.exit(130);
  });
}

/** A temp folder removed at exit (kept, and named, with BENCH_KEEP=1). */
export function tempDir(prefix) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  process.on('exit', () => {
    if (process.env.BENCH_KEEP !== '1') rmSync(dir, { recursive: true, force: true });
    else process.stderr.write(`bench: kept ${dir}\n`);
  });
  return dir;
}

/**
 * Starts the emulator process. `call(cmd, ev, extra)` sends a command and waits for its answer;
 * `send(msg)` sends one without waiting; `events` carries `ready`, `emulator-exit` and the answers.
 */
export async function startBenchEmulator() {
  const events = new EventEmitter();
  const child = track(fork(join(LIB, 'fauxqs-server.mjs'), [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  child.on('message', (m) => events.emit(m.id !== undefined ? `${m.ev}:${m.id}` : m.ev, m));
  child.on('exit', (code, sig) => events.emit('emulator-exit', code, sig));
  const [ready] = await withTimeout(once(events, 'ready'), 20_000, 'fauxqs did not start');
  let seq = 0;
  return {
    endpoint: `http://127.0.0.1:${ready.port}`,
    pid: child.pid,
    events,
    send: (msg) => child.send(msg),
    /**
     * Opens a measuring window on a queue (the emulator's `open` command: its calls get `latencyMs`,
     * and it reports `first:<id>`, `mark:<id>`, `drained:<id>` on `events`). Returns the window's id.
     */
    async openWindow(o) {
      const id = ++seq;
      const opened = once(events, `opened:${id}`);
      child.send({ cmd: 'open', id, ...o });
      await withTimeout(opened, 10_000, 'fauxqs did not open the window');
      return id;
    },
    async call(cmd, ev, extra = {}) {
      const id = ++seq;
      const p = once(events, `${ev}:${id}`);
      child.send({ cmd, id, ...extra });
      const [m] = await withTimeout(p, cmd === 'preload' ? 300_000 : 10_000, `fauxqs did not answer ${cmd}`);
      return m;
    },
  };
}

/** The harness's own clients: their calls carry x-bench-harness and are neither counted nor delayed. */
export function harnessClients(endpoint) {
  const cfg = { endpoint, region: 'us-east-1', credentials: { accessKeyId: 'test', secretAccessKey: 'test' } };
  const tag = (next) => (args) => {
    args.request.headers['x-bench-harness'] = '1';
    return next(args);
  };
  const sqs = new SQSClient(cfg);
  const sns = new SNSClient(cfg);
  sqs.middlewareStack.add(tag, { step: 'build', name: 'benchHarnessTag' });
  sns.middlewareStack.add(tag, { step: 'build', name: 'benchHarnessTag' });
  return { sqs, sns };
}

/** A fresh queue `<prefix>q` and its DLQ, with a RedrivePolicy as eventbus provisions it. */
export async function createQueues(sqs, prefix, visibilitySec = 30) {
  const name = `${prefix}q`;
  const dlq = await sqs.send(new CreateQueueCommand({ QueueName: `${name}-dlq` }));
  const dlqArn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlq.QueueUrl, AttributeNames: ['QueueArn'] }))).Attributes.QueueArn;
  const q = await sqs.send(
    new CreateQueueCommand({
      QueueName: name,
      Attributes: { VisibilityTimeout: String(visibilitySec), RedrivePolicy: JSON.stringify({ deadLetterTargetArn: dlqArn, maxReceiveCount: 5 }) },
    }),
  );
  const arn = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: q.QueueUrl, AttributeNames: ['QueueArn'] }))).Attributes.QueueArn;
  return { prefix, name, url: q.QueueUrl, arn, dlqName: `${name}-dlq`, dlqUrl: dlq.QueueUrl };
}

export async function deleteQueues(sqs, q) {
  for (const url of [q.url, q.dlqUrl]) await sqs.send(new DeleteQueueCommand({ QueueUrl: url })).catch(() => undefined);
}

/** A handlers folder (under `tmp`) with one handler, queue `q`, that runs bench/lib/eventbus-handler.mjs. */
export function eventbusHandlersDir(tmp) {
  const dir = join(tmp, 'handlers');
  mkdirSync(dir, { recursive: true });
  const target = pathToFileURL(join(LIB, 'eventbus-handler.mjs')).href;
  writeFileSync(join(dir, 'q.mjs'), `export { default } from ${JSON.stringify(target)};\n`);
  return dir;
}

/** The last `lines` lines of a log file ('' when it cannot be read). */
export function tail(file, lines) {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}
