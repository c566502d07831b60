// Webhook deliveries accepted once: an idempotency record per (source, delivery id). Kept in the
// archive store when the archive is on (every host sees it), else in a bounded in-memory LRU per
// process (best-effort: another host or a restarted process does not see it).

/** `new`: this request holds the delivery (publish, then complete or release it). `done`: already published. `pending`: another request holds it now. */
export type DeliveryClaim = 'new' | 'done' | 'pending';

/** Where delivery records live. Times are ms since the epoch, passed in (the caller's clock). */
export interface DeliveryLedger {
  /** Claims a delivery for `leaseMs` (a holder that dies frees it when the lease ends). */
  claimDelivery(source: string, id: string, nowMs: number, leaseMs: number): Promise<DeliveryClaim>;
  /** Marks a claimed delivery published; a repeat is `done` until `nowMs + ttlMs`. */
  completeDelivery(source: string, id: string, nowMs: number, ttlMs: number): Promise<void>;
  /** Drops a claim that was not published, so the sender's retry is accepted. */
  releaseDelivery(source: string, id: string): Promise<void>;
}

/** How often a store deletes expired records (on a claim, at most this often). */
export const PURGE_INTERVAL_MS = 60_000;

interface Entry {
  done: boolean;
  expiresMs: number;
}

/** The in-memory ledger: at most `maxEntries` records, the least recently used dropped first. */
export class MemoryDeliveryLedger implements DeliveryLedger {
  readonly #entries = new Map<string, Entry>();
  readonly #maxEntries: number;

  constructor(maxEntries: number) {
    if (!Number.isInteger(maxEntries) || maxEntries < 1) throw new TypeError('maxEntries must be an integer >= 1');
    this.#maxEntries = maxEntries;
  }

  get size(): number {
    return this.#entries.size;
  }

  async claimDelivery(source: string, id: string, nowMs: number, leaseMs: number): Promise<DeliveryClaim> {
    const key = keyOf(source, id);
    const e = this.#entries.get(key);
    if (e && e.expiresMs > nowMs) {
      this.#touch(key, e);
      return e.done ? 'done' : 'pending';
    }
    this.#touch(key, { done: false, expiresMs: nowMs + leaseMs });
    return 'new';
  }

  async completeDelivery(source: string, id: string, nowMs: number, ttlMs: number): Promise<void> {
    const key = keyOf(source, id);
    this.#touch(key, { done: true, expiresMs: nowMs + ttlMs });
  }

  async releaseDelivery(source: string, id: string): Promise<void> {
    const key = keyOf(source, id);
    if (this.#entries.get(key)?.done === false) this.#entries.delete(key);
  }

  /** (Re)inserts at the most recent end; drops from the least recent end past the bound. */
  #touch(key: string, e: Entry): void {
    this.#entries.delete(key);
    this.#entries.set(key, e);
    while (this.#entries.size > this.#maxEntries) this.#entries.delete(this.#entries.keys().next().value!);
  }
}

function keyOf(source: string, id: string): string {
  return `${source}\0${id}`;
}
