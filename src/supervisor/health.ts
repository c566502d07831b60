/**
 * Tracks, per queue, how long SQS calls have been failing without a success in between
 * (readiness). One queue failing forever (deleted, access denied) is not hidden by others working.
 */
export class SqsHealth {
  readonly #failingSinceMs = new Map<string, number>();
  readonly #lastError = new Map<string, string>();

  /** A call for `key` (a queue, or '*' for calls that belong to none) succeeded. */
  ok(key = '*'): void {
    this.#failingSinceMs.delete(key);
    this.#lastError.delete(key);
  }

  failed(err: unknown, key = '*', now = Date.now()): void {
    if (!this.#failingSinceMs.has(key)) this.#failingSinceMs.set(key, now);
    this.#lastError.set(key, err instanceof Error ? `${err.name}: ${err.message}` : String(err));
  }

  /** The longest run of uninterrupted failures of any queue, 0 when all are healthy. */
  failingForMs(now = Date.now()): number {
    let max = 0;
    for (const since of this.#failingSinceMs.values()) max = Math.max(max, now - since);
    return max;
  }

  /** The failing queue that has failed longest, with its last error. */
  get lastError(): string | null {
    let worst: [string, number] | undefined;
    for (const e of this.#failingSinceMs) if (!worst || e[1] < worst[1]) worst = e;
    if (!worst) return null;
    return `${worst[0] === '*' ? '' : `${worst[0]}: `}${this.#lastError.get(worst[0]) ?? ''}`;
  }
}
