interface Waiter {
  queue: string;
  max: number;
  /** Resolved only once this many are granted, or when the fill window closed with at least one. */
  min: number;
  fillMs: number;
  /** While this says so (and for at most `fillMaxMs` in all), the fill window stays open. */
  holdFill: (() => boolean) | undefined;
  fillMaxMs: number;
  granted: number;
  seq: number;
  fillTimer?: NodeJS.Timeout;
  resolve: (n: number) => void;
  /** Removes the abort listener: a long-lived stop signal must not collect one per receive. */
  detach?: () => void;
}

/**
 * Slot accounting: a message may be received only into a slot that is free under its queue's cap
 * and the host's cap (the global cap, already bounded by the thread pool's capacity).
 *
 * When the global cap is what limits, free slots go one at a time to the waiting queue that holds
 * the fewest (max-min fairness), so a flooded queue cannot starve a quiet one.
 *
 * A slot has two phases. *Running*: the handler has not settled; this is what the caps bound. Then
 * *settling*: the handler settled and its delete or visibility change is on its way to SQS; the slot
 * is free for the next message, but a queue may not have more messages settling than its cap, so a
 * failing or slow SQS cannot let received-but-unsettled messages grow past twice the cap.
 */
export class Capacity {
  readonly #globalCap: number;
  readonly #queueCaps: Map<string, number>;
  readonly #held = new Map<string, number>();
  readonly #settling = new Map<string, number>();
  #total = 0;
  #settlingTotal = 0;
  #waiters: Waiter[] = [];
  #seq = 0;
  #closed = false;

  constructor(globalCap: number, queueCaps: Record<string, number>) {
    this.#globalCap = globalCap;
    this.#queueCaps = new Map(Object.entries(queueCaps));
    for (const q of this.#queueCaps.keys()) {
      this.#held.set(q, 0);
      this.#settling.set(q, 0);
    }
  }

  get globalCap(): number {
    return this.#globalCap;
  }

  /** Slots held in total. */
  get total(): number {
    return this.#total;
  }

  held(queue: string): number {
    return this.#held.get(queue) ?? 0;
  }

  /** Messages of every queue whose handler settled and whose SQS call has not returned. */
  get settlingTotal(): number {
    return this.#settlingTotal;
  }

  /** Messages of a queue whose handler settled and whose SQS call has not returned. */
  settlingOf(queue: string): number {
    return this.#settling.get(queue) ?? 0;
  }

  capOf(queue: string): number {
    return Math.min(this.#queueCaps.get(queue) ?? 0, this.#globalCap);
  }

  /** Free slots of a queue right now (ignoring waiters). */
  free(queue: string): number {
    return Math.max(0, Math.min(this.capOf(queue) - this.held(queue), this.#globalCap - this.#total));
  }

  /**
   * Waits until at least one slot is free for `queue` and takes up to `max`. Resolves 0 once closed.
   * With `fillMs`, waits up to that long for all `max` (a receive of 10 costs what a receive of 1
   * does), then takes what it has; `fill.hold` keeps the window open, `fillMs` at a time, for as long
   * as it returns true, up to `fill.maxMs` in all (the slots that are held are not idle meanwhile:
   * their messages wait on a busy thread). The caller must give back every slot it was given, exactly once.
   */
  acquire(queue: string, max: number, signal?: AbortSignal, fillMs = 0, fill?: { hold: () => boolean; maxMs: number }): Promise<number> {
    if (!this.#queueCaps.has(queue)) throw new Error(`unknown queue ${queue}`);
    if (this.#closed || max < 1 || signal?.aborted) return Promise.resolve(0);
    return new Promise((resolve) => {
      const w: Waiter = {
        queue,
        max,
        min: fillMs > 0 ? Math.min(max, this.capOf(queue)) : 1,
        fillMs,
        holdFill: fill?.hold,
        fillMaxMs: fill?.maxMs ?? 0,
        granted: 0,
        seq: this.#seq++,
        resolve,
      };
      this.#waiters.push(w);
      if (signal) {
        // An aborted wait (the poller stopping) gives up its place.
        const onAbort = () => {
          const i = this.#waiters.indexOf(w);
          if (i < 0) return;
          this.#waiters.splice(i, 1);
          clearTimeout(w.fillTimer);
          if (w.granted > 0) this.giveBack(w.queue, w.granted);
          resolve(0);
        };
        signal.addEventListener('abort', onAbort, { once: true });
        w.detach = () => signal.removeEventListener('abort', onAbort);
      }
      this.#pump();
    });
  }

  giveBack(queue: string, n = 1): void {
    if (n <= 0) return;
    const held = this.held(queue);
    if (n > held) throw new Error(`capacity: give back of ${n} slots on ${queue} that holds ${held}`);
    this.#held.set(queue, held - n);
    this.#total -= n;
    this.#pump();
  }

  /**
   * A handler finished: its slot is free for the next message, and the message counts as settling
   * until `settled` (its delete or visibility change returned).
   */
  finish(queue: string): void {
    // Counted as settling before the slot given back wakes anyone, so the settling bound holds.
    this.#settling.set(queue, this.settlingOf(queue) + 1);
    this.#settlingTotal++;
    this.giveBack(queue, 1);
  }

  settled(queue: string): void {
    const n = this.settlingOf(queue);
    if (n < 1) throw new Error(`capacity: settled on ${queue} with nothing settling`);
    this.#settling.set(queue, n - 1);
    this.#settlingTotal--;
    this.#pump();
  }

  /** Wakes every waiter with 0; later acquires resolve 0 at once. */
  close(): void {
    this.#closed = true;
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) {
      w.detach?.();
      clearTimeout(w.fillTimer);
      if (w.granted > 0) this.giveBack(w.queue, w.granted);
      w.resolve(0);
    }
  }

  #openFillWindow(w: Waiter): void {
    const endsAt = Date.now() + Math.max(w.fillMs, w.fillMaxMs);
    const close = () => {
      const left = endsAt - Date.now();
      if (left > 0 && w.holdFill?.()) {
        w.fillTimer = setTimeout(close, Math.min(w.fillMs, left));
        return;
      }
      w.min = 1;
      this.#pump();
    };
    w.fillTimer = setTimeout(close, w.fillMs);
  }

  #pump(): void {
    if (this.#waiters.length === 0) return;
    let progressed = true;
    while (progressed && this.#total < this.#globalCap && this.#settlingTotal < this.#globalCap) {
      progressed = false;
      let best: Waiter | undefined;
      for (const w of this.#waiters) {
        if (w.granted >= w.max) continue;
        const cap = this.capOf(w.queue);
        if (this.held(w.queue) >= cap || this.settlingOf(w.queue) >= cap) continue;
        if (!best) {
          best = w;
          continue;
        }
        const a = this.held(w.queue);
        const b = this.held(best.queue);
        if (a < b || (a === b && w.seq < best.seq)) best = w;
      }
      if (best) {
        // The fill window opens with the first slot: waiting long for the first one says nothing
        // about how soon the others free up.
        if (best.granted === 0 && best.min > 1) this.#openFillWindow(best);
        best.granted++;
        this.#held.set(best.queue, this.held(best.queue) + 1);
        this.#total++;
        progressed = true;
      }
    }
    const ready = (w: Waiter) => w.granted >= w.min || (w.granted > 0 && w.granted >= w.max);
    if (!this.#waiters.some(ready)) return;
    const done = this.#waiters.filter(ready);
    this.#waiters = this.#waiters.filter((w) => !ready(w));
    for (const w of done) {
      w.detach?.();
      clearTimeout(w.fillTimer);
      w.resolve(w.granted);
    }
  }
}
