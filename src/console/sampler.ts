import type { EventLoopUtilization } from 'node:perf_hooks';
import type { MetricObjectWithValues, MetricValue } from 'prom-client';

export type MetricsJson = Array<MetricObjectWithValues<MetricValue<string>>>;

/** A handler queue as the console lists it. */
export interface ConsoleQueue {
  queue: string;
  /** The event types it subscribes to; null = every event. */
  events: string[] | null;
  /** The DLQ's name label in eventbus_queue_messages (`<queue>-dlq`); null when the queue has none. */
  dlq: string | null;
  /** The DLQ's SQS name (with queuePrefix); null when the queue has none. */
  dlqName: string | null;
  /** Its cap on this host (all processes together). */
  cap: number;
  ordered: boolean;
}

/** One thread's event-loop utilization reading (node:worker_threads `performance.eventLoopUtilization()`). */
export interface ThreadReading {
  id: string;
  elu: EventLoopUtilization;
}

export interface SamplerOptions {
  /** The metrics (the supervisor's registry, or the cluster's aggregate). */
  metrics(): Promise<MetricsJson>;
  queues(): readonly ConsoleQueue[];
  /** Worker threads and their cumulative utilization; null where they cannot be read (a cluster primary). */
  threads?: (() => ThreadReading[]) | undefined;
  intervalMs?: number;
  /** Points kept per series. */
  points?: number;
  now?: () => number;
}

/** The overview's sampling period: the page polls at the same pace. */
export const SAMPLE_INTERVAL_MS = 2_000;
/** 10 minutes of points at 2 s. */
export const SAMPLE_POINTS = 300;
/** Rates on the overview are over this window; p50/p99 over the longer one. */
const RATE_WINDOW_MS = 10_000;
const QUANTILE_WINDOW_MS = 60_000;

interface QueueCounters {
  received: number;
  succeeded: number;
  failed: number;
  /** eventbus_handler_duration_seconds cumulative bucket counts, by upper bound (seconds). */
  buckets: Array<[number, number]>;
}

interface Snapshot {
  t: number;
  queues: Map<string, QueueCounters>;
  gauges: Map<string, Record<string, number>>;
  threads: Array<{ id: string; load: number }> | null;
}

export interface OverviewQueue extends ConsoleQueue {
  visible: number | null;
  inFlight: number | null;
  delayed: number | null;
  dlqDepth: number | null;
  /** Received here and not settled (running, prefetched, waiting for their group, settling). */
  inFlightHere: number;
  /** Of those, waiting for a slot or their group (prefetched, parked). */
  waitingHere: number;
  received: number;
  succeeded: number;
  failed: number;
  /** Per second over the last 10 s. */
  rate: { received: number; succeeded: number; failed: number };
  /** Handler duration over the last minute (histogram buckets interpolated); null without runs. */
  p50Ms: number | null;
  p99Ms: number | null;
}

export interface Overview {
  at: number;
  intervalMs: number;
  queues: OverviewQueue[];
  threads: Array<{ id: string; load: number }> | null;
  /** Points after `since`: t (ms) and per queue per-second rates at each point. */
  series: { t: number[]; queues: Record<string, { received: number[]; succeeded: number[]; failed: number[] }> };
}

/**
 * One sampler per process serving the console: every 2 s it reads the metrics once (whatever the
 * number of open pages) and keeps 10 minutes of counters, from which the overview's rates, charts
 * and percentiles are computed on request.
 */
export class ConsoleSampler {
  readonly #o: SamplerOptions;
  readonly #snaps: Snapshot[] = [];
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  #prevThreads = new Map<string, EventLoopUtilization>();
  #sampling: Promise<void> | undefined;

  constructor(o: SamplerOptions) {
    this.#o = o;
  }

  get intervalMs(): number {
    return this.#o.intervalMs ?? SAMPLE_INTERVAL_MS;
  }

