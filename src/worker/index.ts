import { parentPort, threadId, workerData } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import { describeError } from '../errors.js';
import { createLogger } from '../log.js';
import type { Publisher } from '../publisher/index.js';
import { decodeMessage, derivedEventId } from '../event/index.js';
import type { CloudEvent, EventOptions, HandlerContext, HandlerDefinition } from '../types.js';
import { offerPort, type ItemOutput, type TaskInput, type TaskItem, type TaskOutput, type WorkerData } from './protocol.js';
import { RunTable } from './run-table.js';

const cfg = (workerData as WorkerData).eventbus;
const log = createLogger({ level: cfg.logLevel, pretty: cfg.pretty, base: { pid: process.pid, thread: threadId } });
const table = new RunTable(cfg.runTable, cfg.runTableEpochMs);

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

/** Starting a batch's handlers, how long the thread may run them back to back before it lets its event loop turn. */
const YIELD_AFTER_MS = 5;

/** Every handler running on this thread (shutdown aborts them all). */
const running = new Set<ItemRun>();
/** Made on the first ctx.publish: the SDK is loaded then, not as every thread starts (~100 ms each). */
let publisher: Promise<Publisher> | undefined;

if (!parentPort) throw new Error('src/worker/index.js runs only as a piscina worker thread');
const port = offerPort(parentPort, threadId);
port.onMessage((msg) => {
  if (msg.kind === 'abort-all') {
    for (const r of running) r.abort(new Error(msg.reason));
  } else if (msg.kind === 'teardown') {
    void teardown().then((errors) => port.send({ kind: 'teardown-done', errors }));
  }
});

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
  const errors = await setupAll();
  return { results: [], ...(errors.length ? { setupErrors: errors } : {}) };
}

// Setup runs as the thread starts (a replacement thread too), so its first message does not wait for it.
await setupAll();

function getPublisher(topicArn: string | null): Promise<Publisher> {
  if (!topicArn) return Promise.reject(new Error('ctx.publish: the topic is not resolved on this host'));
  publisher ??= Promise.all([import('../aws.js'), import('../publisher/index.js')]).then(([aws, pub]) =>
    pub.createPublisher({ sns: aws.createAwsClients(cfg.aws).sns, topic: topicArn, source: cfg.source }),
  );
  return publisher;
}

/**
 * One message's run. The AbortSignal and the per-message logger are made only when the handler
 * asks for them: most handlers never do, and at thousands of messages a second both show in profiles.
 */
class ItemRun {
  #ac: AbortController | undefined;
  #reason: unknown;
  #log: typeof log | undefined;
  /**
   * performance.now() when its handler was called. Timeouts and the grace run on this monotonic
   * clock: a wall clock stepped by NTP would abort handlers early or late, and Date.now()'s whole
   * milliseconds let a 300 ms timeout abort at 299.x ms of measured duration.
   */
  startedMs = 0;
  /** performance.now() when its signal was aborted for its timeout (the grace runs from here). */
  abortedMs: number | undefined;
  output: ItemOutput | undefined;
  event: CloudEvent | undefined;

  constructor(
    readonly h: LoadedHandler,
    readonly item: TaskItem,
  ) {}

  get aborted(): boolean {
    return this.#reason !== undefined;
  }

  get reason(): unknown {
    return this.#reason;
  }

