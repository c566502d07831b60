import { BroadcastChannel } from 'node:worker_threads';
import { randomUUID } from 'node:crypto';
import { Piscina } from 'piscina';
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { HandlerResult } from '../types.js';
import type { ControlMessage, TaskInput, TaskOutput, WorkerConfig, WorkerData } from '../worker/task.js';

/** After `timeoutMs` + grace, how much longer the main thread waits before it ends a thread that never yields. */
export const WATCHDOG_MARGIN_MS = 1_000;
/**
 * How often a task whose thread died before the task reached it runs again on another thread. Its
 * handler never ran, so it should not spend one of the message's receives (a thread that another
 * task ends by process.exit, heap exhaustion or a watchdog kill takes its queued tasks with it).
 * Bounded: a thread that dies on every start would otherwise loop.
 */
export const UNSTARTED_RERUNS = 2;

export interface PoolOptions {
  threads: number;
  tasksPerThread: number;
  worker: Omit<WorkerConfig, 'slotThreads' | 'slotEpochMs' | 'controlChannel'>;
  threadData?: unknown;
  log: Logger;
  resourceLimits?: { maxOldGenerationSizeMb?: number; maxYoungGenerationSizeMb?: number };
}

export interface RunOutcome {
  result: HandlerResult;
  error?: string | undefined;
  durationMs: number;
}

/**
 * The piscina pool that runs handlers. Tasks carry no piscina abort signal: a task with one runs
 * alone on its thread, which would cost the many tasks per thread that I/O-bound handlers need.
 * Deadlines live inside the thread (ctx.signal); only a handler that never yields has its thread
 * ended, by the watchdog here, which knows the thread from a shared slot table.
 */
export class HandlerPool {
  readonly capacity: number;
  readonly #pool: Piscina<TaskInput, TaskOutput>;
  readonly #slotThreads: Int32Array;
  readonly #freeSlots: number[];
  readonly #control: BroadcastChannel;
  readonly #log: Logger;
  readonly #graceMs: number;
  readonly #slotEpochMs = Date.now();
  /** Threads ended on purpose (watchdog, abandoned handlers): thread ids are not reused. */
  readonly #endedThreads = new Set<number>();
  #destroyed: Promise<void> | undefined;

  constructor(o: PoolOptions) {
    this.capacity = o.threads * o.tasksPerThread;
    const slotBuffer = new SharedArrayBuffer(4 * 2 * this.capacity);
    this.#slotThreads = new Int32Array(slotBuffer);
    this.#freeSlots = Array.from({ length: this.capacity }, (_, i) => this.capacity - 1 - i);
    this.#log = o.log;
    this.#graceMs = o.worker.graceMs;
    const controlChannel = `eventbus:${randomUUID()}`;
    this.#control = new BroadcastChannel(controlChannel);
    this.#control.unref();
    const workerData: WorkerData = { eventbus: { ...o.worker, slotThreads: slotBuffer, slotEpochMs: this.#slotEpochMs, controlChannel }, threadData: o.threadData };
    this.#pool = new Piscina<TaskInput, TaskOutput>({
      filename: new URL('../worker/index.js', import.meta.url).href,
      minThreads: o.threads,
      maxThreads: o.threads,
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

  /** Runs one task; resolves with its outcome (a dead thread is `crashed`, a thread ended by the watchdog `timeout`). */
  async run(input: Omit<TaskInput, 'slot'>): Promise<RunOutcome> {
    const slot = this.#freeSlots.pop();
    if (slot === undefined) throw new Error('handler pool: no free slot (caps exceed pool capacity)');
    Atomics.store(this.#slotThreads, 2 * slot, 0);
    Atomics.store(this.#slotThreads, 2 * slot + 1, 0);
    const started = performance.now();
    let killedByWatchdog = false;
    const limitMs = input.timeoutMs + this.#graceMs + WATCHDOG_MARGIN_MS;
    let watchdog: NodeJS.Timeout | undefined;
    let warnedQueued = false;
    const arm = (ms: number) => {
      watchdog = setTimeout(() => {
        const tid = Atomics.load(this.#slotThreads, 2 * slot);
        const startedAt = Atomics.load(this.#slotThreads, 2 * slot + 1);
        if (tid === 0 || startedAt === 0) {
          // Not started: queued behind a thread being replaced, or its setup still running.
          if (!warnedQueued) this.#log.warn({ queue: input.queue, messageId: input.messageId }, 'handler has not started yet; waiting for a thread');
          warnedQueued = true;
          return arm(limitMs);
        }
        // Timed from the handler's own start, as the thread's timer is.
        const elapsed = Date.now() - this.#slotEpochMs - (startedAt - 1);
        if (elapsed < limitMs) return arm(limitMs - elapsed);
        killedByWatchdog = true;
        this.#log.warn({ queue: input.queue, messageId: input.messageId, thread: tid }, 'handler did not yield after its timeout; replacing its thread');
        this.#endThread(tid);
      }, ms);
      watchdog.unref();
    };
    arm(limitMs);
    try {
      for (let rerun = 0; ; rerun++) {
        try {
          const out = await this.#pool.run({ ...input, slot });
          if (out.abandonedOnThread !== undefined) this.#endThread(out.abandonedOnThread);
          return out;
        } catch (err) {
          const durationMs = performance.now() - started;
          // Past its own timeout when a watchdog ended its thread (its own or a neighbour's, whichever
          // fired first): a timeout too; `crashed` would blame the neighbour.
          const tid = Atomics.load(this.#slotThreads, 2 * slot);
          const startedAt = Atomics.load(this.#slotThreads, 2 * slot + 1);
          const overdue = this.#endedThreads.has(tid) && startedAt !== 0 && Date.now() - this.#slotEpochMs - (startedAt - 1) >= input.timeoutMs;
          if (killedByWatchdog || overdue) return { result: 'timeout', error: `handler did not yield ${input.timeoutMs} ms after start; thread replaced`, durationMs };
          if (tid === 0 && !isCloneable(input.event)) {
            // Not a dead thread: the event could not be posted to one (nested too deeply for
            // structured clone). No thread will ever take it; the handler cannot see it.
            return { result: 'error', error: `the event cannot be passed to a worker thread: ${describeError(err)}`, durationMs };
          }
          // The thread died before it took this task (the worker marks the slot first thing).
          if (tid === 0 && rerun < UNSTARTED_RERUNS) {
            this.#log.info({ queue: input.queue, messageId: input.messageId, err }, 'thread died before the handler started; running it on another thread');
            continue;
          }
          return { result: 'crashed', error: `worker thread died: ${(err as Error)?.message ?? err}`, durationMs };
        }
      }
    } finally {
      clearTimeout(watchdog);
      Atomics.store(this.#slotThreads, 2 * slot, 0);
      Atomics.store(this.#slotThreads, 2 * slot + 1, 0);
      this.#freeSlots.push(slot);
    }
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
    await Promise.all(Array.from({ length: threads }, () => this.#pool.run({ warmup: true, slot: -1, queue: '', messageId: '', receiveCount: 0, timeoutMs: 0, event: null as never })));
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
    this.#destroyed ??= this.#pool.destroy().finally(() => this.#control.close());
    return this.#destroyed;
  }
}

/** Whether a value survives postMessage (asked only after a task failed before any thread took it). */
function isCloneable(value: unknown): boolean {
  try {
    structuredClone(value);
    return true;
  } catch {
    return false;
  }
}
