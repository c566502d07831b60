/**
 * A queue's handlers are CPU-bound when they take this long on average (ms) and keep their thread
 * busy meanwhile. Below it a task's own cost (two postMessages) outweighs a split.
 */
export const CPU_BOUND_FROM_MS = 1;
/**
 * The share of its tasks' time a thread's event loop must be busy (performance.eventLoopUtilization,
 * measured in the thread) for the queue to be CPU-bound. The io bench's handler (await 20 ms) was
 * being split by duration alone: 5-8 % more CPU per message (3 interleaved pairs).
 */
export const BUSY_SHARE_FROM = 0.5;
/**
 * A queue receives ahead of its free slots (prefetch) only while its handlers hold a slot at least
 * this long on average (ms), or before the first is known. Faster handlers free their slot before a
 * receive could come back: a prefetch then only adds work (noop bench, C = 50: prefetch 10 gave
 * -10 % msgs/s and +9 % CPU per message against none, 3 interleaved runs).
 */
export const PREFETCH_FROM_MS = 1;
/** Weight of the newest duration in the mean (EWMA). */
const DURATION_WEIGHT = 0.1;
/** Weight of the newest busy share (EWMA). */
const BUSY_SHARE_WEIGHT = 0.2;

/** What the load model needs to know of the rest of the supervisor (asked, never stored). */
export interface LoadSignals {
  /** Whether some of the queue's messages handed to the threads have not started yet (HandlerPool). */
  notStarted(queue: string): boolean;
  /** Whether the queue and the host are below their settling bound (Capacity): receives are not waiting on deletes. */
  belowSettlingBound(queue: string): boolean;
}

/**
 * The load model: one place that says how a queue's handlers use their threads, and the decisions
 * that follow from it. Every run-time heuristic for CPU-bound queues lives here, with its measured
 * reason; the pool, the poller and the acker ask.
 *
 * - `splitsBatch`: split a receive batch across the threads (else one task carries it).
 * - `holdsFill`: keep a receive's fill window open (up to FILL_MAX_MS in the poller).
 * - `holdsDeletes`: let a part DeleteMessageBatch wait for company (up to MAX_DELETE_LINGER_MS).
 * - `prefetches`: receive ahead of free slots (prefetch) at all.
 */
export class LoadModel {
  readonly #signals: LoadSignals;
  /** Mean handler duration per queue, ms (exponentially weighted). */
  readonly #meanMs = new Map<string, number>();
  /** How busy a queue's tasks kept their thread's event loop, 0-1 (exponentially weighted). */
  readonly #busyShare = new Map<string, number>();
  /** Handlers running per queue: started and not yet finished. */
  readonly #running = new Map<string, number>();

  constructor(signals: LoadSignals) {
    this.#signals = signals;
  }

  /** `n` of a queue's handlers were handed to the threads. */
  started(queue: string, n: number): void {
    this.#running.set(queue, this.running(queue) + n);
  }

  /** One of a queue's handlers finished after `durationMs`. */
  finished(queue: string, durationMs: number): void {
    this.#running.set(queue, this.running(queue) - 1);
    const mean = this.#meanMs.get(queue);
    this.#meanMs.set(queue, mean === undefined ? durationMs : mean + (durationMs - mean) * DURATION_WEIGHT);
  }

  /** One of a queue's tasks kept its thread's event loop busy for this share (0-1) of its time. */
  taskBusyShare(queue: string, share: number): void {
    if (!Number.isFinite(share)) return;
    const b = this.#busyShare.get(queue);
    this.#busyShare.set(queue, b === undefined ? share : b + (share - b) * BUSY_SHARE_WEIGHT);
  }

  /** A queue's handlers running now (handed to the threads, not finished). */
  running(queue: string): number {
    return this.#running.get(queue) ?? 0;
  }

  /**
   * Whether a queue's handlers take their thread's time: ≥ 1 ms on average with the thread's event
   * loop busy meanwhile (CPU, not I/O waits). `unknown`: the answer before the first outcome. The
   * busy share is measured per thread, so a queue sharing threads with a CPU-bound one reads as
   * busy too (it then gets split batches: the cost of a task per thread, nothing worse).
   */
  cpuBound(queue: string, unknown = false): boolean {
    const mean = this.#meanMs.get(queue);
    if (mean === undefined) return unknown;
    return mean >= CPU_BOUND_FROM_MS && (this.#busyShare.get(queue) ?? 1) >= BUSY_SHARE_FROM;
  }

  /** Whether a flowing queue may receive ahead of its free slots (its handlers hold them a while, or are not known yet). */
  prefetches(queue: string): boolean {
    const mean = this.#meanMs.get(queue);
    return mean === undefined || mean >= PREFETCH_FROM_MS;
  }

  /**
   * Split a receive batch across the threads: for CPU-bound handlers (and before the first outcome,
   * so a first batch of slow handlers does not queue on one thread). Handlers that mostly wait run
   * concurrently on one thread just as well, and a split costs a task per thread.
   */
  splitsBatch(queue: string): boolean {
    return this.cpuBound(queue, true);
  }

  /**
   * Keep a receive's fill window open while a CPU-bound queue's threads are busy with it for a
   * while yet (some of its messages have not started): receiving early would only add calls (cpu
   * bench: 440 -> ~255 calls per 1,000 messages). Not for other queues: a task in transit to its
   * thread also counts as not started, which held fast handlers' receives for nothing (noop bench
   * -5 %). Waiting only while more than one per thread wait made 35 % more receives for no
   * throughput (CPU limits there).
   */
  holdsFill(queue: string): boolean {
    return this.cpuBound(queue) && this.#signals.notStarted(queue);
  }

  /**
   * Let a CPU-bound queue's part DeleteMessageBatch wait for company: its handlers finish one by
   * one. Wait while any of its handlers run (counting held slots instead also waited for receives in
   * flight; requiring enough running to fill the batch never waited at C = 10: 172 vs 128 deletes
   * per 1,000 in the cpu bench), unless the queue or the host is at its settling bound (receives
   * then wait on these deletes). Other queues' handlers finish in bunches.
   */
  holdsDeletes(queue: string): boolean {
    return this.cpuBound(queue) && this.running(queue) > 0 && this.#signals.belowSettlingBound(queue);
  }
}
