import type { Metrics } from '#metrics/registry.js';
import type { Logger } from '../../log.js';
import type { Acker } from '../settle/acker.js';
import { retryDelaySec } from '../../backoff.js';
import type { Capacity } from '../receive/capacity.js';
import type { FailureEvents } from '../settle/failure-events.js';
import type { InFlight, InFlightMessage } from '../in-flight.js';
import type { LoadModel } from './load-model.js';
import type { HandlerPool, RunOutcome } from './pool.js';
import type { QueueRuntime, ReceivedMessage } from '../queue.js';
import type { GroupGate } from './group-gate.js';
import { reviveError, stackForEvent, truncateUtf8 } from '../../errors.js';
import { DEAD_LETTER_REASON_ATTRIBUTE } from '../../event/index.js';
import { logIds } from '../../telemetry/w3c.js';
const MAX_REASON_BYTES = 1_024;
/** SQS: message attributes per message. */
const MAX_MESSAGE_ATTRIBUTES = 10;

/** Label values per queue without an `events` filter, so odd bodies cannot grow the series without bound. */
const MAX_TYPE_LABELS = 100;
const TYPE_LABEL_RE = /^[A-Za-z0-9_.:-]{1,100}$/;

export interface DispatcherOptions {
  pool: HandlerPool;
  acker: Acker;
  inFlight: InFlight;
  capacity: Capacity;
  load: LoadModel;
  metrics: Metrics;
  failureEvents: FailureEvents;
  log: Logger;
  retry: { baseDelaySec: number; maxDelaySec: number };
  /** Queues whose messages pass a group gate before they run (ordered, groupConcurrency). */
  gates?: ReadonlyMap<string, GroupGate>;
  /** Each message's outcome, once settled with SQS (deleted, backed off or released); the testing kit's results. */
  onSettled?: ((settled: SettledMessage) => void) | undefined;
}

/** What `onSettled` observers get: the outcome of one message. */
export interface SettledMessage extends RunOutcome {
  queue: string;
  messageId: string;
  receiveCount: number;
}

/**
 * One receive batch's path after the receive: register (in flight) -> run (the pool) -> settle each
 * message with SQS (delete, or the backoff). The caller has taken one capacity slot per message;
 * the slot is freed when the message's handler finished, and the message counts as settling until
 * SQS has its delete or visibility change (Capacity).
 */
export class Dispatcher {
  readonly #o: DispatcherOptions;
  #open = 0;
  #idleWaiters: Array<() => void> = [];
  readonly #seenTypes = new Map<string, Set<string>>();
  #releaseFailures = false;

  constructor(options: DispatcherOptions) {
    this.#o = options;
  }

  /** From the shutdown deadline on: what fails was cut short, so it is released, not retried later. */
  releaseFailures(): void {
    this.#releaseFailures = true;
  }

  /** Messages whose handler runs or whose settling with SQS is on its way. */
  get open(): number {
    return this.#open;
  }

