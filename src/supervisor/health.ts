/** Tracks how long SQS calls have been failing without a success in between (readiness). */
export class SqsHealth {
  #failingSinceMs: number | null = null;
  #lastError: string | null = null;

  ok(): void {
    this.#failingSinceMs = null;
    this.#lastError = null;
  }

  failed(err: unknown, now = Date.now()): void {
    this.#failingSinceMs ??= now;
    this.#lastError = err instanceof Error ? `${err.name}: ${err.message}` : String(err);
  }

  /** Milliseconds of uninterrupted failures, 0 when healthy. */
  failingForMs(now = Date.now()): number {
    return this.#failingSinceMs === null ? 0 : now - this.#failingSinceMs;
  }

  get lastError(): string | null {
    return this.#lastError;
  }
}
