import type { ResolvedHandler } from '../../dist/handlers.js';

/**
 * A ResolvedHandler as loadHandlers would make it, with test defaults: an ordered one gets the FIFO
 * names and no prefetch; a given `queueName` names the DLQ too. `o` wins over every default.
 */
export function resolvedHandler(queue: string, o: Partial<ResolvedHandler> = {}): ResolvedHandler {
  const fifo = o.ordered ? '.fifo' : '';
  const base = o.queueName ?? queue;
  return {
    file: `/handlers/${queue}.js`,
    queue,
    queueName: o.queueName ?? `${queue}${fifo}`,
    dlqName: `${base}-dlq${fifo}`,
    events: null,
    concurrency: 10,
    prefetch: o.ordered ? 0 : 10,
    visibilityTimeoutSec: 30,
    timeoutMs: 60_000,
    maxReceiveCount: 5,
    ordered: false,
    groupConcurrency: null,
    publishes: null,
    ...o,
  };
}