  start(): void {
    const tick = () => {
      if (this.#stopped) return;
      void this.sample().finally(() => {
        if (this.#stopped) return;
        this.#timer = setTimeout(tick, this.intervalMs);
        this.#timer.unref();
      });
    };
    tick();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
  }

  /** Takes one sample now (a failed metrics read is skipped: the next tick tries again). */
  sample(): Promise<void> {
    this.#sampling ??= this.#sample().finally(() => (this.#sampling = undefined));
    return this.#sampling;
  }

  async #sample(): Promise<void> {
    let json: MetricsJson;
    try {
      json = await this.#o.metrics();
    } catch {
      return;
    }
    const t = (this.#o.now ?? Date.now)();
    const queues = new Map<string, QueueCounters>();
    const q = (name: string) => {
      let c = queues.get(name);
      if (!c) queues.set(name, (c = { received: 0, succeeded: 0, failed: 0, buckets: [] }));
      return c;
    };
    const gauges = new Map<string, Record<string, number>>();
    const g = (name: string) => {
      let r = gauges.get(name);
      if (!r) gauges.set(name, (r = {}));
      return r;
    };
    for (const m of json) {
      for (const v of m.values) {
        const labels = v.labels as Record<string, string | number | undefined>;
        const queue = labels.queue === undefined ? undefined : String(labels.queue);
        if (queue === undefined) continue;
        switch (m.name) {
          case 'eventbus_messages_received_total':
            q(queue).received += v.value;
            break;
          case 'eventbus_handler_results_total':
            if (labels.result === 'success') q(queue).succeeded += v.value;
            else q(queue).failed += v.value;
            break;
          case 'eventbus_handler_duration_seconds':
            if ((v as { metricName?: string }).metricName?.endsWith('_bucket') && labels.le !== undefined) {
              const le = labels.le === '+Inf' ? Infinity : Number(labels.le);
              q(queue).buckets.push([le, v.value]);
            }
            break;
          case 'eventbus_queue_messages':
            g(queue)[String(labels.state)] = v.value;
            break;
          case 'eventbus_messages_in_flight':
            g(queue).here = v.value;
            break;
          case 'eventbus_messages_prefetched':
          case 'eventbus_messages_waiting_for_group':
            g(queue).waiting = (g(queue).waiting ?? 0) + v.value;
            break;
        }
      }
    }
    for (const c of queues.values()) c.buckets.sort((a, b) => a[0] - b[0]);
    let threads: Snapshot['threads'] = null;
    if (this.#o.threads) {
      const next = new Map<string, EventLoopUtilization>();
      threads = [];
      for (const r of this.#o.threads()) {
        const prev = this.#prevThreads.get(r.id);
        const idle = r.elu.idle - (prev?.idle ?? 0);
        const active = r.elu.active - (prev?.active ?? 0);
        threads.push({ id: r.id, load: idle + active > 0 ? Math.min(1, Math.max(0, active / (idle + active))) : 0 });
        next.set(r.id, r.elu);
      }
      this.#prevThreads = next;
    }
    this.#snaps.push({ t, queues, gauges, threads });
    const keep = (this.#o.points ?? SAMPLE_POINTS) + 1;
    if (this.#snaps.length > keep) this.#snaps.splice(0, this.#snaps.length - keep);
  }

  #viewedAt = -Infinity;

  /** Whether a page asked for the overview in the last `withinMs` (it polls every 2 s while open). */
  viewedWithin(withinMs: number): boolean {
    return performance.now() - this.#viewedAt < withinMs;
  }

  /** The overview as of the last sample; series points after `sinceMs` (all kept points without it). */
  overview(sinceMs?: number): Overview {
    this.#viewedAt = performance.now();
    const snaps = this.#snaps;
    const last = snaps[snaps.length - 1];
    const at = last?.t ?? (this.#o.now ?? Date.now)();
    const back = (ms: number) => {
      for (let i = snaps.length - 1; i >= 0; i--) if (at - snaps[i]!.t >= ms) return snaps[i]!;
      return snaps[0];
    };
    const rateFrom = back(RATE_WINDOW_MS);
    const quantFrom = back(QUANTILE_WINDOW_MS);
    const queues: OverviewQueue[] = this.#o.queues().map((cq) => {
      const c = last?.queues.get(cq.queue);
      const gq = last?.gauges.get(cq.queue) ?? {};
      const gd = cq.dlq ? last?.gauges.get(cq.dlq) : undefined;
      const rate = (k: 'received' | 'succeeded' | 'failed') => {
        if (!last || !rateFrom || rateFrom === last) return 0;
        const d = (c?.[k] ?? 0) - (rateFrom.queues.get(cq.queue)?.[k] ?? 0);
        return Math.max(0, d) / ((last.t - rateFrom.t) / 1000);
      };
      const [p50, p99] = quantFrom && c ? quantiles(c.buckets, quantFrom === last ? [] : (quantFrom.queues.get(cq.queue)?.buckets ?? []), [0.5, 0.99]) : [null, null];
      return {
        ...cq,
        visible: gq.visible ?? null,
        inFlight: gq.in_flight ?? null,
        delayed: gq.delayed ?? null,
        dlqDepth: gd ? (gd.visible ?? 0) + (gd.in_flight ?? 0) + (gd.delayed ?? 0) : null,
        inFlightHere: gq.here ?? 0,
        waitingHere: gq.waiting ?? 0,
        received: c?.received ?? 0,
        succeeded: c?.succeeded ?? 0,
        failed: c?.failed ?? 0,
        rate: { received: rate('received'), succeeded: rate('succeeded'), failed: rate('failed') },
        p50Ms: p50 == null ? null : p50 * 1000,
        p99Ms: p99 == null ? null : p99 * 1000,
      };
    });
    const series: Overview['series'] = { t: [], queues: {} };
    for (const cq of this.#o.queues()) series.queues[cq.queue] = { received: [], succeeded: [], failed: [] };
    for (let i = 1; i < snaps.length; i++) {
      const s = snaps[i]!;
      if (sinceMs !== undefined && s.t <= sinceMs) continue;
      const p = snaps[i - 1]!;
      const dt = (s.t - p.t) / 1000;
      series.t.push(s.t);
      for (const cq of this.#o.queues()) {
        const a = s.queues.get(cq.queue);
        const b = p.queues.get(cq.queue);
        const out = series.queues[cq.queue]!;
        for (const k of ['received', 'succeeded', 'failed'] as const) out[k].push(dt > 0 ? Math.max(0, (a?.[k] ?? 0) - (b?.[k] ?? 0)) / dt : 0);
      }
    }
    return { at, intervalMs: this.intervalMs, queues, threads: last?.threads ?? null, series };
  }
}

/**
 * Quantiles of the observations between two cumulative bucket snapshots, interpolated linearly
 * inside the bucket as Prometheus's histogram_quantile does; null when nothing was observed.
 */
export function quantiles(now: Array<[number, number]>, before: Array<[number, number]>, qs: number[]): Array<number | null> {
  const prior = new Map(before);
  const counts = now.map(([le, n]) => [le, Math.max(0, n - (prior.get(le) ?? 0))] as [number, number]);
  const total = counts.length ? counts[counts.length - 1]![1] : 0;
  return qs.map((q) => {
    if (total <= 0) return null;
    const rank = q * total;
    let lowerLe = 0;
    let lowerN = 0;
    for (const [le, n] of counts) {
      if (n >= rank) {
        // Past the last finite bound: the best answer is that bound (as histogram_quantile).
        if (!Number.isFinite(le)) return lowerLe;
        return n === lowerN ? le : lowerLe + ((le - lowerLe) * (rank - lowerN)) / (n - lowerN);
      }
      lowerLe = le;
      lowerN = n;
    }
    return lowerLe;
  });
}
