import type { Metrics } from '#metrics/registry.js';
import type { Logger } from '../../log.js';
import type { Acker } from '../settle/acker.js';
import { retryDelaySec } from '../../backoff.js';
import type { Capacity } from '../receive/capacity.js';
import type { FailureEvents } from '../settle/failure-events.js';
import type { InFlight } from '../in-flight.js';
import type { HandlerPool, RunOutcome } from './pool.js';
import type { QueueRuntime, ReceivedMessage } from '../queue.js';

/** Label values per queue without an `events` filter, so odd bodies cannot grow the series without bound. */
const MAX_TYPE_LABELS = 100;
const TYPE_LABEL_RE = /^[A-Za-z0-9_.:-]{1,100}$/;

export interface DispatcherOptions {
  pool: HandlerPool;
  acker: Acker;
  inFlight: InFlight;
  capacity: Capacity;
  metrics: Metrics;
  failureEvents: FailureEvents;
  log: Logger;
  retry: { baseDelaySec: number; maxDelaySec: number };
}

/**
 * A queue's batches are split across the threads when its handlers take this long on average and
 * keep their thread busy meanwhile (CPU, not waiting on I/O: see HandlerPool.keepsThreadsBusy).
 */
const SPREAD_FROM_MS = 1;

/**
 * receive batch -> pool (decoded and run in the threads) -> settle each message. The caller has
 * taken one capacity slot per message; the slot is freed when the message's handler settled, and
 * the message counts as settling until SQS has its delete or visibility change (Capacity).
 */
export class Dispatcher {
  readonly #o: DispatcherOptions;
  #running = 0;
  #idleWaiters: Array<() => void> = [];
  readonly #seenTypes = new Map<string, Set<string>>();
  /** Mean handler duration per queue (exponentially weighted), to choose how to split a batch. */
  readonly #meanMs = new Map<string, number>();
  /** Messages per queue whose handler has not settled yet. */
  readonly #handling = new Map<string, number>();

  constructor(options: DispatcherOptions) {
    this.#o = options;
  }

  /** Set at the shutdown deadline: what fails from now on was cut short, so it is released, not retried later. */
  releaseFailures = false;

  /**
   * Whether a queue's handlers take their thread's time: ≥ 1 ms on average with the thread's event
   * loop busy meanwhile (CPU, not I/O waits). Such batches are split across the threads, and their
   * completions come one by one, so receives and deletes wait a little to fill. `unknown`: the
   * answer before the first outcome.
   */
  cpuBound(queue: string, unknown = false): boolean {
    const mean = this.#meanMs.get(queue);
    if (mean === undefined) return unknown;
    return mean >= SPREAD_FROM_MS && this.#o.pool.keepsThreadsBusy(queue);
  }

  /**
   * Whether a CPU-bound queue's threads are busy with it for a while yet: some of its messages wait
   * on their thread for their handler to start. Not for other queues: a task in transit to its
   * thread also counts as not started, which held fast handlers' receives for nothing (noop bench
   * -5 %). (Waiting only while more than one per thread wait, so the receive is back before they
   * run dry, made 35 % more receives for no throughput in the cpu bench: CPU limits there.)
   */
  threadsStayBusy(queue: string): boolean {
    return this.cpuBound(queue) && this.#o.pool.moreUnstartedThan(queue, 0);
  }

  /**
   * Whether a queue's part DeleteMessageBatch should wait for company. CPU-bound handlers complete
   * one by one: wait while more of the queue's handlers run (counting held slots instead also
   * waited for receives in flight; requiring enough running to fill the batch let C = 10 never
   * wait: 172 vs 128 deletes per 1,000 in the cpu bench), unless the queue or the host is at its
   * settling bound (then receives wait on these deletes). Others complete in bunches.
   */
  holdsDeletes(queue: string): boolean {
    const c = this.#o.capacity;
    return this.cpuBound(queue) && this.handlersRunning(queue) > 0 && c.settlingOf(queue) < c.capOf(queue) && c.settlingTotal < c.globalCap;
  }

  /** A queue's messages whose handler has not settled yet (received slots waiting on SQS are not counted). */
  handlersRunning(queue: string): number {
    return this.#handling.get(queue) ?? 0;
  }

  /** Messages whose handler runs or whose settling with SQS is on its way. */
  get running(): number {
    return this.#running;
  }

