// What the saturation gauges read at each scrape (eventbus_handler_slots, _slots_used,
// eventbus_thread_pool_utilization): the slot accounting and the worker threads' event loops.
import type { EventLoopUtilization } from 'node:perf_hooks';
import type { SlotReading } from '#metrics/registry.js';
import type { Capacity } from '../receive/capacity.js';

interface ThreadReadings {
  threadReadings(): Array<{ id: string; elu: EventLoopUtilization }>;
}

/** A reader for createMetrics' followSlots; the pool figure is the mean utilization since its previous call. */
export function slotReader(queues: readonly string[], capacity: Capacity, pool: ThreadReadings): () => SlotReading {
  let previous = new Map<string, EventLoopUtilization>();
  return () => {
    const next = new Map<string, EventLoopUtilization>();
    let sum = 0;
    for (const { id, elu } of pool.threadReadings()) {
      const p = previous.get(id);
      // A thread seen for the first time (a replacement too): its whole life so far.
      const active = elu.active - (p?.active ?? 0);
      const idle = elu.idle - (p?.idle ?? 0);
      // Clamped: the two readings come from the thread's clock, and an idle thread's difference can
      // come out a rounding error below zero (-6e-8 was seen).
      sum += active + idle > 0 ? Math.min(1, Math.max(0, active / (active + idle))) : 0;
      next.set(id, elu);
    }
    previous = next;
    return {
      queues: queues.map((queue) => ({ queue, cap: capacity.capOf(queue), used: capacity.held(queue) })),
      poolUtilization: next.size > 0 ? sum / next.size : null,
    };
  };
}
