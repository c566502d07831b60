/**
 * A key whose queue has had successful calls since, and that has not failed itself for this long,
 * is no longer failing: the operation simply has not been called again (an extension failed during
 * an outage and no message has needed one since). Otherwise its failure would hold /readyz at 503
 * forever after SQS recovered. An operation that keeps failing while the queue's receives work
 * (deletes denied, say) fails again within this window as long as work flows.
 */
export const RECOVERED_AFTER_MS = 10_000;

/**
 * Tracks how long SQS calls have been failing without a success in between (readiness), per key:
 * a queue (its receives), `<queue> <operation>` (the acker's batch calls), or '*' (start). One
 * queue failing forever (deleted, access denied) is not hidden by others working.
 */
export class SqsHealth {
  readonly #failingSinceMs = new Map<string, number>();
  readonly #lastFailureMs = new Map<string, number>();

  /** A call for `key` (a queue, `<queue> <operation>`, or '*' for calls that belong to none) succeeded. */
  ok(key = '*', now = Date.now()): void {
    this.#clear(key);
    // The queue answers again: operations of it that have been quiet since they failed are recovered.
    const queue = scopeOf(key);
    for (const [k, last] of this.#lastFailureMs) {
      if (k !== key && scopeOf(k) === queue && now - last >= RECOVERED_AFTER_MS) this.#clear(k);
    }
  }

  /**
   * A call for `key` failed. `startedAtMs` is when it was sent: a call that hung until its timeout
   * has been failing since then, not since the timeout.
   */
  failed(key = '*', startedAtMs = Date.now(), now = Math.max(startedAtMs, Date.now())): void {
    if (!this.#failingSinceMs.has(key)) this.#failingSinceMs.set(key, startedAtMs);
    this.#lastFailureMs.set(key, now);
  }

  /** The longest run of uninterrupted failures of any key, 0 when all are healthy. */
  failingForMs(now = Date.now()): number {
    let max = 0;
    for (const since of this.#failingSinceMs.values()) max = Math.max(max, now - since);
    return max;
  }

  /** The failing key (queue and operation) that has failed longest, without its error. */
  get failingKey(): string | null {
    let worst: [string, number] | undefined;
    for (const e of this.#failingSinceMs) if (!worst || e[1] < worst[1]) worst = e;
    return worst ? worst[0] : null;
  }

  #clear(key: string): void {
    this.#failingSinceMs.delete(key);
    this.#lastFailureMs.delete(key);
  }
}

/** The queue a key belongs to: `email ChangeMessageVisibilityBatch` → `email`. */
function scopeOf(key: string): string {
  const space = key.indexOf(' ');
  return space < 0 ? key : key.slice(0, space);
}
