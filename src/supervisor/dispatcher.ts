import type { Metrics } from '#metrics/registry.js';
import type { Logger } from '../log.js';
import type { Acker } from './acker.js';
import { retryDelaySec } from './backoff.js';
import type { Capacity } from './capacity.js';
import { decodeMessage } from './envelope.js';
import type { FailureEvents } from './failure-events.js';
import type { InFlight } from './in-flight.js';
import type { HandlerPool } from './pool.js';
import type { QueueRuntime, ReceivedMessage } from './queue.js';

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
 * message -> decode -> pool.run -> settle. The caller has taken one capacity slot per message; the
 * dispatcher gives it back exactly once, when the handler settled.
 */
export class Dispatcher {
  readonly #o: DispatcherOptions;
  readonly #running = new Set<Promise<void>>();
  readonly #seenTypes = new Map<string, Set<string>>();

  constructor(options: DispatcherOptions) {
    this.#o = options;
  }

  /** Set at the shutdown deadline: what fails from now on was cut short, so it is released, not retried later. */
  releaseFailures = false;

  get running(): number {
    return this.#running.size;
  }

  /** Resolves when no handler runs, or after `timeoutMs`; returns whether everything settled. */
  async idle(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (this.#running.size > 0) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([Promise.allSettled([...this.#running]), new Promise((r) => (timer = setTimeout(r, left)))]);
      clearTimeout(timer);
    }
    return true;
  }

  /** Starts a message's handler; `visibleUntilMs` counts from when its receive was sent. */
  dispatch(q: QueueRuntime, m: ReceivedMessage, visibleUntilMs: number): void {
    const p = this.#handle(q, m, visibleUntilMs).finally(() => this.#running.delete(p));
    this.#running.add(p);
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

  async #handle(q: QueueRuntime, m: ReceivedMessage, visibleUntilMs: number): Promise<void> {
    const { inFlight, capacity, metrics, pool, log } = this.#o;
    const id = inFlight.add({
      queue: q,
      messageId: m.messageId,
      receiptHandle: m.receiptHandle,
      visibilityTimeoutSec: q.handler.visibilityTimeoutSec,
      visibleUntilMs,
    });
    metrics.inFlight.inc({ queue: q.queue });
    let eventType: string | null = null;
    let eventId = m.messageId;
    try {
      let outcome;
      try {
        const { event } = decodeMessage({
          messageId: m.messageId,
          body: m.body,
          attributes: m.attributes,
          sentTimestampMs: m.sentTimestampMs,
          queueArn: q.arn,
        });
        eventType = event.type;
        eventId = event.id;
        if (m.sentTimestampMs) metrics.age.observe({ queue: q.queue }, Math.max(0, (Date.now() - m.sentTimestampMs) / 1000));
        outcome = await pool.run({ queue: q.queue, messageId: m.messageId, receiveCount: m.receiveCount, timeoutMs: q.handler.timeoutMs, event });
      } catch (err) {
        outcome = { result: 'crashed' as const, error: `dispatch failed: ${(err as Error)?.message ?? err}`, durationMs: 0 };
      }
      metrics.duration.observe({ queue: q.queue }, outcome.durationMs / 1000);
      metrics.results.inc({ queue: q.queue, event_type: this.#typeLabel(q, eventType), result: outcome.result });
      const fields = { queue: q.queue, messageId: m.messageId, eventType, receiveCount: m.receiveCount };
      if (outcome.result === 'success') {
        log.debug({ ...fields, durationMs: Math.round(outcome.durationMs) }, 'handled');
        const entry = inFlight.get(id);
        if (entry) entry.deleting = true;
        // No extension may reach SQS after the delete: its receipt handle is gone by then
        // (ReceiptHandleIsInvalid, counted as an SQS error), which a slow network makes common.
        await inFlight.quiesce(id);
        try {
          await this.#o.acker.delete(q, m.receiptHandle);
          metrics.deleted.inc({ queue: q.queue });
        } catch (err) {
          log.warn({ ...fields, err }, 'delete failed; the message will be delivered again');
        }
        return;
      }
      // Stop extending first: a late extension must not undo the backoff or a release.
      if (!(await inFlight.quiesce(id))) return; // released by shutdown already
      if (this.releaseFailures) {
        log.info({ ...fields, result: outcome.result }, 'released at shutdown');
        metrics.released.inc({ queue: q.queue, reason: 'shutdown' });
        await this.#o.acker.changeVisibility(q, m.receiptHandle, 0).catch((err: unknown) => log.warn({ ...fields, err }, 'release failed'));
        return;
      }
      const delaySec = retryDelaySec(m.receiveCount, this.#o.retry.baseDelaySec, this.#o.retry.maxDelaySec);
      const atMax = m.receiveCount >= q.handler.maxReceiveCount;
      log.warn(
        { ...fields, result: outcome.result, error: outcome.error, retryInSec: delaySec, lastAttempt: atMax },
        atMax ? 'handler failed; the next receive moves the message to the DLQ' : 'handler failed; will retry',
      );
      this.#o.failureEvents.report({
        queue: q.queue,
        eventType,
        eventId,
        messageId: m.messageId,
        receiveCount: m.receiveCount,
        result: outcome.result,
        error: outcome.error ?? null,
      });
      try {
        await this.#o.acker.changeVisibility(q, m.receiptHandle, delaySec);
      } catch (err) {
        log.warn({ ...fields, err }, 'backoff not set; the message comes back after its visibility timeout');
      }
    } finally {
      // The slot is held until the message is settled with SQS (deleted or its visibility set), so
      // what is in flight never exceeds the caps; released here, exactly once.
      inFlight.remove(id);
      metrics.inFlight.dec({ queue: q.queue });
      capacity.release(q.queue, 1);
    }
  }
}
