import type { Logger } from '../log.js';
import type { Acker, QueueRef } from './settle/acker.js';

/** A message received and not yet settled: what extension and release need. */
export interface InFlightEntry {
  queue: QueueRef;
  messageId: string;
  receiptHandle: string;
  visibilityTimeoutSec: number;
  /** When SQS will make the message visible again, counted from the moment the receive or extension was sent. */
  visibleUntilMs: number;
  /** An extension is being sent. */
  extending: boolean;
  /** Do not try again before this time after a failed extension. */
  retryAtMs: number;
  /** Settling: no more extensions (a late one would undo a backoff or a release). */
  closing: boolean;
  /** The extension being sent, if any. */
  extension: Promise<void> | null;
  /** Its handler succeeded and its delete is being sent: shutdown must not release it. */
  deleting: boolean;
}

export interface InFlightOptions {
  acker: Acker;
  log: Logger;
  onExtended(queue: string, count: number): void;
  now?: () => number;
}

/**
 * The registry of received-not-settled messages, with one self-rescheduling timer that extends
 * every entry when half its visibility timeout has passed, in ChangeMessageVisibilityBatch calls
 * (batched by the acker). An entry is extended until it is removed: after a delete succeeded, or
 * when the message is handed back.
 */
export class InFlight {
  readonly #o: InFlightOptions;
  readonly #now: () => number;
  readonly #entries = new Map<number, InFlightEntry>();
  #nextId = 1;
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
    for (const e of this.#entries.values()) if (e.queue.queue === queue) n++;
    return n;
  }

  add(e: Omit<InFlightEntry, 'extending' | 'retryAtMs' | 'closing' | 'extension' | 'deleting'>): number {
    const id = this.#nextId++;
    const entry: InFlightEntry = {
      queue: e.queue,
      messageId: e.messageId,
      receiptHandle: e.receiptHandle,
      visibilityTimeoutSec: e.visibilityTimeoutSec,
      visibleUntilMs: e.visibleUntilMs,
      extending: false,
      retryAtMs: 0,
      closing: false,
      extension: null,
      deleting: false,
    };
    this.#entries.set(id, entry);
    // Only the new entry can move the timer earlier: no scan of every entry per message.
    this.#scheduleAt(InFlight.dueAt(entry));
    return id;
  }

  get(id: number): InFlightEntry | undefined {
    return this.#entries.get(id);
  }

  /**
   * Stops extending an entry and waits for an extension already on its way, so the visibility
   * change that settles the message (backoff, release) is the last one SQS sees. The entry stays
   * registered; undefined when it is gone (released by shutdown).
   */
  async quiesce(id: number): Promise<InFlightEntry | undefined> {
    const e = this.#entries.get(id);
    if (!e) return undefined;
    e.closing = true;
    if (e.extension) await e.extension.catch(() => undefined);
    return this.#entries.get(id);
  }

  remove(id: number): InFlightEntry | undefined {
    const e = this.#entries.get(id);
    this.#entries.delete(id);
    return e;
  }

  /** Entries still registered (shutdown releases them). */
  entries(): Array<[number, InFlightEntry]> {
    return [...this.#entries.entries()];
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  static dueAt(e: InFlightEntry): number {
    return Math.max(e.visibleUntilMs - (e.visibilityTimeoutSec * 1000) / 2, e.retryAtMs);
  }

  #schedule(): void {
    if (this.#stopped) return;
    let next = Infinity;
    for (const e of this.#entries.values()) if (!e.extending && !e.closing) next = Math.min(next, InFlight.dueAt(e));
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
    for (const [id, e] of this.#entries) {
      if (e.extending || e.closing || InFlight.dueAt(e) > now) continue;
      e.extending = true;
      const sentAt = this.#now();
      e.extension = this.#o.acker.changeVisibility(e.queue, e.receiptHandle, e.visibilityTimeoutSec).then(
        () => {
          e.extending = false;
          e.extension = null;
          e.visibleUntilMs = sentAt + e.visibilityTimeoutSec * 1000;
          if (this.#entries.has(id)) this.#o.onExtended(e.queue.queue, 1);
          this.#schedule();
        },
        (err: unknown) => {
          e.extending = false;
          e.extension = null;
          e.retryAtMs = this.#now() + 1000;
          if (this.#entries.has(id)) {
            this.#o.log.warn({ queue: e.queue.queue, messageId: e.messageId, err }, 'visibility extension failed');
          }
          this.#schedule();
        },
      );
    }
    this.#schedule();
  }
}
