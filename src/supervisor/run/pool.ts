import type { EventLoopUtilization } from 'node:perf_hooks';
import type { MessagePort } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { decodeMessage } from '../../event/index.js';
import type { Logger } from '../../log.js';
import type { ErrorInfo } from '../../errors.js';
import type { HandlerResult } from '../../types.js';
import { isPortOffer, type FromThread, type ItemResults, type PayloadFetch, type TaskInput, type TaskItem, type TaskOutput, type ToThread, type WorkerConfig, type WorkerData } from '../../worker/protocol.js';
import { RunTable } from '../../worker/run-table.js';
import { eventContext, traceExtensions } from '../../telemetry/index.js';

/** After `timeoutMs` + grace, how much longer the main thread waits before it ends a thread that never yields. */
export const WATCHDOG_MARGIN_MS = 1_000;
/**
 * How often a task whose thread died before the task reached it runs again on another thread. Its
 * handler never ran, so it should not spend one of the message's receives (a thread that another
 * task ends by process.exit, heap exhaustion or a watchdog kill takes its queued tasks with it).
 * Bounded: a thread that dies on every start would otherwise loop.
 */
export const UNSTARTED_RERUNS = 2;
/** How long a failed task waits for outcomes its thread sent just before it died. */
const RESULTS_SETTLE_MS = 20;

export interface PoolOptions {
  threads: number;
  tasksPerThread: number;
  worker: Omit<WorkerConfig, 'runTable' | 'runTableEpochMs'>;
  threadData?: unknown;
  log: Logger;
  resourceLimits?: { maxOldGenerationSizeMb?: number; maxYoungGenerationSizeMb?: number };
  /** Each finished task: how busy it kept its thread's event loop (0-1), for the load model. */
  onThreadBusyShare?: (queue: string, share: number) => void;
  /** The run table's epoch (default: now). Tests start the pool as if it had run for weeks. */
  epochMs?: number;
  /**
   * Whether tasks go to the least busy thread (spread: handlers that take their thread's time) or
   * to the busiest thread with room (pack: fast handlers then keep one thread warm and the others
   * idle). Asked per task; default: spread.
   */
  spreadTasks?: () => boolean;
  /** A handler's ctx.publish stored an event's payload on S3 (the claim check). */
  onOffloaded?: (eventType: string | null) => void;
}

/** A message's outcome as the dispatcher sees it. */
export interface RunOutcome {
  result: HandlerResult;
  error?: string | undefined;
  /** What the handler threw, with its stack and causes (plain data from the thread). */
  err?: ErrorInfo | undefined;
  /** `invalid`: its schema's issues. */
  issues?: Array<{ path: string; message: string }> | undefined;
  durationMs: number;
  /** The decoded event's type and id; null/messageId when the handler never got to run. */
  eventType: string | null;
  eventId: string;
  /** The trace context its outcome continues, `traced` when its thread recorded a span (ItemOutput). */
  traceparent?: string | undefined;
  tracestate?: string | undefined;
  traced?: boolean | undefined;
  /** An offloaded message: how its payload's fetch went (worker/protocol.ts). */
  payload?: PayloadFetch | undefined;
}

/** A message for `runBatch`: what the thread needs to decode and run it. */
export type BatchMessage = Omit<TaskItem, 'row'>;

interface PendingItem {
  item: TaskItem;
  resolve: (o: RunOutcome) => void;
  done: boolean;
  killedByWatchdog: boolean;
  warnedQueued: boolean;
  startedMs: number;
}

/** A task in progress: part or all of one receive batch, on one thread. */
interface Task {
  taskId: number;
  queue: string;
  queueArn: string;
  timeoutMs: number;
  items: PendingItem[];
  reruns: number;
}

/**
 * The piscina pool that runs handlers, one receive batch per task (split across threads when the
 * load model says its handlers take their thread's time). Tasks carry no piscina abort signal: a
 * task with one runs alone on its thread, which would cost the many tasks per thread that I/O-bound
 * handlers need. Deadlines live inside the thread (ctx.signal); only a handler that never yields has
 * its thread ended, by the watchdog here, which finds the thread in the run table.
 */
