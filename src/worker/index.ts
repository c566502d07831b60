import { BroadcastChannel, threadId, workerData } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import { createAwsClients } from '../aws.js';
import { describeError } from '../errors.js';
import { createLogger } from '../log.js';
import { createPublisher, type Publisher } from '../publisher/index.js';
import { derivedEventId } from '../publisher/event.js';
import type { CloudEvent, EventOptions, HandlerContext, HandlerDefinition } from '../types.js';
import type { ControlMessage, TaskInput, TaskOutput, WorkerData } from './task.js';

const cfg = (workerData as WorkerData).eventbus;
const log = createLogger({ level: cfg.logLevel, pretty: cfg.pretty, base: { pid: process.pid, thread: threadId } });
const slotThreads = new Int32Array(cfg.slotThreads);

interface LoadedHandler {
  def: HandlerDefinition;
  log: typeof log;
  setup: Promise<void> | null;
  setupDone: boolean;
}

const handlers = new Map<string, LoadedHandler>();
// Each handler module is loaded once per thread, when the thread starts.
for (const h of cfg.handlers) {
  const mod = (await import(pathToFileURL(h.file).href)) as { default: HandlerDefinition };
  handlers.set(h.queue, { def: mod.default, log: log.child({ queue: h.queue }), setup: null, setupDone: false });
}

const running = new Set<AbortController>();
const TIMED_OUT = Symbol('timed out');
let publisher: Publisher | undefined;

const control = new BroadcastChannel(cfg.controlChannel);
control.unref();
control.onmessage = (ev) => {
  const msg = (ev as { data: ControlMessage }).data;
  if ('cmd' in msg && msg.cmd === 'abort-all') {
    for (const ac of running) ac.abort(new Error(msg.reason));
  } else if ('cmd' in msg && msg.cmd === 'teardown') {
    void teardown().then((errors) => control.postMessage({ ack: 'teardown', threadId, errors } satisfies ControlMessage));
  }
};

async function teardown(): Promise<string[]> {
  const errors: string[] = [];
  for (const [queue, h] of handlers) {
    if (!h.setupDone || typeof h.def.teardown !== 'function') continue;
    try {
      await h.def.teardown();
    } catch (err) {
      errors.push(`${queue}: ${describeError(err)}`);
      h.log.error({ err }, 'handler teardown failed');
    }
  }
  return errors;
}

function ensureSetup(h: LoadedHandler, queue: string): Promise<void> | null {
  if (h.setupDone || typeof h.def.setup !== 'function') {
    h.setupDone = true;
    return null;
  }
  // A failed setup is tried again with the next message of that queue.
  h.setup ??= Promise.resolve()
    .then(() => h.def.setup!({ queue, log: h.log }))
    .then(
      () => {
        h.setupDone = true;
      },
      (err: unknown) => {
        h.setup = null;
        throw err;
      },
    );
  return h.setup;
}

/** Runs every setup hook once the thread is up, so the first message does not wait for it. */
async function setupAll(): Promise<string[]> {
  const errors: string[] = [];
  for (const [queue, h] of handlers) {
    try {
      await ensureSetup(h, queue);
    } catch (err) {
      errors.push(`${queue}: ${describeError(err)}`);
      h.log.error({ err }, 'handler setup failed; it is tried again with the next message');
    }
  }
  return errors;
}

async function warmup(): Promise<TaskOutput> {
  const started = performance.now();
  const errors = await setupAll();
  return { result: errors.length ? 'error' : 'success', ...(errors.length ? { error: errors.join('; ') } : {}), durationMs: performance.now() - started };
}

// Setup runs as the thread starts (a replacement thread too), so its first message does not wait for it.
await setupAll();

function getPublisher(): Publisher {
  if (!cfg.topicArn) throw new Error('ctx.publish: the topic is not resolved on this host');
  publisher ??= createPublisher({ sns: createAwsClients(cfg.aws).sns, topic: cfg.topicArn, source: cfg.source });
  return publisher;
}

/** Runs one message's handler. Never throws: the outcome crosses the thread boundary as data. */
export default async function run(task: TaskInput): Promise<TaskOutput> {
  if (task.warmup) return warmup();
  const started = performance.now();
  Atomics.store(slotThreads, 2 * task.slot, threadId);
  const done = (result: TaskOutput['result'], error?: string): TaskOutput => ({
    result,
    ...(error !== undefined ? { error } : {}),
    durationMs: performance.now() - started,
  });
  const h = handlers.get(task.queue);
  if (!h) {
    Atomics.store(slotThreads, 2 * task.slot, 0);
    return done('error', `no handler for queue ${task.queue} in this thread`);
  }
  const ac = new AbortController();
  running.add(ac);
  let abortTimer: NodeJS.Timeout | undefined;
  let graceTimer: NodeJS.Timeout | undefined;
  try {
    const setup = ensureSetup(h, task.queue);
    if (setup) await setup;
    // The watchdog on the main thread times the handler from here, as the timer below does.
    Atomics.store(slotThreads, 2 * task.slot + 1, Date.now() - cfg.slotEpochMs + 1);
    const event = task.event;
    let position = 0;
    const ctx: HandlerContext = {
      messageId: task.messageId,
      receiveCount: task.receiveCount,
      queue: task.queue,
      signal: ac.signal,
      log: h.log.child({ messageId: task.messageId, eventType: event.type, receiveCount: task.receiveCount }),
      publish(type: string, data: unknown, opts: EventOptions = {}): Promise<CloudEvent> {
        const id = opts.id ?? derivedEventId(event.id, task.queue, position++);
        return getPublisher().createEvent(type, data, { ...opts, id });
      },
    };
    const timedOut = new Promise<typeof TIMED_OUT>((resolve) => {
      abortTimer = setTimeout(() => {
        ac.abort(new Error(`handler timed out after ${task.timeoutMs} ms`));
        graceTimer = setTimeout(() => resolve(TIMED_OUT), cfg.graceMs);
      }, task.timeoutMs);
    });
    const handled = Promise.resolve().then(() => h.def.handle(event, ctx));
    let value: unknown;
    try {
      value = await Promise.race([handled, timedOut]);
    } catch (err) {
      if (ac.signal.aborted) return done('timeout', describeError(ac.signal.reason));
      return done('error', describeError(err));
    }
    if (value === TIMED_OUT) {
      // The handler ignored its signal and is still running: the main thread ends this thread, so
      // an abandoned handler cannot go on beside its own retry.
      handled.catch(() => undefined);
      return { ...done('timeout', `${describeError(ac.signal.reason)}; the handler ignored its signal, thread ended`), abandonedOnThread: threadId };
    }
    return value === false ? done('failure', 'handler returned false') : done('success');
  } catch (err) {
    return done('error', `setup failed: ${describeError(err)}`);
  } finally {
    clearTimeout(abortTimer);
    clearTimeout(graceTimer);
    running.delete(ac);
    Atomics.store(slotThreads, 2 * task.slot, 0);
    Atomics.store(slotThreads, 2 * task.slot + 1, 0);
  }
}
