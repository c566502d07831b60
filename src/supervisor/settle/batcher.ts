/** The message of the error `onError` gets for failed entries (the call itself succeeded). */
export const BATCH_ENTRIES_FAILED = 'batch entries failed';

/** One failed entry of a batch call: the error, and whether sending it again may help. */
export interface EntryFailure {
  error: Error;
  retryable: boolean;
}

interface Pending<T> {
  item: T;
  resolve: () => void;
  reject: (err: Error) => void;
}

export interface BatcherOptions<T> {
  /** Entries per call: 10 for every SQS batch API. */
  maxBatch: number;
  /** How long the first entry waits for company before the batch is sent. */
  lingerMs: number;
  /**
   * Asked when `lingerMs` is up with a part batch: true = more entries are on their way, wait
   * another `lingerMs` (up to `maxLingerMs` in all). A call of 10 costs what a call of 1 does.
   */
  hold?: (pending: number) => boolean;
  maxLingerMs?: number;
  /** Sends one batch; returns a failure per entry (null = done). Throwing fails the whole batch. */
  send(items: T[]): Promise<Array<EntryFailure | null>>;
  /** Whether a thrown (whole-call) error is worth another attempt. */
  isRetryable(err: unknown): boolean;
  /** Attempts per entry, including the first. */
  maxAttempts: number;
  /** Delay before attempt `n` (1-based retry number). */
  retryDelayMs(attempt: number): number;
  /** Called for every failed call or entry (metrics, logs). */
  onError?(err: unknown, items: T[]): void;
}

/**
 * Collects entries across callers into batch calls (DeleteMessageBatch, ChangeMessageVisibilityBatch),
 * retries failed entries with backoff, and settles each caller's promise with its own entry's outcome.
 */
export class Batcher<T> {
  readonly #o: BatcherOptions<T>;
  #pending: Pending<T>[] = [];
  #timer: NodeJS.Timeout | undefined;
  /** When the first pending entry arrived (the linger is counted from it). */
  #firstAt = 0;
  readonly #inProgress = new Set<Promise<void>>();

  constructor(options: BatcherOptions<T>) {
    this.#o = options;
  }

  add(item: T): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#pending.push({ item, resolve, reject });
      if (this.#pending.length >= this.#o.maxBatch) this.#drain();
      else if (!this.#timer) {
        this.#firstAt = Date.now();
        this.#timer = setTimeout(this.#lingered, this.#o.lingerMs);
      }
    });
  }

  readonly #lingered = (): void => {
    const { hold, maxLingerMs = 0, lingerMs } = this.#o;
    const left = this.#firstAt + maxLingerMs - Date.now();
    if (left > 0 && this.#pending.length > 0 && hold?.(this.#pending.length)) {
      this.#timer = setTimeout(this.#lingered, Math.min(lingerMs, left));
      return;
    }
    this.#drain();
  };

  /** Sends everything pending now and waits until every call in progress has settled. */
  async flush(): Promise<void> {
    this.#drain();
    while (this.#inProgress.size > 0) await Promise.allSettled([...this.#inProgress]);
  }

  get pending(): number {
    return this.#pending.length;
  }

  #drain(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    while (this.#pending.length > 0) {
      const batch = this.#pending.splice(0, this.#o.maxBatch);
      const p = this.#run(batch).finally(() => this.#inProgress.delete(p));
      this.#inProgress.add(p);
    }
  }

  async #run(batch: Pending<T>[]): Promise<void> {
    let todo = batch;
    for (let attempt = 1; todo.length > 0; attempt++) {
      const retry: Pending<T>[] = [];
      try {
        const results = await this.#o.send(todo.map((p) => p.item));
        const failed: T[] = [];
        const codes = new Set<string>();
        todo.forEach((p, i) => {
          const f = results[i];
          if (!f) return p.resolve();
          failed.push(p.item);
          codes.add(f.error.message);
          if (f.retryable && attempt < this.#o.maxAttempts) retry.push(p);
          else p.reject(f.error);
        });
        // Name what the entries failed with: a log line that only says "failed" cannot be acted on.
        if (failed.length) this.#o.onError?.(new Error(`${BATCH_ENTRIES_FAILED}: ${[...codes].join('; ')}`), failed);
      } catch (err) {
        this.#o.onError?.(err, todo.map((p) => p.item));
        if (this.#o.isRetryable(err) && attempt < this.#o.maxAttempts) retry.push(...todo);
        else for (const p of todo) p.reject(err instanceof Error ? err : new Error(String(err)));
      }
      todo = retry;
      if (todo.length) await new Promise((r) => setTimeout(r, this.#o.retryDelayMs(attempt)));
    }
  }
}
