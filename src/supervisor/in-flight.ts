import type { Metrics } from '#metrics/registry.js';
import type { Logger } from '../log.js';
import type { QueueRef } from './queue.js';

/** What the registry asks of SQS: one visibility change (batched by the acker). */
export interface VisibilitySetter {
  changeVisibility(q: QueueRef, receiptHandle: string, visibilityTimeoutSec: number): Promise<void>;
}

/**
 * Why a message is handed back before its handler settled it (`eventbus_messages_released_total{reason}`);
 * `group`: an earlier message of its group failed on an ordered queue (the group gate).
 */
export type ReleaseReason = 'shutdown' | 'capacity' | 'group';

/**
 * A message received and not yet settled with SQS. Read-only outside this module: its state
 * changes only through the registry's methods (extend, beginDelete, quiesce, release, remove).
 */
export interface InFlightMessage {
  readonly queue: QueueRef;
  readonly messageId: string;
  readonly receiptHandle: string;
  readonly visibilityTimeoutSec: number;
  /** When SQS will make the message visible again, counted from when the receive or extension was sent. */
  readonly visibleUntilMs: number;
}

/** The registry's own view of an entry. */
interface Entry extends InFlightMessage {
  visibleUntilMs: number;
  /** Do not try again before this time after a failed extension. */
  retryAtMs: number;
  /** The extension being sent, if any. */
  extension: Promise<void> | null;
  /** Settling or released: no more extensions (a late one would undo a backoff or a release). */
  closing: boolean;
  /** Its handler succeeded and its delete is being sent: shutdown must not release it. */
  deleting: boolean;
  registered: boolean;
}

export interface InFlightOptions {
  sqs: VisibilitySetter;
  log: Logger;
  metrics: Pick<Metrics, 'inFlight' | 'released' | 'extensions'>;
  now?: () => number;
}

/**
 * The registry of received-not-settled messages (`eventbus_messages_in_flight`), with one
 * self-rescheduling timer that extends every entry when half its visibility timeout has passed, in
 * ChangeMessageVisibilityBatch calls (batched by the acker). An entry is extended until it settles
 * or is released. Release (visibility 0, so another host takes the message now) is written here
 * once, for shutdown and for capacity.
 */
export class InFlight {
  readonly #o: InFlightOptions;
  readonly #now: () => number;
  readonly #entries = new Set<Entry>();
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Infinity;
  #stopped = false;