  /** Resolves when no message is running or settling, or after `timeoutMs`; returns whether everything settled. */
  async idle(timeoutMs: number): Promise<boolean> {
    if (this.#running === 0) return true;
    let timer: NodeJS.Timeout | undefined;
    let waiter: (() => void) | undefined;
    const settled = await Promise.race([
      new Promise<boolean>((resolve) => this.#idleWaiters.push((waiter = () => resolve(true)))),
      new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs))),
    ]);
    clearTimeout(timer);
    this.#idleWaiters = this.#idleWaiters.filter((w) => w !== waiter);
    return settled;
  }

  /** Starts the handlers of one receive's messages; `visibleUntilMs` counts from when the receive was sent. */
  dispatchBatch(q: QueueRuntime, messages: ReceivedMessage[], visibleUntilMs: number): void {
    const { inFlight, metrics, pool } = this.#o;
    const n = messages.length;
    const labels = { queue: q.queue };
    const ids = messages.map((m) =>
      inFlight.add({ queue: q, messageId: m.messageId, receiptHandle: m.receiptHandle, visibilityTimeoutSec: q.handler.visibilityTimeoutSec, visibleUntilMs }),
    );
    metrics.inFlight.inc(labels, n);
    const now = Date.now();
    for (const m of messages) if (m.sentTimestampMs) metrics.age.observe(labels, Math.max(0, (now - m.sentTimestampMs) / 1000));
    this.#running += n;
    this.#handling.set(q.queue, this.handlersRunning(q.queue) + n);
    let outcomes: Array<Promise<RunOutcome>>;
    try {
      outcomes = pool.runBatch(
        q.queue,
        q.arn,
        q.handler.timeoutMs,
        messages.map((m) => ({ messageId: m.messageId, receiveCount: m.receiveCount, body: m.body, attributes: m.attributes, sentTimestampMs: m.sentTimestampMs })),
        this.cpuBound(q.queue, true),
      );
    } catch (err) {
      outcomes = messages.map((m) => Promise.resolve(crashed(m, err)));
    }
    for (let i = 0; i < n; i++) {
      const m = messages[i]!;
      const id = ids[i]!;
      outcomes[i]!.then(
        (o) => this.#settle(q, m, id, o),
        (err: unknown) => this.#settle(q, m, id, crashed(m, err)),
      );
    }
  }

  /** A bounded `event_type` label: declared types as is, others `other`, at most 100 per queue without a filter. */
  #typeLabel(q: QueueRuntime, type: string | null): string {
    if (type === null) return 'none';
    if (q.handler.events) return q.handler.events.includes(type) ? type : 'other';
    let seen = this.#seenTypes.get(q.queue);
    if (!seen) this.#seenTypes.set(q.queue, (seen = new Set()));
    if (seen.has(type)) return type;
    if (seen.size < MAX_TYPE_LABELS && TYPE_LABEL_RE.test(type)) {
      seen.add(type);
      return type;
    }
    return 'other';
  }

  async #settle(q: QueueRuntime, m: ReceivedMessage, id: number, outcome: RunOutcome): Promise<void> {
    const { inFlight, capacity, metrics, log } = this.#o;
    const mean = this.#meanMs.get(q.queue);
    this.#meanMs.set(q.queue, mean === undefined ? outcome.durationMs : mean * 0.9 + outcome.durationMs * 0.1);
    // The handler is done: its slot takes the next message while SQS settles this one.
    this.#handling.set(q.queue, this.handlersRunning(q.queue) - 1);
    capacity.settle(q.queue);
    // Log fields, made only when a line is written (not per message on the success path).
    const fields = () => ({ queue: q.queue, messageId: m.messageId, eventType: outcome.eventType, receiveCount: m.receiveCount });
    try {
      metrics.duration.observe({ queue: q.queue }, outcome.durationMs / 1000);
      metrics.results.inc({ queue: q.queue, event_type: this.#typeLabel(q, outcome.eventType), result: outcome.result });
      if (outcome.result === 'success') {
        if (log.isLevelEnabled('debug')) {
          log.debug({ ...fields(), durationMs: Math.round(outcome.durationMs) }, 'handled');
        }
        const entry = inFlight.get(id);
        if (entry) entry.deleting = true;
        // No extension may reach SQS after the delete: its receipt handle is gone by then
        // (ReceiptHandleIsInvalid, counted as an SQS error), which a slow network makes common.
        if (entry?.extension) await inFlight.quiesce(id);
        else if (entry) entry.closing = true;
        try {
          await this.#o.acker.delete(q, m.receiptHandle);
          metrics.deleted.inc({ queue: q.queue });
        } catch (err) {
          log.warn({ ...fields(), err }, 'delete failed; the message will be delivered again');
        }
        return;
      }
      // Stop extending first: a late extension must not undo the backoff or a release.
      if (!(await inFlight.quiesce(id))) return; // released by shutdown already
      if (this.releaseFailures) {
        log.info({ ...fields(), result: outcome.result }, 'released at shutdown');
        metrics.released.inc({ queue: q.queue, reason: 'shutdown' });
        await this.#o.acker.changeVisibility(q, m.receiptHandle, 0).catch((err: unknown) => log.warn({ ...fields(), err }, 'release failed'));
        return;
      }
      const delaySec = retryDelaySec(m.receiveCount, this.#o.retry.baseDelaySec, this.#o.retry.maxDelaySec);
      const atMax = m.receiveCount >= q.handler.maxReceiveCount;
      log.warn(
        { ...fields(), result: outcome.result, error: outcome.error, retryInSec: delaySec, lastAttempt: atMax },
        atMax ? 'handler failed; the next receive moves the message to the DLQ' : 'handler failed; will retry',
      );
      this.#o.failureEvents.report({
        queue: q.queue,
        eventType: outcome.eventType,
        eventId: outcome.eventId,
        messageId: m.messageId,
        receiveCount: m.receiveCount,
        result: outcome.result,
        error: outcome.error ?? null,
      });
      try {
        await this.#o.acker.changeVisibility(q, m.receiptHandle, delaySec);
      } catch (err) {
        log.warn({ ...fields(), err }, 'backoff not set; the message comes back after its visibility timeout');
      }
    } finally {
      // Released here, exactly once: the message is settled with SQS (deleted or its visibility
      // set), or given up on.
      inFlight.remove(id);
      metrics.inFlight.dec({ queue: q.queue });
      capacity.settled(q.queue);
      if (--this.#running === 0) for (const w of this.#idleWaiters.splice(0)) w();
    }
  }
}

function crashed(m: ReceivedMessage, err: unknown): RunOutcome {
  return { result: 'crashed', error: `dispatch failed: ${(err as Error)?.message ?? err}`, durationMs: 0, eventType: null, eventId: m.messageId };
}
