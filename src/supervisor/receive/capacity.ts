/** What a receive may take: slots to run messages in at once, and prefetch slots to hold them in. */
export interface Grant {
  running: number;
  prefetch: number;
}

interface Waiter {
  queue: string;
  max: number;
  /** Resolved only once this many are granted, or when the fill window closed with at least one. */
  min: number;
  fillMs: number;
  /** While this says so (and for at most `fillMaxMs` in all), the fill window stays open. */
  holdFill: (() => boolean) | undefined;
  fillMaxMs: number;
  /** A flowing queue's receive: may take prefetch slots when no running slot is free for it. */
  prefetch: boolean;
  /** A prefetch buffer's wait for running slots: it goes before its own queue's receives. */
  promote: boolean;
  running: number;
  prefetched: number;
  seq: number;
  fillTimer?: NodeJS.Timeout;
  resolve: (g: Grant) => void;
  /** Removes the abort listener: a long-lived stop signal must not collect one per receive. */
  detach?: () => void;
}

export interface ReceiveWait {
  signal?: AbortSignal | undefined;
  /** Wait up to this long for `max` slots (a receive of 10 costs what a receive of 1 does). */
  fillMs?: number;
  /** Keeps the fill window open, `fillMs` at a time, while `hold()` says so, up to `maxMs` in all. */
  fill?: { hold: () => boolean; maxMs: number } | undefined;
  /** May take prefetch slots (a flowing queue's receive; a quiet queue prefetches nothing). */
  prefetch?: boolean;
}

/**
 * Slot accounting: a message may be received only into a slot that is free under its queue's cap
 * and the host's cap (the global cap, already bounded by the thread pool's capacity), or, for a
 * flowing queue, into a *prefetch* slot: held in memory until a slot frees, at most the queue's
 * `prefetch` (never above its cap) and host-wide at most the global cap (SPEC "Slots").
 *
 * When the global cap is what limits, free slots go one at a time to the waiting queue that holds
 * the fewest (max-min fairness), so a flooded queue cannot starve a quiet one: a quiet queue's
 * receive gets the next free slot before a flooded queue's prefetched messages do. Within a queue,
 * its prefetched messages take a free slot before its receives do (they were received first).
 *
 * A slot has two phases. *Running*: the handler has not settled; this is what the caps bound. Then
 * *settling*: the handler settled and its delete or visibility change is on its way to SQS; the slot
 * is free for the next message, but a queue may not have more messages settling than its cap, so a
 * failing or slow SQS cannot let received-but-unsettled messages grow past three times the cap
 * (running + prefetched + settling).
 */
export class Capacity {
  readonly #globalCap: number;
  readonly #queueCaps: Map<string, number>;
  readonly #prefetchCaps: Map<string, number>;
  readonly #held = new Map<string, number>();
  readonly #settling = new Map<string, number>();
  /** Prefetch slots held: receives on their way into them, and messages waiting in them. */
  readonly #prefetched = new Map<string, number>();
  /** Received messages waiting in a queue's prefetch buffer for a running slot. */
  readonly #waiting = new Map<string, number>();
  #total = 0;
  #settlingTotal = 0;
  #prefetchedTotal = 0;
  #waiters: Waiter[] = [];
  #seq = 0;
  #closed = false;