  constructor(options: InFlightOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  get size(): number {
    return this.#entries.size;
  }

  countOf(queue: string): number {
    let n = 0;
    for (const e of this.#entries) if (e.queue.queue === queue) n++;
    return n;
  }

  /** Registers one receive's messages; `visibleUntilMs` counts from when the receive was sent. */
  addAll(q: QueueRef, messages: ReadonlyArray<{ messageId: string; receiptHandle: string }>, visibilityTimeoutSec: number, visibleUntilMs: number): InFlightMessage[] {
    const out = messages.map((m) => this.#register(q, m, visibilityTimeoutSec, visibleUntilMs));
    this.#o.metrics.inFlight.inc({ queue: q.queue }, messages.length);
    return out;
  }

  #register(q: QueueRef, m: { messageId: string; receiptHandle: string }, visibilityTimeoutSec: number, visibleUntilMs: number): Entry {
    const entry: Entry = {
      queue: q,
      messageId: m.messageId,
      receiptHandle: m.receiptHandle,
      visibilityTimeoutSec,
      visibleUntilMs,
      retryAtMs: 0,
      extension: null,
      closing: false,
      deleting: false,
      registered: true,
    };
    this.#entries.add(entry);
    // Only the new entry can move the timer earlier: no scan of every entry per message.
    this.#scheduleAt(dueAt(entry));
    return entry;
  }

  /**
   * Its handler succeeded: no more extensions, and shutdown must not release it (that would run it
   * again). Resolves once an extension already on its way has returned (no extension may reach SQS
   * after the delete: its receipt handle is gone by then, ReceiptHandleIsInvalid); undefined when
   * none is, so the hot path does not wait a turn for nothing.
   */
  beginDelete(m: InFlightMessage): Promise<void> | undefined {
    const e = m as Entry;
    e.deleting = true;
    e.closing = true;
    return e.extension ? e.extension.catch(() => undefined) : undefined;
  }

  /**
   * Stops extending a message and waits for an extension already on its way, so the visibility
   * change that settles it (backoff, release) is the last one SQS sees. False when it was released
   * meanwhile (by shutdown): the caller must not touch it.
   */
  async quiesce(m: InFlightMessage): Promise<boolean> {
    const e = m as Entry;
    if (!e.registered) return false;
    e.closing = true;
    if (e.extension) await e.extension.catch(() => undefined);
    return e.registered;
  }

  /** Settled with SQS (or given up on): forgets it. Idempotent. */
  remove(m: InFlightMessage): void {
    const e = m as Entry;
    if (!e.registered) return;
    e.registered = false;
    e.closing = true;
    this.#entries.delete(e);
    this.#o.metrics.inFlight.dec({ queue: e.queue.queue });
  }

  /**
   * Hands a message back (visibility 0) so any host takes it now, instead of after its visibility
   * timeout. Not one whose delete is on its way. Never rejects: a failed release is logged, and the
   * message comes back after its visibility timeout. Resolves false when there was nothing to release.
   */
  async release(m: InFlightMessage, reason: ReleaseReason): Promise<boolean> {
    const e = m as Entry;
    if (e.deleting || !(await this.quiesce(e))) return false;
    // Another release, or a successful handler's delete, may have come while the extension returned.
    if (!e.registered || e.deleting) return false;
    this.remove(e);
    this.#o.metrics.released.inc({ queue: e.queue.queue, reason });
    try {
      await this.#o.sqs.changeVisibility(e.queue, e.receiptHandle, 0);
    } catch (err) {
      this.#o.log.warn({ queue: e.queue.queue, messageId: e.messageId, reason, err }, 'release failed; the message comes back after its visibility timeout');
    }
    return true;
  }

  /** Releases every registered message whose delete is not on its way; resolves to how many. */
  async releaseAll(reason: ReleaseReason): Promise<number> {
    const released = await Promise.all([...this.#entries].map((e) => this.release(e, reason)));
    return released.filter(Boolean).length;
  }

  /** No more extensions (shutdown, after the drain). */
  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(): void {
    if (this.#stopped) return;
    let next = Infinity;
    for (const e of this.#entries) if (!e.extension && !e.closing) next = Math.min(next, dueAt(e));
    this.#scheduleAt(next);
  }

  #scheduleAt(next: number): void {
    if (this.#stopped || next === Infinity) return;
    if (this.#timer && next >= this.#timerAt) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timerAt = next;
    this.#timer = setTimeout(() => this.#tick(), Math.max(0, next - this.#now()));
    this.#timer.unref();
  }

  #tick(): void {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const now = this.#now();
    for (const e of this.#entries) if (!e.extension && !e.closing && dueAt(e) <= now) this.#extend(e);
    this.#schedule();
  }

  #extend(e: Entry): void {
    const sentAt = this.#now();
    e.extension = this.#o.sqs.changeVisibility(e.queue, e.receiptHandle, e.visibilityTimeoutSec).then(
      () => {
        e.extension = null;
        e.visibleUntilMs = sentAt + e.visibilityTimeoutSec * 1000;
        if (e.registered) this.#o.metrics.extensions.inc({ queue: e.queue.queue });
        this.#schedule();
      },
      (err: unknown) => {
        e.extension = null;
        e.retryAtMs = this.#now() + 1000;
        if (e.registered) this.#o.log.warn({ queue: e.queue.queue, messageId: e.messageId, err }, 'visibility extension failed');
        this.#schedule();
      },
    );
  }
}

/** When an entry is next due for extension: half its visibility timeout before it expires. */
function dueAt(e: Entry): number {
  return Math.max(e.visibleUntilMs - (e.visibilityTimeoutSec * 1000) / 2, e.retryAtMs);
}
