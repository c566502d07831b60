import { stackForEvent, type ErrorInfo } from '../errors.js';

/** One failed message as the console shows it (README "Console"). */
export interface ConsoleFailure {
  /** When the supervisor settled it (ms since the epoch). */
  at: number;
  queue: string;
  eventType: string | null;
  eventId: string;
  messageId: string;
  receiveCount: number;
  result: string;
  error: string | null;
  /** The thrown error's stack with its `cause` chain, at most STACK_BYTES; null when nothing was thrown. */
  stack: string | null;
  /** The cluster child it happened in; absent outside a cluster. */
  child?: number;
}

/** The latest failures kept in memory per process (the primary's in a cluster). */
export const FAILURES_KEPT = 200;
/** A stack is kept to this many bytes (the failure event's is 2 KiB; the page has room for more). */
const STACK_BYTES = 8_192;

/** The outcome fields a failure is made of (the dispatcher's SettledMessage). */
export interface SettledLike {
  queue: string;
  messageId: string;
  receiveCount: number;
  result: string;
  error?: string | undefined;
  err?: ErrorInfo | undefined;
  eventType: string | null;
  eventId: string;
}

/** A failure record of a settled message; null for a success. */
export function failureOf(s: SettledLike, at = Date.now()): ConsoleFailure | null {
  if (s.result === 'success') return null;
  return {
    at,
    queue: s.queue,
    eventType: s.eventType,
    eventId: s.eventId,
    messageId: s.messageId,
    receiveCount: s.receiveCount,
    result: s.result,
    error: s.error ?? null,
    stack: s.err ? stackForEvent(s.err, STACK_BYTES) : null,
  };
}

/** A bounded ring of the latest failures, newest first when listed. */
export class FailureLog {
  readonly #items: ConsoleFailure[] = [];
  #next = 0;
  #total = 0;
  readonly #listeners = new Set<(f: ConsoleFailure) => void>();

  constructor(readonly capacity = FAILURES_KEPT) {}

  /** Calls `fn` with each failure added from now on (a cluster child forwards them to the primary). */
  subscribe(fn: (f: ConsoleFailure) => void): void {
    this.#listeners.add(fn);
  }

  add(f: ConsoleFailure): void {
    for (const l of this.#listeners) l(f);
    this.#total++;
    if (this.#items.length < this.capacity) this.#items.push(f);
    else this.#items[this.#next] = f;
    this.#next = (this.#next + 1) % this.capacity;
  }

  /** Failures recorded since the start (kept or not). */
  get total(): number {
    return this.#total;
  }

  /** The newest `limit` failures, newest first, optionally of one queue. */
  list(limit = this.capacity, queue?: string): ConsoleFailure[] {
    const n = this.#items.length;
    const out: ConsoleFailure[] = [];
    for (let i = 1; i <= n && out.length < limit; i++) {
      const f = this.#items[(this.#next - i + n) % n]!;
      if (queue === undefined || f.queue === queue) out.push(f);
    }
    return out;
  }
}
