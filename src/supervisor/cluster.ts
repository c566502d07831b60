import { builtInHandlers } from '../built-ins.js';
import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue } from 'prom-client';

type metric = MetricObjectWithValues<MetricValue<string>>;
import { createMetrics, type Metrics } from '#metrics/registry.js';
import type { Config } from '../config.js';
import { EventBusError } from '../errors.js';
import { loadHandlers } from '../handlers.js';
import type { Logger } from '../log.js';
import { startHttp, type Readiness } from '../http/server.js';
import type { Supervisor } from './supervisor.js';
import { extraRoutes, type ExtraRoutes } from '../http/routes.js';
import { createAwsClients, type AwsClients } from '../aws.js';
import { createPublisher, type Publisher } from '../publisher/index.js';
import type { ResolvedHandler } from '../handlers.js';
import { FailureLog, type ConsoleFailure } from '../console/failures.js';
import { ConsoleSampler, type ConsoleQueue } from '../console/sampler.js';
import { consoleDlq, lazyDlqRefs } from '../console/dlq.js';
import type { ConsoleParts } from '../http/routes.js';

/** IPC between the primary and its children (own protocol: prom-client's clusterMetrics() drops the primary and fails on one slow child). */
type ToChild = { type: 'eventbus:metrics' | 'eventbus:readiness'; id: number } | { type: 'eventbus:shutdown' };
type FromChild =
  | { type: 'eventbus:metrics'; id: number; metrics: metric[] }
  | { type: 'eventbus:readiness'; id: number; readiness: Readiness }
  | { type: 'eventbus:started' }
  /** A handler failure for the primary's console (console.enabled). */
  | { type: 'eventbus:failure'; failure: ConsoleFailure };

/** How long the primary waits for a child's answer to a scrape or a readiness probe. */
const CHILD_ANSWER_MS = 2_000;
/** A child that lived this long resets the restart backoff. */
const STABLE_CHILD_MS = 60_000;

/** Child side: answers the primary's metric and readiness requests; an IPC shutdown is a graceful stop. */
export function serveChild(sup: Supervisor, onShutdown: () => void): void {
  process.on('message', (raw: unknown) => {
    const msg = raw as ToChild;
    if (msg?.type === 'eventbus:metrics') {
      void sup.metrics.registry.getMetricsAsJSON().then((metrics) => process.send?.({ type: 'eventbus:metrics', id: msg.id, metrics } satisfies FromChild));
    } else if (msg?.type === 'eventbus:readiness') {
      process.send?.({ type: 'eventbus:readiness', id: msg.id, readiness: sup.readiness() } satisfies FromChild);
    } else if (msg?.type === 'eventbus:shutdown') {
      onShutdown();
    }
  });
  // The primary serves the console: failures happen here, in the children.
  sup.failures?.subscribe((failure) => {
    if (process.connected) process.send?.({ type: 'eventbus:failure', failure: { ...failure, child: Number(process.env.EVENTBUS_CHILD_INDEX) } } satisfies FromChild);
  });
  // The primary is gone (kill -9): stop rather than run unsupervised.
  process.on('disconnect', onShutdown);
}

/** Tells the primary that this child is running (it resets the restart backoff on stable children). */
export function notifyStarted(): void {
  process.send?.({ type: 'eventbus:started' } satisfies FromChild);
}

interface ChildSlot {
  index: number;
  worker: Worker | null;
  startedAt: number;
  failures: number;
  restartTimer?: NodeJS.Timeout;
}

/**
 * The node:cluster primary: forks `processes` children (each with its pollers and thread pool and
 * its exact share of the caps), restarts a dead child with backoff (never while draining), serves
 * the HTTP port with every child's metrics aggregated, and on SIGTERM/SIGINT asks each child to
 * drain and exits when all have.
 */
export class ClusterPrimary {
  readonly metrics: Metrics;
  readonly #cfg: Readonly<Config>;
  readonly #log: Logger;
  readonly #slots: ChildSlot[] = [];
  #draining = false;
  #http: Awaited<ReturnType<typeof startHttp>> | undefined;
  #extras: ExtraRoutes | undefined;
  /** The primary's own publisher, for webhook ingress on its HTTP port. */
  #ingress: { clients: AwsClients; publisher: Publisher } | undefined;
  #nextId = 1;
  readonly #pending = new Map<number, (msg: FromChild) => void>();
  #stopping: Promise<void> | undefined;
  #handlers: ResolvedHandler[] = [];
  /** The console's failures, forwarded by the children (console.enabled). */
  readonly #failures: FailureLog | null;
  #sampler: ConsoleSampler | undefined;