  /** Resolves when no message is running or settling, or after `timeoutMs`; returns whether everything settled. */
  async idle(timeoutMs: number): Promise<boolean> {
    if (this.#open === 0) return true;
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

  /**
   * Starts the handlers of messages received together (one receive's, or prefetched ones taking
   * free slots); `held` are their in-flight entries, registered when they were received.
   */
  dispatchBatch(q: QueueRuntime, messages: ReceivedMessage[], held: InFlightMessage[]): void {
    const gate = this.#o.gates?.get(q.queue);
    if (gate) gate.admit(messages, held);
    else this.run(q, messages, held);
  }

  /**
   * Starts the handlers now (the group gate's way in, past the gate); `done` hears of each message
   * once it is settled with SQS: true when it was deleted.
   */
  run(q: QueueRuntime, messages: ReceivedMessage[], held: InFlightMessage[], done?: (m: ReceivedMessage, deleted: boolean) => void): void {
    const { metrics, pool, load } = this.#o;
    const n = messages.length;
    const labels = { queue: q.queue };
    const now = Date.now();
    for (const m of messages) if (m.sentTimestampMs) metrics.age.observe(labels, Math.max(0, (now - m.sentTimestampMs) / 1000));
    this.#open += n;
    load.started(q.queue, n);
    let outcomes: Array<Promise<RunOutcome>>;
    try {
      outcomes = pool.runBatch(
        q.queue,
        q.arn,
        q.handler.timeoutMs,
        messages.map((m) =>
          m.awsTraceHeader === undefined
            ? { messageId: m.messageId, receiveCount: m.receiveCount, body: m.body, attributes: m.attributes, sentTimestampMs: m.sentTimestampMs }
            : { messageId: m.messageId, receiveCount: m.receiveCount, body: m.body, attributes: m.attributes, sentTimestampMs: m.sentTimestampMs, awsTraceHeader: m.awsTraceHeader },
        ),
        load.splitsBatch(q.queue),
      );
    } catch (err) {
      outcomes = messages.map((m) => Promise.resolve(crashed(m, err)));
    }
    for (let i = 0; i < n; i++) {
      const m = messages[i]!;
      const h = held[i]!;
      outcomes[i]!.then(
        (o) => this.#settle(q, m, h, o, done),
        (err: unknown) => this.#settle(q, m, h, crashed(m, err), done),
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

  async #settle(q: QueueRuntime, m: ReceivedMessage, held: InFlightMessage, outcome: RunOutcome, done?: (m: ReceivedMessage, deleted: boolean) => void): Promise<void> {
    const { inFlight, capacity, metrics, log } = this.#o;
    /** Whether SQS confirmed the delete (after success, or a dead-letter at once): the group gate's signal. */
    const state = { deleted: false };
    this.#o.load.finished(q.queue, outcome.durationMs);
    // The handler is done: its slot takes the next message while SQS settles this one.
    capacity.finish(q.queue);
    // Log fields, made only when a line is written (not per message on the success path).
    // trace_id/span_id: the message's process span, when one was recorded in its thread (issue 15).
    const fields = () => ({ queue: q.queue, messageId: m.messageId, eventType: outcome.eventType, receiveCount: m.receiveCount, ...(outcome.traced && outcome.traceparent ? logIds(outcome.traceparent) : {}) });
    try {
      metrics.duration.observe({ queue: q.queue }, outcome.durationMs / 1000);
      metrics.results.inc({ queue: q.queue, event_type: this.#typeLabel(q, outcome.eventType), result: outcome.result });
      if (outcome.payload) {
        // An offloaded message: its payload was read from S3 in the thread (README "Large events").
        if (outcome.payload.error === undefined) metrics.payloadFetch.observe({ queue: q.queue }, outcome.payload.fetchMs / 1000);
        else metrics.s3Errors.inc({ queue: q.queue, operation: 'GetObject' });
      }
      if (outcome.result === 'success') {
        if (log.isLevelEnabled('debug')) {
          log.debug({ ...fields(), durationMs: Math.round(outcome.durationMs) }, 'handled');
        }
        const extension = inFlight.beginDelete(held);
        if (extension) await extension;
        try {
          await this.#o.acker.delete(q, m.receiptHandle);
          metrics.deleted.inc({ queue: q.queue });
          state.deleted = true;
        } catch (err) {
          log.warn({ ...fields(), err }, 'delete failed; the message will be delivered again');
        }
        return;
      }
      // Stop extending first: a late extension must not undo the backoff or the release.
      if (!(await inFlight.quiesce(held))) return; // released by shutdown already
      // Read after the wait: the deadline may have passed meanwhile.
      if (this.#releaseFailures) {
        if (await inFlight.release(held, 'shutdown')) log.info({ ...fields(), result: outcome.result }, 'released at shutdown');
        return;
      }
      this.#o.failureEvents.report({
        queue: q.queue,
        eventType: outcome.eventType,
        eventId: outcome.eventId,
        messageId: m.messageId,
        receiveCount: m.receiveCount,
        result: outcome.result,
        error: outcome.error ?? null,
        stack: outcome.err ? stackForEvent(outcome.err) : null,
      }, outcome.traceparent ? { traceparent: outcome.traceparent, ...(outcome.tracestate ? { tracestate: outcome.tracestate } : {}) } : undefined);
      // `error`, the one-line reason (a stable field to search logs by, as before), and what was
      // thrown for pino's err serializer (type, message, stack, causes).
      const why = outcome.err ? { error: outcome.error, err: reviveError(outcome.err) } : { error: outcome.error };
      if ((outcome.result === 'rejected' || outcome.result === 'invalid') && (await this.#deadLetter(q, m, outcome, fields, why, state))) return;
      // A payload that still cannot be fetched on the last receive: dead-lettered here, with the
      // reason, rather than moved by SQS's redrive without one.
      if (outcome.payload?.error !== undefined && m.receiveCount >= q.handler.maxReceiveCount && (await this.#deadLetter(q, m, outcome, fields, why, state))) return;
      const delaySec = retryDelaySec(m.receiveCount, this.#o.retry.baseDelaySec, this.#o.retry.maxDelaySec);
      const atMax = m.receiveCount >= q.handler.maxReceiveCount;
      log.warn(
        { ...fields(), result: outcome.result, ...why, retryInSec: delaySec, lastAttempt: atMax },
        atMax ? 'handler failed; the next receive moves the message to the DLQ' : 'handler failed; will retry',
      );
      try {
        await this.#o.acker.changeVisibility(q, m.receiptHandle, delaySec);
      } catch (err) {
        log.warn({ ...fields(), err }, 'backoff not set; the message comes back after its visibility timeout');
      }
    } finally {
      // Exactly once: the message is settled with SQS (deleted or its visibility set), released,
      // or given up on.
      inFlight.remove(held);
      capacity.settled(q.queue);
      if (this.#o.onSettled) {
        try {
          this.#o.onSettled({ ...outcome, queue: q.queue, messageId: m.messageId, receiveCount: m.receiveCount });
        } catch (err) {
          log.warn({ ...fields(), err }, 'onSettled observer threw');
        }
      }
      if (done) {
        try {
          done(m, state.deleted);
        } catch (err) {
          log.error({ ...fields(), err }, 'group gate failed on a settled message');
        }
      }
      if (--this.#open === 0) for (const w of this.#idleWaiters.splice(0)) w();
    }
  }

  /**
   * Dead-letters a message at once (SPEC: `rejected`, `invalid`): sends it to its DLQ with its body
   * and attributes plus the reason, then deletes it. False when it could not be sent (no DLQ, the
   * send failed): the caller retries it as any failure, so nothing is lost.
   */
  async #deadLetter(
    q: QueueRuntime,
    m: ReceivedMessage,
    outcome: RunOutcome,
    fields: () => Record<string, unknown>,
    why: Record<string, unknown>,
    state: { deleted: boolean },
  ): Promise<boolean> {
    const { log, metrics, acker } = this.#o;
    const reason = truncateUtf8(`${outcome.result}: ${outcome.error ?? ''}`, MAX_REASON_BYTES);
    const detail = { ...fields(), result: outcome.result, ...why, ...(outcome.issues ? { issues: outcome.issues } : {}) };
    if (!q.dlqUrl) {
      log.warn({ ...detail, dlq: q.handler.dlqName }, 'cannot dead-letter: the queue has no DLQ; the message is retried');
      return false;
    }
    const attributes = { ...m.sqsAttributes };
    // SQS takes 10 message attributes: a message that has them all goes without the reason (it is logged).
    if (Object.keys(attributes).length < MAX_MESSAGE_ATTRIBUTES) attributes[DEAD_LETTER_REASON_ATTRIBUTE] = { DataType: 'String', StringValue: reason };
    try {
      // A FIFO DLQ (an ordered handler's) takes a group and a deduplication id: the message's own.
      const fifo = q.handler.ordered ? { groupId: m.groupId ?? m.messageId, deduplicationId: m.messageId } : {};
      await acker.sendToDlq({ queue: q.queue, url: q.dlqUrl }, { body: m.body, attributes, ...fifo });
    } catch (err) {
      log.warn({ ...detail, sendError: err }, 'dead-letter send failed; the message is retried');
      return false;
    }
    const payload = outcome.result === 'error' && outcome.payload?.error !== undefined;
    metrics.deadLettered.inc({ queue: q.queue, reason: payload ? 'payload' : outcome.result });
    log.warn(
      { ...detail, dlq: q.handler.dlqName, reason },
      payload
        ? 'offloaded payload not fetched on the last receive; dead-lettered'
        : outcome.result === 'invalid'
          ? 'event failed its schema; dead-lettered at once'
          : 'handler rejected the message (NonRetryableError); dead-lettered at once',
    );
    try {
      await acker.delete(q, m.receiptHandle);
      metrics.deleted.inc({ queue: q.queue });
      state.deleted = true;
    } catch (err) {
      log.warn({ ...fields(), err }, 'dead-lettered but not deleted: it will be delivered again (and dead-lettered again)');
    }
    return true;
  }
}

function crashed(m: ReceivedMessage, err: unknown): RunOutcome {
  return { result: 'crashed', error: `dispatch failed: ${(err as Error)?.message ?? err}`, durationMs: 0, eventType: null, eventId: m.messageId };
}