  /** `prefetch`: per queue, received messages it may hold waiting for a slot (default 0; clipped to its cap). */
  constructor(globalCap: number, queueCaps: Record<string, number>, prefetch: Record<string, number> = {}) {
    this.#globalCap = globalCap;
    this.#queueCaps = new Map(Object.entries(queueCaps));
    this.#prefetchCaps = new Map();
    for (const q of this.#queueCaps.keys()) {
      this.#held.set(q, 0);
      this.#settling.set(q, 0);
      this.#prefetched.set(q, 0);
      this.#waiting.set(q, 0);
      this.#prefetchCaps.set(q, Math.max(0, Math.min(prefetch[q] ?? 0, this.capOf(q))));
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

  /** Prefetch slots held in total (receives into them, and messages waiting in them). */
  get prefetchedTotal(): number {
    return this.#prefetchedTotal;
  }

  /** A queue's prefetch slots held (receives into them, and messages waiting in them). */
  prefetchedOf(queue: string): number {
    return this.#prefetched.get(queue) ?? 0;
  }

  capOf(queue: string): number {
    return Math.min(this.#queueCaps.get(queue) ?? 0, this.#globalCap);
  }

  /** How many received messages the queue may hold waiting for a slot. */
  prefetchCapOf(queue: string): number {
    return this.#prefetchCaps.get(queue) ?? 0;
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
  async acquire(queue: string, max: number, signal?: AbortSignal, fillMs = 0, fill?: { hold: () => boolean; maxMs: number }): Promise<number> {
    return (await this.#wait(queue, max, { signal, fillMs, fill }, false)).running;
  }

  /**
   * A receive's slots: running slots as `acquire` takes them and, with `prefetch`, prefetch slots
   * when no running slot is free for the queue (it is at its cap, the host at the global cap, or
   * its prefetched messages wait for slots already). Each kind is given back with its own method.
   */
  receive(queue: string, max: number, o: ReceiveWait = {}): Promise<Grant> {
    return this.#wait(queue, max, o, false);
  }

  /**
   * Running slots for messages waiting in the queue's prefetch buffer (up to `max`, at least one).
   * The caller moves that many messages out of prefetch (`givePrefetchBack`) as it starts them.
   */
  async promote(queue: string, max: number, signal?: AbortSignal): Promise<number> {
    return (await this.#wait(queue, max, { signal }, true)).running;
  }

  /**
   * Running slots free for the queue's waiting messages right now, without waiting (up to `max`).
   * Fair: a slot still free after `#pump` is one no other waiter may take.
   */
  takeFree(queue: string, max: number): number {
    if (this.#closed) return 0;
    const probe: Waiter = { queue, max, min: 1, fillMs: 0, holdFill: undefined, fillMaxMs: 0, prefetch: false, promote: true, running: 0, prefetched: 0, seq: -1, resolve: () => undefined };
    while (this.#hostHasRoom() && this.#mayRun(probe)) this.#grant(probe, 'running');
    return probe.running;
  }

  #wait(queue: string, max: number, o: ReceiveWait, promote: boolean): Promise<Grant> {
    if (!this.#queueCaps.has(queue)) throw new Error(`unknown queue ${queue}`);
    const none: Grant = { running: 0, prefetch: 0 };
    if (this.#closed || max < 1 || o.signal?.aborted) return Promise.resolve(none);
    const fillMs = o.fillMs ?? 0;
    const signal = o.signal;
    return new Promise((resolve) => {
      const w: Waiter = {
        queue,
        max,
        min: fillMs > 0 ? Math.min(max, this.capOf(queue) + (o.prefetch ? this.prefetchCapOf(queue) : 0)) : 1,
        fillMs,
        holdFill: o.fill?.hold,
        fillMaxMs: o.fill?.maxMs ?? 0,
        prefetch: (o.prefetch ?? false) && this.prefetchCapOf(queue) > 0,
        promote,
        running: 0,
        prefetched: 0,
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
          this.#undo(w);
          resolve(none);
        };
        signal.addEventListener('abort', onAbort, { once: true });
        w.detach = () => signal.removeEventListener('abort', onAbort);
      }
      this.#pump();
    });
  }

  /** Gives back what a waiter that never resolved was granted. */
  #undo(w: Waiter): void {
    if (w.running > 0) this.giveBack(w.queue, w.running);
    if (w.prefetched > 0) this.givePrefetchBack(w.queue, w.prefetched);
  }

  giveBack(queue: string, n = 1): void {
    if (n <= 0) return;
    const held = this.held(queue);
    if (n > held) throw new Error(`capacity: give back of ${n} slots on ${queue} that holds ${held}`);
    this.#held.set(queue, held - n);
    this.#total -= n;
    this.#pump();
  }

  /** Prefetch slots no longer needed: the receive brought fewer, or their messages started or were released. */
  givePrefetchBack(queue: string, n = 1): void {
    if (n <= 0) return;
    const held = this.prefetchedOf(queue);
    if (n > held) throw new Error(`capacity: give back of ${n} prefetch slots on ${queue} that holds ${held}`);
    this.#prefetched.set(queue, held - n);
    this.#prefetchedTotal -= n;
    this.#pump();
  }

  /** How many received messages wait in the queue's prefetch buffer (its receives take no running slot meanwhile). */
  setWaiting(queue: string, n: number): void {
    this.#waiting.set(queue, n);
    if (n === 0) this.#pump();
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
      this.#undo(w);
      w.resolve({ running: 0, prefetch: 0 });
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

  #hostHasRoom(): boolean {
    return this.#total < this.#globalCap && this.#settlingTotal < this.#globalCap;
  }

  #hostHasPrefetchRoom(): boolean {
    return this.#prefetchedTotal < this.#globalCap && this.#settlingTotal < this.#globalCap;
  }

  /** Whether a waiter may take a running slot now, the host permitting (a field: `#pick` takes it as is). */
  readonly #mayRun = (w: Waiter): boolean => {
    if (w.running + w.prefetched >= w.max) return false;
    // A queue's prefetched messages take its free slots before its receives do.
    if (!w.promote && (this.#waiting.get(w.queue) ?? 0) > 0) return false;
    const cap = this.capOf(w.queue);
    return this.held(w.queue) < cap && this.settlingOf(w.queue) < cap;
  };

  /** Whether a waiter may take a prefetch slot now (asked once no running slot is free for it). */
  #mayPrefetch(w: Waiter): boolean {
    if (!w.prefetch || w.running + w.prefetched >= w.max) return false;
    return this.prefetchedOf(w.queue) < this.prefetchCapOf(w.queue) && this.settlingOf(w.queue) < this.capOf(w.queue);
  }

  #grant(w: Waiter, kind: 'running' | 'prefetched'): void {
    // The fill window opens with the first slot: waiting long for the first one says nothing
    // about how soon the others free up.
    if (w.running + w.prefetched === 0 && w.min > 1) this.#openFillWindow(w);
    if (kind === 'running') {
      w.running++;
      this.#held.set(w.queue, this.held(w.queue) + 1);
      this.#total++;
    } else {
      w.prefetched++;
      this.#prefetched.set(w.queue, this.prefetchedOf(w.queue) + 1);
      this.#prefetchedTotal++;
    }
  }

  /** Whether `w` goes before `best` for a running slot: its queue holds fewer, then its buffer's promotion, then the oldest wait. */
  readonly #runsFirst = (w: Waiter, best: Waiter): boolean => {
    const a = this.held(w.queue);
    const b = this.held(best.queue);
    return a < b || (a === b && (Number(w.promote) > Number(best.promote) || (w.promote === best.promote && w.seq < best.seq)));
  };

  /** Whether `w` goes before `best` for a prefetch slot: its queue holds fewer prefetched, then the oldest wait. */
  readonly #prefetchesFirst = (w: Waiter, best: Waiter): boolean => {
    const a = this.prefetchedOf(w.queue);
    const b = this.prefetchedOf(best.queue);
    return a < b || (a === b && w.seq < best.seq);
  };

  /** Flowing receives that got no running slot (none is free for them) and may prefetch. */
  readonly #mayPrefetchNow = (w: Waiter): boolean => !(this.#hostHasRoom() && this.#mayRun(w)) && this.#mayPrefetch(w);

  #pick(eligible: (w: Waiter) => boolean, first: (w: Waiter, best: Waiter) => boolean): Waiter | undefined {
    let best: Waiter | undefined;
    for (const w of this.#waiters) if (eligible(w) && (!best || first(w, best))) best = w;
    return best;
  }

  #pump(): void {
    if (this.#waiters.length === 0) return;
    // Running slots, one at a time (max-min fairness across queues).
    for (let w; this.#hostHasRoom() && (w = this.#pick(this.#mayRun, this.#runsFirst)); ) this.#grant(w, 'running');
    // Prefetch slots. Not past the settling bound: a slow SQS must not let received messages pile up.
    for (let w; this.#hostHasPrefetchRoom() && (w = this.#pick(this.#mayPrefetchNow, this.#prefetchesFirst)); ) this.#grant(w, 'prefetched');
    const ready = (w: Waiter) => {
      const granted = w.running + w.prefetched;
      return granted >= w.min || (granted > 0 && granted >= w.max);
    };
    if (!this.#waiters.some(ready)) return;
    const done = this.#waiters.filter(ready);
    this.#waiters = this.#waiters.filter((w) => !ready(w));
    for (const w of done) {
      w.detach?.();
      clearTimeout(w.fillTimer);
      w.resolve({ running: w.running, prefetch: w.prefetched });
    }
  }
}
