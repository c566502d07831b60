import { BroadcastChannel } from 'node:worker_threads';
import { randomUUID } from 'node:crypto';
import { Piscina } from 'piscina';
import { decodeMessage } from '../../event/index.js';
import type { Logger } from '../../log.js';
import type { HandlerResult } from '../../types.js';
import { RESULT_CODES, type ControlMessage, type EarlyResults, type ItemResults, type TaskInput, type TaskItem, type TaskOutput, type WorkerConfig, type WorkerData } from '../../worker/protocol.js';

/** After `timeoutMs` + grace, how much longer the main thread waits before it ends a thread that never yields. */
export const WATCHDOG_MARGIN_MS = 1_000;
/**
 * How often a task whose thread died before the task reached it runs again on another thread. Its
 * handler never ran, so it should not spend one of the message's receives (a thread that another
 * task ends by process.exit, heap exhaustion or a watchdog kill takes its queued tasks with it).
 * Bounded: a thread that dies on every start would otherwise loop.
 */
export const UNSTARTED_RERUNS = 2;
/** The share of its task's time a thread's event loop was busy from which a queue's batches are split. */
const BUSY_THREAD_FROM = 0.5;
/** How long a failed task waits for outcomes its thread sent just before it died. */
const RESULTS_SETTLE_MS = 20;

export interface PoolOptions {
  threads: number;
  tasksPerThread: number;
  worker: Omit<WorkerConfig, 'slotThreads' | 'slotEpochMs' | 'controlChannel' | 'resultsChannel'>;
  threadData?: unknown;
  log: Logger;
  resourceLimits?: { maxOldGenerationSizeMb?: number; maxYoungGenerationSizeMb?: number };
}

/** A message's outcome as the dispatcher sees it. */
export interface RunOutcome {
  result: HandlerResult;
  error?: string | undefined;
  durationMs: number;
  /** The decoded event's type and id; null/messageId when the handler never got to run. */
  eventType: string | null;
  eventId: string;
}

/** A message for `runBatch`: what the thread needs to decode and run it. */
export type BatchMessage = Omit<TaskItem, 'slot'>;

interface PendingItem {
  item: TaskItem;
  resolve: (o: RunOutcome) => void;
  done: boolean;
  killedByWatchdog: boolean;
  warnedQueued: boolean;
  startedMs: number;
}

interface Chunk {
  batch: number;
  queue: string;
  queueArn: string;
  timeoutMs: number;
  items: PendingItem[];
  reruns: number;
}

/**
 * The piscina pool that runs handlers, a batch of one receive per task (split across threads when
 * its handlers take time). Tasks carry no piscina abort signal: a task with one runs alone on its
 * thread, which would cost the many tasks per thread that I/O-bound handlers need. Deadlines live
 * inside the thread (ctx.signal); only a handler that never yields has its thread ended, by the
 * watchdog here, which knows the thread from a shared slot table.
 */
export class HandlerPool {
  readonly capacity: number;
  readonly #threads: number;
  readonly #pool: Piscina<TaskInput, TaskOutput>;
  readonly #slotThreads: Int32Array;
  readonly #freeSlots: number[];
  readonly #control: BroadcastChannel;
  readonly #results: BroadcastChannel;
  readonly #chunks = new Map<number, Chunk>();
  /** How busy a queue's tasks kept their thread (exponentially weighted, 0-1). */
  readonly #busy = new Map<string, number>();
  #nextBatch = 1;
  readonly #log: Logger;
  readonly #graceMs: number;
  readonly #slotEpochMs = Date.now();
  /** Threads ended on purpose (watchdog, abandoned handlers): thread ids are not reused. */
  readonly #endedThreads = new Set<number>();
  #destroyed: Promise<void> | undefined;

