import { setImmediate as nextTurn } from 'node:timers/promises';
import type { Metrics } from '#metrics/registry.js';
import type { Logger } from '../../log.js';
import type { Capacity } from './capacity.js';
import type { Dispatcher } from '../run/dispatcher.js';
import type { InFlight, InFlightMessage } from '../in-flight.js';
import type { QueueRuntime, ReceivedMessage } from '../queue.js';

export interface PrefetchOptions {
  queue: QueueRuntime;
  capacity: Capacity;
  dispatcher: Dispatcher;
  inFlight: InFlight;
  metrics: Pick<Metrics, 'prefetched'>;
  log: Logger;
}

/**
 * One queue's prefetched messages (SPEC "Slots"): received ahead of a free slot, held in prefetch
 * slots (Capacity), in flight meanwhile (InFlight extends them), started in the order they came as
 * slots free, and released with visibility 0 at stop. So a handler that finishes is followed by the
 * next message at once, not after a receive's round trip.
 */
export class PrefetchBuffer {
  readonly #o: PrefetchOptions;
  readonly #messages: ReceivedMessage[] = [];
  readonly #held: InFlightMessage[] = [];
  readonly #stop = new AbortController();
  #promoting: Promise<void> | undefined;

  constructor(options: PrefetchOptions) {
    this.#o = options;
  }

  /** Messages received into prefetch slots (one slot each, already taken); `held` are their in-flight entries. */
  add(messages: readonly ReceivedMessage[], held: readonly InFlightMessage[]): void {
    this.#messages.push(...messages);
    this.#held.push(...held);
    this.#changed();
    this.#promoting ??= this.#promote().finally(() => (this.#promoting = undefined));
  }

  #changed(): void {
    const q = this.#o.queue.queue;
    this.#o.capacity.setWaiting(q, this.#messages.length);
    this.#o.metrics.prefetched.set({ queue: q }, this.#messages.length);
  }

  /** Starts waiting messages as running slots free for them (Capacity gives them before the queue's receives). */
  async #promote(): Promise<void> {
    const { capacity, dispatcher, queue: q } = this.#o;
    const stopped = this.#stop.signal;
    while (this.#messages.length > 0 && !stopped.aborted) {
      let n = await capacity.promote(q.queue, this.#messages.length, stopped);
      if (n === 0) return; // stopping, or capacity closed
      if (n < this.#messages.length) {
        // Outcomes arrive in bunches (one port read delivers several): the slots they free in this
        // turn start together, as one task, instead of one thread hop per message.
        await nextTurn();
        if (stopped.aborted) {
          capacity.giveBack(q.queue, n); // stop() releases them all
          return;
        }
        n += capacity.takeFree(q.queue, this.#messages.length - n);
      }
      const messages = this.#messages.splice(0, n);
      const held = this.#held.splice(0, n);
      this.#changed();
      capacity.givePrefetchBack(q.queue, n);
      dispatcher.dispatchBatch(q, messages, held);
    }
  }

  /** No more starts; what waits is released at once (visibility 0), so another host takes it now. */
  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#promoting;
    const n = this.#messages.length;
    if (n === 0) return;
    const held = this.#held.splice(0, n);
    this.#messages.splice(0, n);
    this.#changed();
    this.#o.capacity.givePrefetchBack(this.#o.queue.queue, n);
    const { inFlight, log } = this.#o;
    const released = await Promise.all(held.map((m) => inFlight.release(m, 'shutdown')));
    log.info({ queue: this.#o.queue.queue, released: released.filter(Boolean).length, of: n }, 'prefetched messages released at shutdown');
  }
}
