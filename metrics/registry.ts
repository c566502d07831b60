import { readFileSync } from 'node:fs';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The package version for eventbus_build_info (this file runs as dist/metrics/registry.js). */
const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** Buckets for message work: 5 ms to 15 minutes. */
export const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900];
/** Buckets for message age (send to handler start): 10 ms to 1 day. */
export const AGE_BUCKETS = [0.01, 0.05, 0.1, 0.5, 1, 5, 15, 30, 60, 300, 900, 1800, 3600, 4 * 3600, 24 * 3600];

/** Buckets for reading an offloaded payload from S3: 5 ms to 1 minute (a 64 MiB object on a slow link). */
export const FETCH_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** What the saturation gauges show (createMetrics' followSlots). */
export interface SlotReading {
  queues: Array<{ queue: string; cap: number; used: number }>;
  /** Mean event-loop utilization of the worker threads since the previous reading; null before there are threads. */
  poolUtilization: number | null;
}

/** Every eventbus metric (SPEC "Metrics") on one registry. */
export function createMetrics(options: { defaultMetrics?: boolean } = {}) {
  const registry = new Registry();
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry });
  const r = [registry];
  // Cluster: every child reports 1, so the primary's aggregate must not add them up.
  const buildInfo = new Gauge({
    name: 'eventbus_build_info',
    help: 'Always 1; the labels say which eventbus version runs on which Node.js',
    labelNames: ['version', 'node_version'],
    registers: r,
    aggregator: 'max',
  });
  buildInfo.set({ version: VERSION, node_version: process.version }, 1);
  let readiness: (() => boolean | Promise<boolean>) | undefined;
  let ready: Gauge | undefined;
  let slots: (() => SlotReading) | undefined;
  let slotGauges: { cap: Gauge; used: Gauge; pool: Gauge } | undefined;
  return {
    registry,
    buildInfo,
    /**
     * Adds eventbus_ready, read at each scrape from `isReady` (what /readyz answers). Only a process
     * with a /readyz calls this, so a process without one never reports a stale 0 or 1.
     */
    followReadiness(isReady: () => boolean | Promise<boolean>): void {
      readiness = isReady;
      ready ??= new Gauge({
        name: 'eventbus_ready',
        help: '1 while /readyz answers 200 (every queue polling, SQS answering), else 0',
        registers: r,
        // Cluster: the host is ready only when the primary and every child are.
        aggregator: 'min',
        async collect() {
          this.set((await readiness!()) ? 1 : 0);
        },
      });
    },
    /**
     * Adds the saturation gauges, read at each scrape from `read`: each queue's slots (its cap on
     * this process) and those held by running handlers, and how busy the worker threads were since
     * the last scrape. Only a process that runs handlers calls this.
     */
    followSlots(read: () => SlotReading): void {
      slots = read;
      if (slotGauges) return;
      let last: SlotReading | undefined;
      // One reading per scrape, shared by the three gauges (the pool's is a delta since the last one).
      let readAt = -Infinity;
      const reading = (): SlotReading => {
        if (!last || performance.now() - readAt > 100) {
          last = slots!();
          readAt = performance.now();
        }
        return last;
      };
      slotGauges = {
        cap: new Gauge({
          name: 'eventbus_handler_slots',
          help: "Handler slots of a queue on this process: its concurrency cap (queue's, within the host's); summed over a cluster's processes",
          labelNames: ['queue'],
          registers: r,
          collect() {
            for (const q of reading().queues) this.set({ queue: q.queue }, q.cap);
          },
        }),
        used: new Gauge({
          name: 'eventbus_handler_slots_used',
          help: 'Handler slots of a queue held now: handlers running, and a receive (a long poll) waiting for messages to fill free slots; prefetched messages are not in it (eventbus_messages_prefetched)',
          labelNames: ['queue'],
          registers: r,
          collect() {
            for (const q of reading().queues) this.set({ queue: q.queue }, q.used);
          },
        }),
        pool: new Gauge({
          name: 'eventbus_thread_pool_utilization',
          help: "The worker threads' event-loop utilization since the previous scrape, averaged over the threads (0-1): near 1, handlers keep the threads busy (CPU-bound) and more threads or hosts help",
          registers: r,
          aggregator: 'average',
          collect() {
            const u = reading().poolUtilization;
            if (u !== null) this.set(u);
          },
        }),
      };
    },
    received: new Counter({ name: 'eventbus_messages_received_total', help: 'Messages received from SQS', labelNames: ['queue'], registers: r }),
    deleted: new Counter({ name: 'eventbus_messages_deleted_total', help: 'Messages deleted after their handler succeeded', labelNames: ['queue'], registers: r }),
    released: new Counter({
      name: 'eventbus_messages_released_total',
      help: 'Messages made visible again without running or finishing (reason: shutdown, capacity)',
      labelNames: ['queue', 'reason'],
      registers: r,
    }),
    results: new Counter({
      name: 'eventbus_handler_results_total',
      help: 'Handler outcomes (success, failure, error, timeout, crashed; rejected and invalid are dead-lettered at once)',
      labelNames: ['queue', 'event_type', 'result'],
      registers: r,
    }),
    deadLettered: new Counter({
      name: 'eventbus_messages_dead_lettered_total',
      help: 'Messages sent to their DLQ at once, not retried (reason: rejected = NonRetryableError, invalid = data failed its schema)',
      labelNames: ['queue', 'reason'],
      registers: r,
    }),
    duration: new Histogram({ name: 'eventbus_handler_duration_seconds', help: 'Handler run time', labelNames: ['queue'], buckets: DURATION_BUCKETS, registers: r }),
    age: new Histogram({ name: 'eventbus_message_age_seconds', help: 'Time from SQS SentTimestamp to handler start', labelNames: ['queue'], buckets: AGE_BUCKETS, registers: r }),
    inFlight: new Gauge({ name: 'eventbus_messages_in_flight', help: 'Messages received and not yet settled', labelNames: ['queue'], registers: r }),
    prefetched: new Gauge({ name: 'eventbus_messages_prefetched', help: 'Messages received and waiting for a free slot (prefetch; also in eventbus_messages_in_flight)', labelNames: ['queue'], registers: r }),
    groupsActive: new Gauge({
      name: 'eventbus_groups_active',
      help: 'Message groups with a message running on this host (queues with ordered or groupConcurrency; never a group label)',
      labelNames: ['queue'],
      registers: r,
    }),
    waitingForGroup: new Gauge({
      name: 'eventbus_messages_waiting_for_group',
      help: 'Messages received and waiting because their group is at its limit (ordered: 1; groupConcurrency); also in eventbus_messages_in_flight',
      labelNames: ['queue'],
      registers: r,
    }),
    extensions: new Counter({ name: 'eventbus_visibility_extensions_total', help: 'Visibility timeout extensions of running messages', labelNames: ['queue'], registers: r }),
    sqsErrors: new Counter({ name: 'eventbus_sqs_errors_total', help: 'Failed SQS/SNS calls and batch entries', labelNames: ['queue', 'operation'], registers: r }),
    queueMessages: new Gauge({
      name: 'eventbus_queue_messages',
      help: 'Approximate messages per queue and state (visible, in_flight, delayed), read from SQS',
      labelNames: ['queue', 'state'],
      registers: r,
      aggregator: 'max',
    }),
    published: new Counter({ name: 'eventbus_events_published_total', help: 'Events accepted by SNS', labelNames: ['event_type'], registers: r }),
    failureEventsSuppressed: new Counter({
      name: 'eventbus_failure_events_suppressed_total',
      help: 'TASK_WORKER_FAILED events not published because of failureEvents.maxPerSecond',
      labelNames: ['queue'],
      registers: r,
    }),
    payloadsOffloaded: new Counter({
      name: 'eventbus_payloads_offloaded_total',
      help: 'Events too large for SNS stored in S3 and published as a pointer (by this process; not ctx.publish in worker threads)',
      labelNames: ['event_type'],
      registers: r,
    }),
    payloadFetch: new Histogram({
      name: 'eventbus_payload_fetch_seconds',
      help: 'Time to read an offloaded payload from S3 before its handler ran',
      labelNames: ['queue'],
      buckets: FETCH_BUCKETS,
      registers: r,
    }),
    s3Errors: new Counter({ name: 'eventbus_s3_errors_total', help: 'Failed S3 calls (payload fetches of offloaded events)', labelNames: ['queue', 'operation'], registers: r }),
    childRestarts: new Counter({ name: 'eventbus_child_restarts_total', help: 'Cluster children restarted after dying', registers: r }),
    webhookRequests: new Counter({
      name: 'eventbus_webhook_requests_total',
      help: 'Webhook requests by source (configured name, or "unknown") and outcome (published, bad_signature, missing_signature, stale_timestamp, unknown_source, malformed, too_large, publish_failed, duplicate: a delivery already accepted, in_progress: one being published now)',
      labelNames: ['source', 'outcome'],
      registers: r,
    }),
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
