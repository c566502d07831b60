import { GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { Metrics } from '#metrics/registry.js';
import type { Logger } from '../../log.js';
import type { QueueRuntime } from '../queue.js';

/** How often queue depths are read from SQS for `eventbus_queue_messages`. */
export const QUEUE_STATS_INTERVAL_MS = 5_000;

const STATES = [
  ['ApproximateNumberOfMessages', 'visible'],
  ['ApproximateNumberOfMessagesNotVisible', 'in_flight'],
  ['ApproximateNumberOfMessagesDelayed', 'delayed'],
] as const;

/**
 * Refreshes `eventbus_queue_messages{queue, state}` for every queue and its DLQ (`<name>-dlq`), so an
 * alert can fire on backlog and on a non-empty DLQ. In a cluster only child 0 reads them.
 */
export class QueueStats {
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(
    private readonly o: {
      sqs: SQSClient;
      queues: readonly QueueRuntime[];
      metrics: Metrics;
      log: Logger;
      /** Between two reads (a function: asked before each wait). Default QUEUE_STATS_INTERVAL_MS. */
      intervalMs?: number | (() => number);
      onError(queue: string): void;
    },
  ) {}

  start(): void {
    void this.refresh().finally(() => this.#schedule());
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  #schedule(): void {
    if (this.#stopped) return;
    const i = this.o.intervalMs;
    this.#timer = setTimeout(() => void this.refresh().finally(() => this.#schedule()), (typeof i === 'function' ? i() : i) ?? QUEUE_STATS_INTERVAL_MS);
    this.#timer.unref();
  }

  async refresh(): Promise<void> {
    const targets = this.o.queues.flatMap((q) => [
      { label: q.queue, url: q.url },
      ...(q.dlqUrl ? [{ label: `${q.queue}-dlq`, url: q.dlqUrl }] : []),
    ]);
    await Promise.all(
      targets.map(async (t) => {
        try {
          const out = await this.o.sqs.send(new GetQueueAttributesCommand({ QueueUrl: t.url, AttributeNames: STATES.map(([a]) => a) }));
          for (const [attr, state] of STATES) {
            const v = Number(out.Attributes?.[attr]);
            if (Number.isFinite(v)) this.o.metrics.queueMessages.set({ queue: t.label, state }, v);
          }
        } catch (err) {
          this.o.onError(t.label);
          this.o.log.debug({ queue: t.label, err }, 'queue attributes not read');
        }
      }),
    );
  }
}