export class HandlerPool {
  readonly capacity: number;
  /** The topic for ctx.publish, sent with every task (set once it is resolved; null: publish rejects). */
  topicArn: string | null = null;
  /** The FIFO topic of ctx.publish's grouped events (issue 17); null: they go to the topic only. */
  fifoTopicArn: string | null = null;
  readonly #threads: number;
  readonly #pool: Piscina<TaskInput, TaskOutput>;
  readonly #table: RunTable;
  readonly #freeRows: number[];
  /** Each live thread's port (early outcomes, control), by threadId. */
  readonly #ports = new Map<number, MessagePort>();
  /** Set by abortAll (shutdown): a thread whose port arrives later is told too. */
  #abortReason: string | undefined;
  readonly #tasks = new Map<number, Task>();
  #nextTask = 1;
  readonly #log: Logger;
  readonly #graceMs: number;
  readonly #onBusyShare: ((queue: string, share: number) => void) | undefined;
  readonly #spreadTasks: () => boolean;
  /** Warm-up tasks must reach every thread. */
  #warming = false;
  /** Threads ended on purpose (watchdog, abandoned handlers): thread ids are not reused. */
  readonly #endedThreads = new Set<number>();
  /** Teardown acknowledgements, while a teardown waits for them. */
  #onTeardownDone: ((errors: string[]) => void) | undefined;
  readonly #onOffloaded: ((eventType: string | null) => void) | undefined;
  #destroyed: Promise<void> | undefined;