  /**
   * Its result must be `timeout` whatever the handler returned: its own timeout aborted it (SPEC
   * "Results"), or the shutdown abort reached a handler that had taken its signal (it may have
   * stopped early). A handler that never looked at its signal and returned after a shutdown abort
   * finished its work: that stays a success (releasing it would run it again on another host).
   */
  get cutShort(): boolean {
    // #ac exists once the handler asked for its signal (it is made lazily).
    return this.abortedMs !== undefined || (this.aborted && this.#ac !== undefined);
  }

  signal(): AbortSignal {
    this.#ac ??= new AbortController();
    if (this.#reason !== undefined && !this.#ac.signal.aborted) this.#ac.abort(this.#reason);
    return this.#ac.signal;
  }

  abort(reason: unknown): void {
    if (this.#reason !== undefined) return;
    this.#reason = reason;
    this.#ac?.abort(reason);
  }

  log(): typeof log {
    this.#log ??= this.h.log.child({ messageId: this.item.messageId, eventType: this.event?.type ?? null, receiveCount: this.item.receiveCount });
    return this.#log;
  }

  finish(result: ItemOutput['result'], error?: string): ItemOutput {
    return (this.output = {
      result,
      ...(error !== undefined ? { error } : {}),
      durationMs: this.startedMs ? performance.now() - this.startedMs : 0,
      eventType: this.event?.type ?? null,
      eventId: this.event?.id ?? this.item.messageId,
    });
  }
}

function contextOf(r: ItemRun, task: TaskInput, event: CloudEvent): HandlerContext {
  let position = 0;
  return {
    messageId: r.item.messageId,
    receiveCount: r.item.receiveCount,
    queue: task.queue,
    // Made on first use; still plain properties to a handler that assigns them (strict-mode ES
    // modules would throw on a getter-only property).
    get signal() {
      return r.signal();
    },
    set signal(value: AbortSignal) {
      Object.defineProperty(this, 'signal', { value, writable: true, enumerable: true, configurable: true });
    },
    get log() {
      return r.log();
    },
    set log(value: typeof log) {
      Object.defineProperty(this, 'log', { value, writable: true, enumerable: true, configurable: true });
    },
    publish(type: string, data: unknown, opts: EventOptions = {}): Promise<CloudEvent> {
      const id = opts.id ?? derivedEventId(event.id, task.queue, position++);
      return getPublisher(task.topicArn).then((p) => p.createEvent(type, data, { ...opts, id }));
    },
  };
}

/**
 * Runs a batch of one queue's messages concurrently. Never throws: outcomes cross the thread
 * boundary as data. An outcome that is ready while others of the batch still run is sent at once
 * on the results channel (coalesced per turn of the event loop), so a slow message does not hold
 * the slots of its finished neighbours; the rest come back as the task's return value.
 */
export default async function run(task: TaskInput): Promise<TaskOutput> {
  if (task.warmup) return warmup();
  const n = task.items.length;
  // First thing: the main thread tells "not started on any thread" (run it elsewhere) from "died here".
  for (const it of task.items) table.take(it.row, threadId);
  const clearRows = () => {
    for (const it of task.items) table.clear(it.row);
  };
  const h = handlers.get(task.queue);
  const fail = (error: string): TaskOutput => ({
    results: task.items.map((it, i) => [i, { result: 'error', error, durationMs: 0, eventType: null, eventId: it.messageId }]),
  });
  if (!h) {
    clearRows();
    return fail(`no handler for queue ${task.queue} in this thread`);
  }
  const setup = ensureSetup(h, task.queue);
  if (setup) {
    try {
      await setup;
    } catch (err) {
      clearRows();
      return fail(`setup failed: ${describeError(err)}`);
    }
  }
  const elu = performance.eventLoopUtilization();
  const runs: ItemRun[] = new Array(n);
  let left = n;
  let unsent: number[] = [];
  let flushQueued = false;
  let abandoned = false;
  let finish!: () => void;
  const allDone = new Promise<void>((resolve) => (finish = resolve));
  const flush = () => {
    flushQueued = false;
    if (left === 0 || unsent.length === 0) return; // the task's return value carries them
    port.send({ kind: 'outcomes', taskId: task.taskId, results: unsent.map((i) => [i, runs[i]!.output!]) });
    unsent = [];
  };
  const record = (i: number, out: () => ItemOutput) => {
    const r = runs[i]!;
    if (r.output) return; // already timed out
    out();
    running.delete(r);
    // Settled here, its outcome on its way: a thread that dies now must not make it run again, and
    // the main thread can still tell what it returned.
    table.finish(r.item.row, threadId, r.output!.result);
    unsent.push(i);
    if (--left === 0) return finish();
    // A failure's details (its error) cannot be kept in the slot table: send it at once, in case the
    // thread dies before the next turn (a neighbour out of memory). Successes are coalesced.
    if (r.output!.result !== 'success') return flush();
    if (!flushQueued) {
      flushQueued = true;
      setImmediate(flush);
    }
  };

  // One timer for the batch: each handler's signal aborts at its own start + timeoutMs; one that has
  // not finished a grace later is given up on (the main thread then ends this thread).
  let timer: NodeJS.Timeout | undefined;
  const schedule = () => {
    timer = undefined;
    let next = Infinity;
    for (const r of runs) {
      if (!r || r.output) continue; // not started yet, or finished
      next = Math.min(next, r.abortedMs !== undefined ? r.abortedMs + cfg.graceMs : r.startedMs + task.timeoutMs);
    }
    // A timer may fire up to a millisecond early (libuv's loop time): tick checks and reschedules.
    if (next !== Infinity) timer = setTimeout(tick, Math.max(1, Math.ceil(next - performance.now())));
  };
  const tick = () => {
    const now = performance.now();
    for (let i = 0; i < n; i++) {
      const r = runs[i];
      if (!r || r.output) continue;
      if (r.abortedMs === undefined) {
        if (now < r.startedMs + task.timeoutMs) continue;
        r.abort(new Error(`handler timed out after ${task.timeoutMs} ms`));
        r.abortedMs = now;
        // The watchdog's clock restarts from the abort: a thread that was busy (its timers late)
        // but whose handlers do honour their signal gets its whole grace.
        table.start(r.item.row, Date.now() - task.timeoutMs);
      } else if (now >= r.abortedMs + cfg.graceMs) {
        // The handler ignored its signal and is still running: the main thread ends this thread,
        // so an abandoned handler cannot go on beside its own retry.
        abandoned = true;
        record(i, () => r.finish('timeout', `${describeError(r.reason)}; the handler ignored its signal, thread ended`));
      }
    }
    if (left > 0) schedule();
  };
  let sliceStartMs = performance.now();
  for (let i = 0; i < n; i++) {
    const item = task.items[i]!;
    const r = (runs[i] = new ItemRun(h, item));
    running.add(r);
    let event: CloudEvent;
    try {
      event = r.event = decodeMessage({
        messageId: item.messageId,
        body: item.body,
        attributes: item.attributes ?? {},
        sentTimestampMs: item.sentTimestampMs,
        queueArn: task.queueArn,
      }).event;
    } catch (err) {
      record(i, () => r.finish('error', `decode failed: ${describeError(err)}`));
      continue;
    }
    const ctx = contextOf(r, task, event);
    // Each handler is timed from its own start, here and by the watchdog on the main thread. A
    // message whose handler never started (a neighbour blocks the thread) keeps no mark, so if
    // the thread is ended it runs again elsewhere instead of spending a receive.
    r.startedMs = performance.now();
    table.start(item.row, Date.now());
    let handled: Promise<unknown>;
    try {
      handled = Promise.resolve(h.def.handle(event, ctx));
    } catch (err) {
      record(i, () => (r.aborted ? r.finish('timeout', describeError(r.reason)) : r.finish('error', describeError(err))));
      continue;
    }
    handled.then(
      // A handler whose signal aborted has not done its work, whatever it returns (SPEC "Results"):
      // one that stops early on its signal and resolves must not have its message deleted.
      (value) =>
        record(i, () =>
          r.cutShort ? r.finish('timeout', `${describeError(r.reason)}; the handler returned after its signal aborted`) : value === false ? r.finish('failure', 'handler returned false') : r.finish('success'),
        ),
      (err: unknown) => record(i, () => (r.aborted ? r.finish('timeout', describeError(r.reason)) : r.finish('error', describeError(err)))),
    );
    if (!timer) schedule();
    if (i < n - 1) {
      if (performance.now() - sliceStartMs > YIELD_AFTER_MS) {
        // Handlers that run synchronously for a while: let the event loop turn between them, so
        // timers (their timeouts) and outcomes are not held up behind the whole batch.
        await new Promise<void>((resolve) => setImmediate(resolve));
        sliceStartMs = performance.now();
      } else {
        // Let a handler that finished at once record its outcome before the next one starts: if a
        // later one blocks the thread for good, the finished one is known to have finished.
        await null;
      }
    }
  }
  if (left > 0) await allDone;
  clearTimeout(timer);
  return {
    results: unsent.map((i): [number, ItemOutput] => [i, runs[i]!.output!]),
    ...(abandoned ? { abandonedOnThread: threadId } : {}),
    threadBusyShare: performance.eventLoopUtilization(elu).utilization,
  };
}