  constructor(o: PoolOptions) {
    this.capacity = o.threads * o.tasksPerThread;
    this.#threads = o.threads;
    const slotBuffer = new SharedArrayBuffer(4 * 2 * this.capacity);
    this.#slotThreads = new Int32Array(slotBuffer);
    this.#freeSlots = Array.from({ length: this.capacity }, (_, i) => this.capacity - 1 - i);
    this.#log = o.log;
    this.#graceMs = o.worker.graceMs;
    const id = randomUUID();
    const controlChannel = `eventbus:${id}`;
    const resultsChannel = `eventbus:results:${id}`;
    this.#control = new BroadcastChannel(controlChannel);
    this.#control.unref();
    this.#results = new BroadcastChannel(resultsChannel);
    this.#results.unref();
    this.#results.onmessage = (ev) => {
      const { batch, results } = (ev as { data: EarlyResults }).data;
      const chunk = this.#chunks.get(batch);
      if (chunk) this.#apply(chunk, results);
    };
    const workerData: WorkerData = {
      eventbus: { ...o.worker, slotThreads: slotBuffer, slotEpochMs: this.#slotEpochMs, controlChannel, resultsChannel },
      threadData: o.threadData,
    };
    this.#pool = new Piscina<TaskInput, TaskOutput>({
      filename: new URL('../../worker/index.js', import.meta.url).href,
      minThreads: o.threads,
      maxThreads: o.threads,
      // Counts tasks, not messages: the dispatcher's slots bound the messages.
      concurrentTasksPerWorker: o.tasksPerThread,
      // Idle threads must not block in Atomics.wait: handlers keep sockets and un-awaited work alive.
      atomics: 'disabled',
      idleTimeout: 60_000,
      workerData,
      ...(o.resourceLimits ? { resourceLimits: o.resourceLimits } : {}),
    });
    this.#pool.on('error', (err: unknown) => this.#log.error({ err }, 'worker thread error'));
  }

  get threads(): number {
    return this.#pool.threads.length;
  }

  /**
   * Whether a queue's tasks keep their thread busy (CPU): its batches are worth splitting across
   * the threads. Handlers that mostly wait (I/O) run concurrently on one thread just as well, and a
   * split costs a task per thread. Unknown yet: yes. Measured per thread, so a queue whose tasks
   * share threads with a CPU-bound queue's reads as busy too (it then gets split batches: the
   * cost of a task per thread, nothing worse).
   */
  keepsThreadsBusy(queue: string): boolean {
    return (this.#busy.get(queue) ?? 1) >= BUSY_THREAD_FROM;
  }

  /**
   * Whether more than `n` of a queue's messages handed to the threads have not started yet (queued
   * behind other handlers on their thread): the threads have work for a while, so a receive need
   * not hurry. Scans the tasks in progress (at most the pool's capacity of messages).
   */
  moreUnstartedThan(queue: string, n: number): boolean {
    let waiting = 0;
    for (const chunk of this.#chunks.values()) {
      if (chunk.queue !== queue) continue;
      for (const p of chunk.items) if (!p.done && Atomics.load(this.#slotThreads, 2 * p.item.slot + 1) === 0 && ++waiting > n) return true;
    }
    return false;
  }

  /**
   * Runs one receive's messages of one queue; a promise per message with its outcome (a dead thread
   * is `crashed`, a thread ended by the watchdog `timeout`). `spread`: split the batch across the
   * threads (handlers that take time); otherwise one task carries them all (fast handlers, where the
   * task's own cost is what counts).
   */
  runBatch(queue: string, queueArn: string, timeoutMs: number, messages: BatchMessage[], spread: boolean): Array<Promise<RunOutcome>> {
    const items: PendingItem[] = [];
    const promises = messages.map(
      (m) =>
        new Promise<RunOutcome>((resolve) => {
          const slot = this.#freeSlots.pop();
          if (slot === undefined) throw new Error('handler pool: no free slot (caps exceed pool capacity)');
          this.#clearSlot(slot);
          items.push({ item: { ...m, slot }, resolve, done: false, killedByWatchdog: false, warnedQueued: false, startedMs: performance.now() });
        }),
    );
    const chunks = spread ? Math.min(items.length, this.#threads) : 1;
    const size = Math.ceil(items.length / chunks);
    for (let i = 0; i < items.length; i += size) this.#start(queue, queueArn, timeoutMs, items.slice(i, i + size), 0);
    return promises;
  }

  #start(queue: string, queueArn: string, timeoutMs: number, items: PendingItem[], reruns: number): void {
    const chunk: Chunk = { batch: this.#nextBatch++, queue, queueArn, timeoutMs, items, reruns };
    this.#chunks.set(chunk.batch, chunk);
    const limitMs = timeoutMs + this.#graceMs + WATCHDOG_MARGIN_MS;
    let watchdog: NodeJS.Timeout | undefined;
    const arm = (ms: number) => {
      watchdog = setTimeout(() => {
        let next = limitMs;
        for (const p of chunk.items) {
          if (p.done) continue;
          const tid = Atomics.load(this.#slotThreads, 2 * p.item.slot);
          const startedAt = Atomics.load(this.#slotThreads, 2 * p.item.slot + 1);
          if (tid < 0) continue; // settled on its thread; the outcome is on its way
          if (tid === 0 || startedAt === 0) {
            // Not started: queued behind a thread being replaced, or its setup still running.
            if (!p.warnedQueued) this.#log.warn({ queue, messageId: p.item.messageId }, 'handler has not started yet; waiting for a thread');
            p.warnedQueued = true;
            continue;
          }
          // Timed from the handler's own start, as the thread's timer is.
          const elapsed = Date.now() - this.#slotEpochMs - (startedAt - 1);
          if (elapsed < limitMs) {
            next = Math.min(next, limitMs - elapsed);
            continue;
          }
          p.killedByWatchdog = true;
          if (!this.#endedThreads.has(tid)) {
            this.#log.warn({ queue, messageId: p.item.messageId, thread: tid }, 'handler did not yield after its timeout; replacing its thread');
            this.#endThread(tid);
          }
        }
        arm(next);
      }, ms);
      watchdog.unref();
    };
    arm(limitMs);
    this.#pool
      .run({ batch: chunk.batch, queue, queueArn, timeoutMs, items: items.map((p) => p.item) })
      .then(
        (out) => {
          if (out.busy !== undefined && Number.isFinite(out.busy)) {
            const b = this.#busy.get(queue);
            this.#busy.set(queue, b === undefined ? out.busy : b * 0.8 + out.busy * 0.2);
          }
          this.#apply(chunk, out.results);
          if (out.abandonedOnThread !== undefined) this.#endThread(out.abandonedOnThread);
        },
        // Outcomes the thread sent just before it died may still be on the results channel: let
        // them arrive before deciding what the rest of the batch became.
        (err: unknown) => new Promise<void>((resolve) => setTimeout(resolve, RESULTS_SETTLE_MS)).then(() => this.#failed(chunk, err)),
      )
      .finally(() => {
        clearTimeout(watchdog);
        // Early results may still be on their way after the task's return: keep the chunk until all came.
        if (chunk.items.every((p) => p.done)) this.#chunks.delete(chunk.batch);
      });
  }

  #apply(chunk: Chunk, results: ItemResults): void {
    for (const [i, out] of results) {
      const p = chunk.items[i];
      if (p) this.#resolve(p, out);
    }
    if (chunk.items.every((p) => p.done)) this.#chunks.delete(chunk.batch);
  }

  #clearSlot(slot: number): void {
    Atomics.store(this.#slotThreads, 2 * slot, 0);
    Atomics.store(this.#slotThreads, 2 * slot + 1, 0);
  }

  #resolve(p: PendingItem, outcome: RunOutcome): void {
    if (p.done) return;
    p.done = true;
    this.#clearSlot(p.item.slot);
    this.#freeSlots.push(p.item.slot);
    p.resolve(outcome);
  }

  /** The task failed: its thread died (or was ended). Decide each unsettled message's outcome. */
  #failed(chunk: Chunk, err: unknown): void {
    const rerun: PendingItem[] = [];
    for (const p of chunk.items) {
      if (p.done) continue;
      const durationMs = performance.now() - p.startedMs;
      // The thread decodes events; for the few that never came back, decode here for labels and failure events.
      let base: RunOutcome = { result: 'crashed', durationMs, eventType: null, eventId: p.item.messageId };
      try {
        const { event } = decodeMessage({ ...p.item, attributes: p.item.attributes ?? {}, queueArn: chunk.queueArn });
        base = { ...base, eventType: event.type, eventId: event.id };
      } catch {
        // decodeMessage does not throw; if it ever did, the labels fall back to the message id.
      }
      // Past its own timeout when a watchdog ended its thread (its own or a neighbour's, whichever
      // fired first): a timeout too; `crashed` would blame the neighbour.
      const tid = Atomics.load(this.#slotThreads, 2 * p.item.slot);
      const startedAt = Atomics.load(this.#slotThreads, 2 * p.item.slot + 1);
      const overdue = this.#endedThreads.has(tid) && startedAt !== 0 && Date.now() - this.#slotEpochMs - (startedAt - 1) >= chunk.timeoutMs;
      if (p.killedByWatchdog || overdue) {
        this.#resolve(p, { ...base, result: 'timeout', error: `handler did not yield ${chunk.timeoutMs} ms after start; thread replaced` });
      } else if (tid < 0) {
        // Its handler settled but the outcome died with the thread: the slot table kept the result.
        const result = RESULT_CODES[-startedAt - 1];
        if (result === 'success') this.#resolve(p, { ...base, result });
        else this.#resolve(p, { ...base, result: result ?? 'crashed', error: `${result ?? 'outcome'} (its details were lost with the thread: ${(err as Error)?.message ?? err})` });
      } else if (startedAt === 0 && chunk.reruns < UNSTARTED_RERUNS) {
        // Its handler never started: the thread died before it took this task (the worker marks
        // the slots first thing), or while a neighbour in the same task blocked it.
        this.#log.info({ queue: chunk.queue, messageId: p.item.messageId, err }, 'thread died before the handler started; running it on another thread');
        rerun.push(p);
      } else {
        this.#resolve(p, { ...base, result: 'crashed', error: `worker thread died: ${(err as Error)?.message ?? err}` });
      }
    }
    this.#chunks.delete(chunk.batch);
    if (rerun.length) this.#start(chunk.queue, chunk.queueArn, chunk.timeoutMs, rerun, chunk.reruns + 1);
  }

  /** Ends one thread; piscina fails its other tasks (they become `crashed`) and starts a replacement. */
  #endThread(threadId: number): void {
    this.#endedThreads.add(threadId);
    const worker = this.#pool.threads.find((w) => w.threadId === threadId);
    if (worker) void worker.terminate();
  }

  /**
   * Waits until every thread has loaded the handlers and run their setup, so no message is received
   * into a thread that is still starting (its visibility timeout would run meanwhile).
   */
  async warmup(): Promise<void> {
    const threads = this.#pool.threads.length || 1;
    // One task per thread: piscina's least-busy balancer gives each idle thread one.
    await Promise.all(Array.from({ length: threads }, () => this.#pool.run({ warmup: true, batch: 0, queue: '', queueArn: '', timeoutMs: 0, items: [] })));
  }

  /** Aborts every running handler's signal (shutdown deadline). */
  abortAll(reason: string): void {
    this.#control.postMessage({ cmd: 'abort-all', reason } satisfies ControlMessage);
  }

  /** Runs every thread's teardown hooks; resolves when each thread answered or at the deadline. */
  async teardown(timeoutMs: number): Promise<{ threads: number; acked: number; errors: string[] }> {
    const expected = this.#pool.threads.length;
    const errors: string[] = [];
    let acked = 0;
    if (expected === 0) return { threads: 0, acked: 0, errors };
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.#control.onmessage = (ev) => {
        const msg = (ev as { data: ControlMessage }).data;
        if ('ack' in msg && msg.ack === 'teardown') {
          acked++;
          errors.push(...msg.errors);
          if (acked >= expected) {
            clearTimeout(timer);
            resolve();
          }
        }
      };
      this.#control.postMessage({ cmd: 'teardown' } satisfies ControlMessage);
    });
    return { threads: expected, acked, errors };
  }

  destroy(): Promise<void> {
    this.#destroyed ??= this.#pool.destroy().finally(() => {
      this.#control.close();
      this.#results.close();
    });
    return this.#destroyed;
  }
}