  constructor(cfg: Readonly<Config>, log: Logger) {
    this.#cfg = cfg;
    this.#log = log;
    this.metrics = createMetrics();
    this.metrics.followReadiness(async () => (await this.#readiness()).ready);
    this.#failures = cfg.console.enabled ? new FailureLog() : null;
  }

  get httpPort(): number | undefined {
    return this.#http?.port;
  }

  /** Checks that every cap splits across the children, then forks them and opens the HTTP port. */
  async start(): Promise<void> {
    const cfg = this.#cfg;
    const n = cfg.processes;
    const handlers = await loadHandlers({ ...cfg, concurrency: cfg.hostConcurrency }, builtInHandlers(cfg));
    this.#handlers = handlers;
    const problems: string[] = [];
    for (const h of handlers) {
      if (h.concurrency < n) problems.push(`queue ${h.queue}: concurrency ${h.concurrency} is below processes (${n}); each child needs at least one slot`);
    }
    if (Math.floor(cfg.concurrency / n) < handlers.length) {
      problems.push(`concurrency (${cfg.concurrency}) split over ${n} processes leaves ${Math.floor(cfg.concurrency / n)} per child, below the number of queues (${handlers.length})`);
    }
    if (problems.length) throw new EventBusError('ERR_CONFIG_INVALID', `invalid config: ${problems.join('; ')}`);

    cluster.setupPrimary({ exec: process.argv[1]!, args: process.argv.slice(2), silent: false });
    cluster.on('message', (worker, raw: unknown) => this.#onMessage(worker, raw as FromChild));
    cluster.on('exit', (worker, code, signal) => this.#onExit(worker, code, signal));
    this.#http = await startHttp({
      host: cfg.http.host,
      port: cfg.http.port,
      registry: this.metrics.registry,
      metrics: () => this.#aggregateMetrics(),
      readiness: () => this.#readiness(),
      routes: (app) => {
        this.#extras = extraRoutes({
          config: cfg,
          metrics: this.metrics,
          log: this.#log,
          publisher: () => this.#own().publisher,
          console: () => this.#consoleParts(),
        });
        return this.#extras.register(app);
      },
    });
    this.#log.info({ host: cfg.http.host, port: this.#http.port }, 'http listening');
    for (let i = 0; i < n; i++) {
      this.#slots.push({ index: i, worker: null, startedAt: 0, failures: 0 });
      this.#fork(this.#slots[i]!);
    }
    this.#sampler?.start();
    this.#log.info({ processes: n, concurrency: cfg.concurrency, http: this.#http.port }, 'cluster primary running');
  }