  constructor(o: PoolOptions) {
    this.capacity = o.threads * o.tasksPerThread;
    this.#threads = o.threads;
    this.#table = new RunTable(this.capacity, o.epochMs ?? Date.now());
    this.#freeRows = Array.from({ length: this.capacity }, (_, i) => this.capacity - 1 - i);
    this.#log = o.log;
    this.#onOffloaded = o.onOffloaded;
    this.#graceMs = o.worker.graceMs;
    this.#onBusyShare = o.onThreadBusyShare;
    this.#spreadTasks = o.spreadTasks ?? (() => true);
    const perThread = o.tasksPerThread;
    const workerData: WorkerData = {
      eventbus: { ...o.worker, runTable: this.#table.buffer, runTableEpochMs: this.#table.epochMs },
      threadData: o.threadData,
    };
    this.#pool = new Piscina<TaskInput, TaskOutput>({
      filename: new URL('../../worker/index.js', import.meta.url).href,
      minThreads: o.threads,
      maxThreads: o.threads,
      // Counts tasks, not messages: the dispatcher's slots bound the messages.
      concurrentTasksPerWorker: o.tasksPerThread,
      // Fast handlers are packed onto as few threads as their tasks need: one warm isolate does
      // the work, where spreading made every thread JIT-compile and run the same hot path (noop
      // bench, C = 50: one thread +12 % msgs/s and -15 % CPU per message against two; cpu bench:
      // -44 % with one, so handlers that take their thread's time are spread).
      loadBalancer: (_task, workers) => {
        const spread = this.#warming || this.#spreadTasks();
        let pick: (typeof workers)[number] | null = null;
        for (const w of workers) {
          if (w.terminating || w.destroyed || w.isRunningAbortableTask || w.currentUsage >= perThread) continue;
          if (spread && w.currentUsage === 0) return w;
          if (!pick || (spread ? w.currentUsage < pick.currentUsage : w.currentUsage > pick.currentUsage)) pick = w;
        }
        return pick;
      },
      // Idle threads must not block in Atomics.wait: handlers keep sockets and un-awaited work alive.
      atomics: 'disabled',
      idleTimeout: 60_000,
      workerData,
      ...(o.resourceLimits ? { resourceLimits: o.resourceLimits } : {}),
    });
    this.#pool.on('error', (err: unknown) => this.#log.error({ err }, 'worker thread error'));
    // Every thread (a replacement too) offers its own port as it starts.
    this.#pool.on('message', (m: unknown) => {
      if (isPortOffer(m)) this.#adopt(m.threadId, m.eventbusPort);
    });
  }

  #adopt(threadId: number, port: MessagePort): void {
    this.#ports.set(threadId, port);
    port.on('message', (m: FromThread) => {
      if (m.kind === 'outcomes') {
        const task = this.#tasks.get(m.taskId);
        if (task) this.#apply(task, m.results);
      } else if (m.kind === 'teardown-done') {
        this.#onTeardownDone?.(m.errors);
      } else if (m.kind === 'offloaded') {
        this.#onOffloaded?.(m.eventType);
      }
    });
    port.on('close', () => this.#ports.delete(threadId));
    port.unref();
    // The offer travels on parentPort, the tasks on piscina's own channel: a thread may be running a
    // task before its port arrives here. An abort already sent to the others must reach it too.
    if (this.#abortReason !== undefined) port.postMessage({ kind: 'abort-all', reason: this.#abortReason } satisfies ToThread);
  }

  #tell(m: ToThread): number {
    for (const port of this.#ports.values()) port.postMessage(m);
    return this.#ports.size;
  }

  get threads(): number {
    return this.#pool.threads.length;
  }

  /** Each live thread's event-loop utilization so far (the console's thread load). */
  threadReadings(): Array<{ id: string; elu: EventLoopUtilization }> {
    return this.#pool.threads.map((w) => ({ id: String(w.threadId), elu: w.performance.eventLoopUtilization() }));
  }

  /**
   * Whether more than `n` of a queue's messages handed to the threads have not started yet (in
   * transit, or queued behind other handlers on their thread). Scans the tasks in progress (at most
   * the pool's capacity of messages).
   */
  moreNotStartedThan(queue: string, n: number): boolean {
    let waiting = 0;
    for (const task of this.#tasks.values()) {
      if (task.queue !== queue) continue;
      for (const p of task.items) if (!p.done && this.#table.notStarted(p.item.row) && ++waiting > n) return true;
    }
    return false;
  }

  /**
   * Runs one receive's messages of one queue; a promise per message with its outcome (a dead thread
   * is `crashed`, a thread ended by the watchdog `timeout`). `split`: split the batch across the
   * threads (handlers that take time); otherwise one task carries them all (fast handlers, where the
   * task's own cost is what counts).
   */
  runBatch(queue: string, queueArn: string, timeoutMs: number, messages: BatchMessage[], split: boolean): Array<Promise<RunOutcome>> {
    const items: PendingItem[] = [];
    const promises = messages.map(
      (m) =>
        new Promise<RunOutcome>((resolve) => {
          const row = this.#freeRows.pop();
          // Free rows are cleared when they are freed (#resolve), and the table starts zeroed.
          if (row === undefined) throw new Error('handler pool: no free row (caps exceed pool capacity)');
          items.push({ item: { ...m, row }, resolve, done: false, killedByWatchdog: false, warnedQueued: false, startedMs: performance.now() });
        }),
    );
    const parts = split ? Math.min(items.length, this.#threads) : 1;
    const size = Math.ceil(items.length / parts);
    for (let i = 0; i < items.length; i += size) this.#start(queue, queueArn, timeoutMs, items.slice(i, i + size), 0);
    return promises;
  }

  #start(queue: string, queueArn: string, timeoutMs: number, items: PendingItem[], reruns: number): void {
    const task: Task = { taskId: this.#nextTask++, queue, queueArn, timeoutMs, items, reruns };
    this.#tasks.set(task.taskId, task);
    const limitMs = timeoutMs + this.#graceMs + WATCHDOG_MARGIN_MS;
    let watchdog: NodeJS.Timeout | undefined;
    const arm = (ms: number) => {
      watchdog = setTimeout(() => {
        let next = limitMs;
        for (const p of task.items) {
          if (p.done) continue;
          const row = p.item.row;
          if (this.#table.finishedWith(row) !== undefined) continue; // finished on its thread; the outcome is on its way
          const tid = this.#table.takenBy(row);
          const startedAt = this.#table.startedAtMs(row);
          if (tid === undefined || startedAt === undefined) {
            // Not started: queued behind a thread being replaced, or its setup still running.
            if (!p.warnedQueued) this.#log.warn({ queue, messageId: p.item.messageId }, 'handler has not started yet; waiting for a thread');
            p.warnedQueued = true;
            continue;
          }
          // Timed from the handler's own start, as the thread's timer is.
          const elapsed = Date.now() - startedAt;
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
      .run({ taskId: task.taskId, queue, queueArn, topicArn: this.topicArn, fifoTopicArn: this.fifoTopicArn, timeoutMs, items: items.map((p) => p.item) })
      .then(
        (out) => {
          if (out.threadBusyShare !== undefined) this.#onBusyShare?.(queue, out.threadBusyShare);
          this.#apply(task, out.results);
          if (out.abandonedOnThread !== undefined) this.#endThread(out.abandonedOnThread);
        },
        // Outcomes the thread sent just before it died may still be on its port: let them arrive
        // before deciding what the rest of the task became.
        (err: unknown) => new Promise<void>((resolve) => setTimeout(resolve, RESULTS_SETTLE_MS)).then(() => this.#failed(task, err)),
      )
      .finally(() => {
        clearTimeout(watchdog);
        // Early outcomes may still be on their way after the task's return: keep the task until all came.
        if (task.items.every((p) => p.done)) this.#tasks.delete(task.taskId);
      });
  }

  #apply(task: Task, results: ItemResults): void {
    for (const [i, out] of results) {
      const p = task.items[i];
      if (p) this.#resolve(p, out);
    }
    if (task.items.every((p) => p.done)) this.#tasks.delete(task.taskId);
  }

  #resolve(p: PendingItem, outcome: RunOutcome): void {
    if (p.done) return;
    p.done = true;
    this.#table.clear(p.item.row);
    this.#freeRows.push(p.item.row);
    p.resolve(outcome);
  }

  /** The task failed: its thread died (or was ended). Decide each unfinished message's outcome. */
  #failed(task: Task, err: unknown): void {
    const rerun: PendingItem[] = [];
    for (const p of task.items) {
      if (p.done) continue;
      const durationMs = performance.now() - p.startedMs;
      // The thread decodes events; for the few that never came back, decode here for labels and failure events.
      let base: RunOutcome = { result: 'crashed', durationMs, eventType: null, eventId: p.item.messageId };
      try {
        const { event } = decodeMessage({ ...p.item, attributes: p.item.attributes ?? {}, queueArn: task.queueArn });
        base = { ...base, eventType: event.type, eventId: event.id };
        // Its failure event continues the event's trace (the thread's span died with it).
        const sc = eventContext(event);
        if (sc) base = { ...base, ...traceExtensions(sc) };
      } catch {
        // decodeMessage does not throw; if it ever did, the labels fall back to the message id.
      }
      // Past its own timeout when a watchdog ended its thread (its own or a neighbour's, whichever
      // fired first): a timeout too; `crashed` would blame the neighbour.
      const row = p.item.row;
      const tid = this.#table.takenBy(row);
      const startedAt = this.#table.startedAtMs(row);
      const finished = this.#table.finishedWith(row);
      const overdue = tid !== undefined && this.#endedThreads.has(tid) && startedAt !== undefined && Date.now() - startedAt >= task.timeoutMs;
      if (p.killedByWatchdog || overdue) {
        this.#resolve(p, { ...base, result: 'timeout', error: `handler did not yield ${task.timeoutMs} ms after start; thread replaced` });
      } else if (finished !== undefined) {
        // Its handler finished but the outcome died with the thread: the run table kept the result.
        if (finished === 'success') this.#resolve(p, { ...base, result: finished });
        else this.#resolve(p, { ...base, result: finished, error: `${finished} (its details were lost with the thread: ${(err as Error)?.message ?? err})` });
      } else if (this.#table.notStarted(row) && task.reruns < UNSTARTED_RERUNS) {
        // Its handler never started: the thread died before it took this task (the worker takes
        // the rows first thing), or while a neighbour in the same task blocked it.
        this.#log.info({ queue: task.queue, messageId: p.item.messageId, err }, 'thread died before the handler started; running it on another thread');
        rerun.push(p);
      } else {
        this.#resolve(p, { ...base, result: 'crashed', error: `worker thread died: ${(err as Error)?.message ?? err}` });
      }
    }
    this.#tasks.delete(task.taskId);
    if (rerun.length) this.#start(task.queue, task.queueArn, task.timeoutMs, rerun, task.reruns + 1);
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
    // One task per thread: spread, each idle thread gets one.
    this.#warming = true;
    try {
      await Promise.all(Array.from({ length: threads }, () => this.#pool.run({ warmup: true, taskId: 0, queue: '', queueArn: '', topicArn: null, timeoutMs: 0, items: [] })));
    } finally {
      this.#warming = false;
    }
  }

  /** Aborts every running handler's signal (shutdown deadline). */
  abortAll(reason: string): void {
    this.#abortReason = reason;
    this.#tell({ kind: 'abort-all', reason });
  }

  /** Runs every thread's teardown hooks; resolves when each thread answered or at the deadline. */
  async teardown(timeoutMs: number): Promise<{ threads: number; acked: number; errors: string[] }> {
    const errors: string[] = [];
    let acked = 0;
    let expected = 0;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.#onTeardownDone = (e) => {
        acked++;
        errors.push(...e);
        if (acked >= expected) {
          clearTimeout(timer);
          resolve();
        }
      };
      expected = this.#tell({ kind: 'teardown' });
      if (expected === 0) {
        clearTimeout(timer);
        resolve();
      }
    });
    this.#onTeardownDone = undefined;
    return { threads: expected, acked, errors };
  }

  destroy(): Promise<void> {
    this.#destroyed ??= this.#pool.destroy().finally(() => {
      for (const port of this.#ports.values()) port.close();
      this.#ports.clear();
    });
    return this.#destroyed;
  }
}
