import type { Logger } from '../../log.js';
import type { Publisher } from '../../publisher/index.js';
import type { HandlerResult } from '../../types.js';

export const TASK_WORKER_FAILED = 'TASK_WORKER_FAILED';

/** The data of a TASK_WORKER_FAILED event (SPEC "Failure events"). */
export interface FailureEventData {
  queue: string;
  eventType: string | null;
  eventId: string;
  messageId: string;
  receiveCount: number;
  result: Exclude<HandlerResult, 'success'>;
  /** `name: message` of what was thrown, or what went wrong. */
  error: string | null;
  /** The stack of what was thrown and of its causes, at most 2 KiB; null when nothing with a stack was thrown. */
  stack: string | null;
}

/**
 * Publishes TASK_WORKER_FAILED for non-success results, at most `maxPerSecond` per queue (a token
 * bucket); the rest are counted. Never for an event that is itself TASK_WORKER_FAILED, which would loop.
 */
export class FailureEvents {
  readonly #buckets = new Map<string, { tokens: number; atMs: number }>();
  readonly #pending = new Set<Promise<unknown>>();

  constructor(
    private readonly o: {
      enabled: boolean;
      maxPerSecond: number;
      publisher: () => Publisher | null;
      log: Logger;
      onSuppressed(queue: string): void;
      now?: () => number;
    },
  ) {}

  /** `trace`: the failed message's context (its process span's, or the event's), which the failure event continues. */
  report(data: FailureEventData, trace?: { traceparent: string; tracestate?: string }): void {
    if (!this.o.enabled || data.eventType === TASK_WORKER_FAILED) return;
    const publisher = this.o.publisher();
    if (!publisher) return;
    if (!this.#take(data.queue)) {
      this.o.onSuppressed(data.queue);
      return;
    }
    const p = publisher
      .createEvent(TASK_WORKER_FAILED, data, trace ? { extensions: trace } : {})
      .catch((err: unknown) => this.o.log.warn({ queue: data.queue, messageId: data.messageId, err }, 'failure event not published'))
      .finally(() => this.#pending.delete(p));
    this.#pending.add(p);
  }

  /** Waits for failure events being published (shutdown). */
  async flush(): Promise<void> {
    await Promise.allSettled([...this.#pending]);
  }

  #take(queue: string): boolean {
    const now = (this.o.now ?? Date.now)();
    const max = this.o.maxPerSecond;
    const b = this.#buckets.get(queue) ?? { tokens: max, atMs: now };
    b.tokens = Math.min(max, b.tokens + ((now - b.atMs) / 1000) * max);
    b.atMs = now;
    this.#buckets.set(queue, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }
}