  /** The primary's own clients and publisher (webhook ingress, the console's dead letters), made on first use. */
  #own(): { clients: AwsClients; publisher: Publisher } {
    if (!this.#ingress) {
      const cfg = this.#cfg;
      const clients = createAwsClients({ endpoint: cfg.endpoint, region: cfg.region });
      this.#ingress = { clients, publisher: createPublisher({ sns: clients.sns, topic: cfg.topic, source: cfg.source, onPublished: (type, k) => this.metrics.published.inc({ event_type: type }, k) }) };
    }
    return this.#ingress;
  }

  /** The console of the whole host: the children's metrics aggregated, their failures forwarded. */
  #consoleParts(): ConsoleParts {
    const queues = (): ConsoleQueue[] =>
      this.#handlers.map((h) => ({ queue: h.queue, events: h.events ?? null, dlq: `${h.queue}-dlq`, dlqName: h.dlqName, cap: h.concurrency, ordered: h.ordered }));
    this.#sampler ??= new ConsoleSampler({ metrics: () => this.#aggregateJson(), queues });
    return {
      role: 'cluster primary',
      processes: this.#cfg.processes,
      queues,
      sampler: this.#sampler,
      failures: this.#failures,
      failuresNote: `Failures happen in the ${this.#cfg.processes} children and are forwarded here; each shows its child.`,
      dlq: consoleDlq({ sqs: () => this.#own().clients.sqs, queues: lazyDlqRefs(() => this.#own().clients.sqs, () => this.#handlers), log: this.#log }),
      publish: null,
    };
  }

  stop(reason = 'stop'): Promise<void> {
    this.#stopping ??= this.#doStop(reason);
    return this.#stopping;
  }

  async #doStop(reason: string): Promise<void> {
    this.#draining = true;
    this.#log.info({ reason }, 'draining children');
    for (const s of this.#slots) clearTimeout(s.restartTimer);
    const alive = this.#slots.map((s) => s.worker).filter((w): w is Worker => w !== null && !w.isDead());
    // An IPC message, not a signal: on Ctrl-C the children already got SIGINT from the terminal,
    // and a second signal would make them exit at once.
    for (const w of alive) if (w.isConnected()) w.send({ type: 'eventbus:shutdown' } satisfies ToChild);
    const deadline = this.#cfg.shutdownTimeoutMs + 3_000;
    await Promise.all(
      alive.map(
        (w) =>
          new Promise<void>((resolve) => {
            if (w.isDead()) return resolve();
            const timer = setTimeout(() => {
              this.#log.error({ pid: w.process.pid }, 'child did not stop in time; killing it');
              w.process.kill('SIGKILL');
            }, deadline);
            w.once('exit', () => {
              clearTimeout(timer);
              resolve();
            });
          }),
      ),
    );
    this.#sampler?.stop();
    await this.#http?.close();
    await this.#extras?.close().catch(() => undefined);
    this.#ingress?.clients.sns.destroy();
    this.#ingress?.clients.sqs.destroy();
    this.#log.info('cluster stopped');
  }

  #fork(slot: ChildSlot): void {
    const worker = cluster.fork({ EVENTBUS_CHILD_INDEX: String(slot.index), EVENTBUS_CHILD_COUNT: String(this.#cfg.processes) });
    slot.worker = worker;
    slot.startedAt = Date.now();
  }

  #onMessage(worker: Worker, msg: FromChild): void {
    if (!msg || typeof msg !== 'object') return;
    if (msg.type === 'eventbus:failure') {
      this.#failures?.add(msg.failure);
      return;
    }
    if (msg.type === 'eventbus:started') {
      const slot = this.#slots.find((s) => s.worker === worker);
      if (slot) this.#log.info({ child: slot.index, pid: worker.process.pid }, 'child running');
      return;
    }
    if ('id' in msg) {
      const resolve = this.#pending.get(msg.id);
      if (resolve) {
        this.#pending.delete(msg.id);
        resolve(msg);
      }
    }
  }

  #onExit(worker: Worker, code: number | null, signal: string | null): void {
    const slot = this.#slots.find((s) => s.worker === worker);
    if (!slot) return;
    slot.worker = null;
    if (this.#draining) return;
    const lived = Date.now() - slot.startedAt;
    slot.failures = lived > STABLE_CHILD_MS ? 1 : slot.failures + 1;
    const delayMs = Math.min(30_000, 500 * 2 ** (slot.failures - 1));
    this.metrics.childRestarts.inc();
    this.#log.error({ child: slot.index, pid: worker.process.pid, code, signal, livedMs: lived, restartInMs: delayMs }, 'child died; restarting');
    slot.restartTimer = setTimeout(() => {
      if (!this.#draining) this.#fork(slot);
    }, delayMs);
  }

  /** Sends a request to every connected child and collects the answers that come in time. */
  async #ask<T extends FromChild>(type: 'eventbus:metrics' | 'eventbus:readiness'): Promise<Array<{ index: number; answer: T | null }>> {
    return Promise.all(
      this.#slots.map(
        (slot) =>
          new Promise<{ index: number; answer: T | null }>((resolve) => {
            const w = slot.worker;
            if (!w || w.isDead() || !w.isConnected()) return resolve({ index: slot.index, answer: null });
            const id = this.#nextId++;
            const timer = setTimeout(() => {
              this.#pending.delete(id);
              resolve({ index: slot.index, answer: null });
            }, CHILD_ANSWER_MS);
            this.#pending.set(id, (msg) => {
              clearTimeout(timer);
              resolve({ index: slot.index, answer: msg as T });
            });
            w.send({ type, id } satisfies ToChild);
          }),
      ),
    );
  }

  /** Every child's metrics plus the primary's own, aggregated; a child that does not answer is left out, not the scrape. */
  async #aggregateMetrics(): Promise<string> {
    return (await this.#aggregate()).metrics();
  }

  /** The same as JSON (the console's sampler). */
  async #aggregateJson(): Promise<metric[]> {
    return (await this.#aggregate()).getMetricsAsJSON() as Promise<metric[]>;
  }

  async #aggregate() {
    const answers = await this.#ask<Extract<FromChild, { type: 'eventbus:metrics' }>>('eventbus:metrics');
    const sets: metric[][] = [await this.metrics.registry.getMetricsAsJSON()];
    for (const a of answers) {
      if (a.answer) sets.push(a.answer.metrics);
      else if (!this.#draining) this.#log.warn({ child: a.index }, 'child did not answer the scrape');
    }
    return AggregatorRegistry.aggregate(sets);
  }

  async #readiness(): Promise<Readiness> {
    if (this.#draining) return { ready: false, reason: 'draining', state: 'draining', queues: {} };
    const answers = await this.#ask<Extract<FromChild, { type: 'eventbus:readiness' }>>('eventbus:readiness');
    const children: Record<string, unknown> = {};
    const notReady: string[] = [];
    for (const a of answers) {
      const r = a.answer?.readiness;
      children[String(a.index)] = r ?? { ready: false, reason: 'not running' };
      if (!r?.ready) notReady.push(`child ${a.index}: ${r?.reason ?? 'not running'}`);
    }
    return { ready: notReady.length === 0, reason: notReady.length ? notReady.join('; ') : null, state: 'running', queues: children };
  }
}
