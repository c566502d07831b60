import { builtInHandlers } from '../built-ins.js';
import { GetQueueAttributesCommand, GetQueueUrlCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { createMetrics, type Metrics } from '#metrics/registry.js';
import { slotReader } from './serve/slots.js';
import { createAwsClients, type AwsClients, type AwsSettings } from '../aws.js';
import type { Config } from '../config.js';
import { EventBusError, isNotFound, toAwsError } from '../errors.js';
import { isRetryableAwsError } from '../retryable.js';
import { HANDLER_GRACE_MS, loadHandlers, type ResolvedHandler } from '../handlers.js';
import { createLogger, type Logger } from '../log.js';
import { createPublisher, type Publisher } from '../publisher/index.js';
import { provision } from '../publisher/provision.js';
import { Acker } from './settle/acker.js';
import { callRetryDelayMs } from '../backoff.js';
import { Capacity } from './receive/capacity.js';
import { Dispatcher, type DispatcherOptions } from './run/dispatcher.js';
import { FailureEvents } from './settle/failure-events.js';
import { SqsHealth } from './serve/health.js';
import type { Readiness } from '../http/server.js';
import { InFlight } from './in-flight.js';
import { Poller } from './receive/poller.js';
import { HandlerPool } from './run/pool.js';
import { LoadModel } from './run/load-model.js';
import type { QueueRuntime } from './queue.js';
import { QUEUE_STATS_INTERVAL_MS, QueueStats } from './serve/queue-stats.js';
import { shareOf } from '../config.js';
import { extraRoutes, type ExtraRoutes } from '../http/routes.js';
import { resolveArchiveUrl } from '../archive/store.js';
import { flushTelemetry, loadTelemetrySetup, setupUrl } from '../telemetry/index.js';
import { bucketPlanOf, lazyPayloadStore, payloadSettingsOf, s3SettingsOf } from '../payloads/index.js';
import { GroupGate } from './run/group-gate.js';
import { resolveTopicArn } from '../publisher/topic.js';
import { groupWarnings } from '../ordering-check.js';
import { FailureLog, failureOf } from '../console/failures.js';
import { ConsoleSampler, SAMPLE_INTERVAL_MS, type ConsoleQueue } from '../console/sampler.js';
import { consoleDlq } from '../console/dlq.js';

export interface SupervisorOptions {
  config: Readonly<Config>;
  log?: Logger;
  /** Pretty log lines in worker threads too. */
  pretty?: boolean;
  /** Overrides the SDK settings built from config (the embedded emulator's credentials). */
  aws?: AwsSettings;
  /** Handlers already loaded; default: loaded from config.handlersDir. */
  handlers?: ResolvedHandler[];
  /** Opaque data for every handler thread (`threadData()`); structured-clone-safe. */
  threadData?: unknown;
  /** Long-poll wait (seconds); 20 unless a test needs a faster idle cycle. */
  waitTimeSec?: number;
  metrics?: Metrics;
  /** How often queue depths are read for eventbus_queue_messages (default 5 s). */
  queueStatsIntervalMs?: number;
  /** Observes each message's outcome once it is settled with SQS (eventbus/testing's results). */
  onSettled?: DispatcherOptions['onSettled'];
  /** The console's form that publishes a test event (`eventbus dev` only). */
  consolePublish?: boolean;
}

type State = 'created' | 'starting' | 'running' | 'draining' | 'stopped';

/** Lifecycle: resolve queues, start the pool and pollers; stop = quiet, finish receives, drain, release, teardown. */
/** A console page polls the overview every 2 s: one asked within this long is open. */
const CONSOLE_VIEW_MS = 10_000;

export class Supervisor {
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly #o: SupervisorOptions;
  readonly #cfg: Readonly<Config>;
  readonly #health = new SqsHealth();
  #state: State = 'created';
  #stateReason: string | null = 'starting';
  #clients: AwsClients | undefined;
  #queues: QueueRuntime[] = [];
  #pollers: Poller[] = [];
  #pool: HandlerPool | undefined;
  #capacity: Capacity | undefined;
  #inFlight: InFlight | undefined;
  #acker: Acker | undefined;
  #dispatcher: Dispatcher | undefined;
  /** Group gates of the queues with ordered or groupConcurrency handlers (issue 17). */
  readonly #gates = new Map<string, GroupGate>();
  #failureEvents: FailureEvents | undefined;
  #queueStats: QueueStats | undefined;
  #publisher: Publisher | null = null;
  #http: Awaited<ReturnType<typeof import('../http/server.js').startHttp>> | undefined;
  /** HTTP coming up beside the queue lookup and the threads' start; rejects when the port cannot be had. */
  #httpStarting: Promise<void> | undefined;
  #httpFailure: unknown;
  #extras: ExtraRoutes | undefined;
  #stopping: Promise<void> | undefined;
  #startAbort = new AbortController();
  /** The console's latest failures (console.enabled; a cluster child forwards them to the primary). */
  readonly failures: FailureLog | null;
  #sampler: ConsoleSampler | undefined;

  constructor(options: SupervisorOptions) {
    this.#o = options;
    this.#cfg = options.config;
    this.log = options.log ?? createLogger({ level: options.config.logLevel, pretty: options.pretty ?? false });
    this.metrics = options.metrics ?? createMetrics();
    this.metrics.followReadiness(() => this.readiness().ready);
    this.failures = options.config.console.enabled ? new FailureLog() : null;
  }

  get state(): State {
    return this.#state;
  }

  get httpPort(): number | undefined {
    return this.#http?.port;
  }

  get queues(): readonly QueueRuntime[] {
    return this.#queues;
  }

  /** Current capacity numbers (tests, status). */
  get capacity(): { globalCap: number; total: number; poolCapacity: number } | undefined {
    if (!this.#capacity || !this.#pool) return undefined;
    return { globalCap: this.#capacity.globalCap, total: this.#capacity.total, poolCapacity: this.#pool.capacity };
  }

  readiness(): Readiness {
    const failingMs = this.#health.failingForMs();
    const queues: Record<string, unknown> = {};
    this.#pollers.forEach((p, i) => {
      const q = this.#queues[i]!.queue;
      queues[q] = { state: p.state, inFlight: this.#inFlight?.countOf(q) ?? 0 };
    });
    let reason = this.#state === 'running' ? null : this.#stateReason ?? this.#state;
    if (!reason && failingMs > this.#cfg.readiness.sqsFailureSec * 1000) {
      // State only: an SQS error text can carry the account id and role ARN; it is in the log.
      const key = this.#health.failingKey;
      reason = `SQS calls failing for ${Math.round(failingMs / 1000)} s${key && key !== '*' ? ` (${key})` : ''}; the error is in the log`;
    }
    return { ready: reason === null, reason, state: this.#state, queues };
  }

  /** Starts everything; rejects (with every problem named) when the handlers or queues are wrong. */
  async start(): Promise<void> {
    if (this.#state !== 'created') throw new Error('supervisor already started');
    this.#state = 'starting';
    const cfg = this.#cfg;
    const telemetrySetup = cfg.telemetry.setup ? setupUrl(cfg.telemetry.setup) : null;
    try {
      // The user's OpenTelemetry SDK before anything else runs (each worker thread loads it too).
      await loadTelemetrySetup(telemetrySetup);
      const child = cfg.child;
      // In a cluster child, every per-queue cap is this child's exact share of the host's cap.
      // Handler defaults are resolved against the host-wide cap, then split once.
      const handlers = (this.#o.handlers ?? (await loadHandlers({ ...cfg, concurrency: cfg.hostConcurrency }, builtInHandlers(cfg)))).map((h) =>
        child ? { ...h, concurrency: shareOf(h.concurrency, child), prefetch: Math.min(shareOf(h.prefetch, child), shareOf(h.concurrency, child)) } : h,
      );
      const starved = handlers.filter((h) => h.concurrency < 1).map((h) => h.queue);
      if (starved.length) {
        throw new EventBusError('ERR_CONFIG_INVALID', `invalid config: queues ${starved.join(', ')} get no slot in child ${child?.index}: a per-queue cap must be >= processes`);
      }
      if (handlers.length === 0) {
        throw new EventBusError('ERR_HANDLERS_DIR', `no handlers found in ${cfg.handlersDir} (top-level .js/.mjs files with a default export)`);
      }
      const effectiveCap = Math.min(cfg.concurrency, cfg.threads * cfg.tasksPerThread);
      if (effectiveCap < handlers.length) {
        throw new EventBusError(
          'ERR_CONFIG_INVALID',
          `invalid config: concurrency (${cfg.concurrency}, or threads x tasksPerThread = ${cfg.threads * cfg.tasksPerThread} if lower) must be at least the number of queues (${handlers.length}), so an idle long poll per queue fits`,
        );
      }
      // The load model asks the pool and the slots; both are made below, before any message.
      const load = new LoadModel({
        notStarted: (queue) => this.#pool!.moreNotStartedThan(queue, 0),
        belowSettlingBound: (queue) => {
          const c = this.#capacity!;
          return c.settlingOf(queue) < c.capOf(queue) && c.settlingTotal < c.globalCap;
        },
      });
      this.#pool = new HandlerPool({
        threads: cfg.threads,
        tasksPerThread: cfg.tasksPerThread,
        onThreadBusyShare: (queue, share) => load.taskBusyShare(queue, share),
        onOffloaded: (eventType) => this.metrics.payloadsOffloaded.inc({ event_type: eventType ?? 'none' }),
        // Spread tasks over the threads while any queue's handlers take their thread's time (or are not known yet).
        spreadTasks: () => handlers.some((h) => load.splitsBatch(h.queue)),
        ...(cfg.threadHeapMb ? { resourceLimits: { maxOldGenerationSizeMb: cfg.threadHeapMb } } : {}),
        log: this.log,
        threadData: this.#o.threadData,
        worker: {
          handlers: handlers.map((h) => ({ queue: h.queue, file: h.file })),
          aws: this.#o.aws ?? { endpoint: cfg.endpoint, region: cfg.region },
          source: cfg.source,
          logLevel: cfg.logLevel,
          pretty: this.#o.pretty ?? false,
          graceMs: HANDLER_GRACE_MS,
          archiveUrl: cfg.archive.enabled ? resolveArchiveUrl(cfg.archive.url) : null,
          telemetrySetup,
          s3: s3SettingsOf(this.#o.aws ?? { endpoint: cfg.endpoint, region: cfg.region }, cfg),
          payloads: payloadSettingsOf(cfg),
        },
      });
      // The threads load the handlers (and run their setup) while HTTP starts and the queues are
      // looked up: start-up is the longer of the two, not their sum.
      const warm = this.#pool.warmup();
      warm.catch(() => undefined); // awaited below; a failure before then is not unhandled
      if (!child) {
        // A cluster child has no port: the primary serves HTTP for all of them.
        // Webhook ingress and /events, when configured; webhooks answer 503 until the topic is resolved.
        this.#extras = extraRoutes({ config: cfg, metrics: this.metrics, log: this.log, publisher: () => this.#publisher, console: () => this.#consoleParts() });
        const extras = this.#extras;
        // Its module (fastify) and start take the main thread ~50-100 ms, which otherwise waits
        // on the queue lookup and the threads: start-up to the first receive is not their sum.
        this.#httpStarting = import('../http/server.js')
          .then(({ startHttp }) =>
            startHttp({
              host: cfg.http.host,
              port: cfg.http.port,
              registry: this.metrics.registry,
              readiness: () => this.readiness(),
              routes: (app) => extras.register(app),
            }),
          )
          .then((http) => {
            this.#http = http;
            this.log.info({ host: cfg.http.host, port: http.port }, 'http listening');
          });
        this.#httpStarting.catch((err: unknown) => {
          // A port that cannot be had fails the start now, not after SQS answers.
          this.#httpFailure = err;
          this.#startAbort.abort();
        });
      }
      const awsSettings = this.#o.aws ?? { endpoint: cfg.endpoint, region: cfg.region };
      this.#clients = createAwsClients(awsSettings);
      for (const w of groupWarnings(handlers)) this.log.warn(w.fields, w.msg);
      const { topicArn, fifoTopicArn, queues } = await this.#retryAtStart('resolve queues', () => this.#resolveTopology(handlers));
      this.#queues = queues;
      if (this.#stopping) return;
      this.#publisher = topicArn
        ? createPublisher({
            sns: this.#clients.sns,
            topic: topicArn,
            fifoTopic: fifoTopicArn ?? undefined,
            source: cfg.source,
            onPublished: (type, n) => this.metrics.published.inc({ event_type: type }, n),
            payloads: this.#payloads(awsSettings),
          })
        : null;

      this.#pool.topicArn = topicArn;
      this.#pool.fifoTopicArn = fifoTopicArn;
      this.#stateReason = 'starting: loading handlers in the worker threads';
      await warm;
      await this.#httpStarting;
      if (this.#stopping) {
        // stop() ran while the threads were starting; it may have missed the pool.
        await this.#pool.destroy();
        return;
      }
      const globalCap = Math.min(cfg.concurrency, this.#pool.capacity);
      if (globalCap < cfg.concurrency) {
        this.log.warn({ concurrency: cfg.concurrency, threads: cfg.threads, tasksPerThread: cfg.tasksPerThread }, 'thread pool capacity is below concurrency; the pool limits');
      }
      this.#capacity = new Capacity(
        globalCap,
        Object.fromEntries(handlers.map((h) => [h.queue, h.concurrency])),
        Object.fromEntries(handlers.map((h) => [h.queue, h.prefetch])),
      );
      this.metrics.followSlots(slotReader(handlers.map((h) => h.queue), this.#capacity, this.#pool));
      this.#acker = new Acker({
        sqs: this.#clients.sqs,
        log: this.log,
        health: this.#health,
        onError: (queue, operation, n) => this.metrics.sqsErrors.inc({ queue, operation }, n),
        holdDeletes: (queue) => load.holdsDeletes(queue),
      });
      this.#inFlight = new InFlight({ sqs: this.#acker, log: this.log, metrics: this.metrics });
      this.#failureEvents = new FailureEvents({
        enabled: cfg.failureEvents.enabled,
        maxPerSecond: cfg.failureEvents.maxPerSecond,
        publisher: () => this.#publisher,
        log: this.log,
        onSuppressed: (queue) => this.metrics.failureEventsSuppressed.inc({ queue }),
      });
      this.#dispatcher = new Dispatcher({
        pool: this.#pool,
        acker: this.#acker,
        inFlight: this.#inFlight,
        capacity: this.#capacity,
        load,
        metrics: this.metrics,
        failureEvents: this.#failureEvents,
        log: this.log,
        retry: cfg.retry,
        onSettled: this.#onSettled(),
        gates: this.#gates,
      });
      for (const q of queues) {
        if (!q.handler.ordered && q.handler.groupConcurrency === null) continue;
        const dispatcher = this.#dispatcher;
        this.#gates.set(
          q.queue,
          new GroupGate({ queue: q, capacity: this.#capacity, inFlight: this.#inFlight, run: (m, h, done) => dispatcher.run(q, m, h, done), metrics: this.metrics, log: this.log }),
        );
      }
      for (const q of queues) {
        const p = new Poller({
          queue: q,
          sqs: this.#clients.sqs,
          capacity: this.#capacity,
          dispatcher: this.#dispatcher,
          load,
          inFlight: this.#inFlight,
          metrics: this.metrics,
          health: this.#health,
          log: this.log,
          ...(this.#o.waitTimeSec !== undefined ? { waitTimeSec: this.#o.waitTimeSec } : {}),
        });
        this.#pollers.push(p);
      }
      if (this.#stopping) return;
      for (const p of this.#pollers) p.start();
      if (!child || child.index === 0) {
        this.#queueStats = new QueueStats({
          sqs: this.#clients.sqs,
          queues,
          metrics: this.metrics,
          log: this.log,
          onError: (queue) => this.metrics.sqsErrors.inc({ queue, operation: 'GetQueueAttributes' }),
          // While a console page shows the overview, depths at its pace (2 s); otherwise the usual 5 s
          // (an unwatched console must not triple the GetQueueAttributes calls of every host).
          ...(this.#o.queueStatsIntervalMs
            ? { intervalMs: this.#o.queueStatsIntervalMs }
            : cfg.console.enabled
              ? { intervalMs: () => (this.#sampler?.viewedWithin(CONSOLE_VIEW_MS) ? SAMPLE_INTERVAL_MS : QUEUE_STATS_INTERVAL_MS) }
              : {}),
        });
        this.#queueStats.start();
      }
      this.#sampler?.start();
      this.#state = 'running';
      this.#stateReason = null;
      this.log.info(
        {
          queues: queues.map((q) => ({ queue: q.queue, events: q.handler.events ?? 'all', concurrency: this.#capacity!.capOf(q.queue), prefetch: this.#capacity!.prefetchCapOf(q.queue) })),
          concurrency: globalCap,
          threads: cfg.threads,
          tasksPerThread: cfg.tasksPerThread,
          http: this.#http?.port ?? null,
          ...(child ? { child: child.index } : {}),
        },
        'supervisor running',
      );
    } catch (err) {
      // A stop asked for during the start is not a start failure.
      if (this.#stopping) return;
      await this.stop('start failed');
      throw this.#httpFailure ?? err;
    }
  }

  /** Graceful stop (SPEC "Shutdown"); idempotent: every caller gets the same promise. */
  stop(reason = 'stop'): Promise<void> {
    this.#stopping ??= this.#doStop(reason);
    return this.#stopping;
  }

  async #doStop(reason: string): Promise<void> {
    const started = Date.now();
    const deadline = started + this.#cfg.shutdownTimeoutMs;
    // Reserve the tail of the deadline for aborting, releasing, teardown and closing.
    const drainUntil = deadline - Math.min(5_000, this.#cfg.shutdownTimeoutMs / 3);
    this.#state = 'draining';
    this.#stateReason = 'draining';
    this.#startAbort.abort();
    if (this.#pollers.length) this.log.info({ reason, inFlight: this.#inFlight?.size ?? 0 }, 'draining');
    // Every step runs even if one throws, and none may wait past its share of the deadline.
    const step = async (name: string, fn: () => unknown, untilMs = deadline) => {
      let timer: NodeJS.Timeout | undefined;
      try {
        const timedOut = new Promise<'timeout'>((resolve) => (timer = setTimeout(() => resolve('timeout'), Math.max(0, untilMs - Date.now()))));
        if ((await Promise.race([Promise.resolve().then(fn), timedOut])) === 'timeout') {
          this.log.warn({ step: name }, 'shutdown step ran out of time');
        }
      } catch (err) {
        this.log.error({ err, step: name }, 'shutdown step failed');
      } finally {
        clearTimeout(timer);
      }
    };
    await step('stop queue stats', () => {
      this.#queueStats?.stop();
      this.#sampler?.stop();
    });
    await step('stop pollers', () => Promise.all(this.#pollers.map((p) => p.stop())), drainUntil);
    // Messages waiting for their group: released now, like prefetched ones (no new start meanwhile).
    await step('release parked', () => Promise.all([...this.#gates.values()].map((g) => g.stop())), drainUntil);
    await step('drain handlers', async () => {
      if (!this.#dispatcher) return;
      let settled = await this.#dispatcher.idle(Math.max(0, drainUntil - Date.now()));
      if (!settled && this.#pool) {
        this.#dispatcher.releaseFailures();
        this.#pool.abortAll('supervisor shutting down');
        settled = await this.#dispatcher.idle(Math.min(HANDLER_GRACE_MS, Math.max(0, (deadline - Date.now()) / 2)));
      }
      if (!settled && this.#inFlight) {
        // Hands back what is still in flight (never a message whose delete is on its way).
        const released = await this.#inFlight.releaseAll('shutdown');
        if (released) this.log.warn({ released }, 'released unfinished messages at the shutdown deadline');
      }
    });
    await step('flush acks', () => this.#acker?.flush(), deadline - 500);
    await step('failure events', () => this.#failureEvents?.flush(), deadline - 400);
    await step('stop extensions', () => this.#inFlight?.stop());
    await step('teardown', async () => {
      if (!this.#pool) return;
      const r = await this.#pool.teardown(Math.max(100, deadline - Date.now() - 500));
      if (r.acked < r.threads) this.log.warn(r, 'not every thread finished its teardown in time');
    });
    await step('close pool', () => this.#pool?.destroy(), Math.max(deadline, Date.now() + 1_000));
    await step('close capacity', () => this.#capacity?.close());
    // The main thread's spans (failure events' publishes); the threads flushed theirs at teardown.
    await step('flush telemetry', () => flushTelemetry(Math.max(100, deadline - Date.now())), Math.max(deadline, Date.now() + 100));
    await step(
      'close http',
      async () => {
        await this.#httpStarting?.catch(() => undefined);
        await this.#http?.close();
      },
      Math.max(deadline, Date.now() + 500),
    );
    await step('close archive', () => this.#extras?.close());
    await step('close clients', () => {
      this.#clients?.sqs.destroy();
      this.#clients?.sns.destroy();
    });
    this.#state = 'stopped';
    if (this.#pollers.length) this.log.info({ ms: Date.now() - started }, 'stopped');
  }

  /** The settled-message observers: the caller's (eventbus/testing), and the console's failures. */
  #onSettled(): DispatcherOptions['onSettled'] {
    const caller = this.#o.onSettled;
    const failures = this.failures;
    if (!failures) return caller;
    return (settled) => {
      caller?.(settled);
      const f = failureOf(settled);
      if (f) failures.add(f);
    };
  }

  /** The handler queues as the console lists them (empty until they are resolved). */
  #consoleQueues(): ConsoleQueue[] {
    return this.#queues.map((q) => ({
      queue: q.queue,
      events: q.handler.events ?? null,
      dlq: q.dlqUrl ? `${q.queue}-dlq` : null,
      dlqName: q.dlqUrl ? q.handler.dlqName : null,
      cap: this.#capacity?.capOf(q.queue) ?? q.handler.concurrency,
      ordered: q.handler.ordered,
    }));
  }

  /** What the console shows of this supervisor (its HTTP port serves it). */
  #consoleParts(): import('../http/routes.js').ConsoleParts {
    this.#sampler ??= new ConsoleSampler({
      metrics: () => this.metrics.registry.getMetricsAsJSON(),
      queues: () => this.#consoleQueues(),
      threads: () => this.#pool?.threadReadings() ?? [],
    });
    return {
      role: 'supervisor',
      processes: 1,
      queues: () => this.#consoleQueues(),
      sampler: this.#sampler,
      failures: this.failures,
      dlq: consoleDlq({
        sqs: () => this.#clients?.sqs ?? null,
        queues: () => this.#queues.map((q) => ({ queue: q.queue, queueName: q.handler.queueName, dlqName: q.handler.dlqName, url: q.url, dlqUrl: q.dlqUrl })),
        log: this.log,
      }),
      publish: this.#o.consolePublish
        ? async (type, data) => {
            if (!this.#publisher) throw new Error('the topic is not resolved yet');
            return { id: (await this.#publisher.createEvent(type, data as never)).id };
          }
        : null,
    };
  }

  /** The main thread's publisher's large events (webhook ingress, failure events); null without a bucket. */
  #payloads(aws: AwsSettings) {
    const settings = payloadSettingsOf(this.#cfg);
    if (!settings) return null;
    const s3 = s3SettingsOf(aws, this.#cfg);
    return { ...settings, store: lazyPayloadStore(s3), onOffloaded: (type: string | null) => this.metrics.payloadsOffloaded.inc({ event_type: type ?? 'none' }) };
  }

  async #retryAtStart<T>(what: string, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        const out = await fn();
        this.#health.ok();
        return out;
      } catch (err) {
        const cause = (err as { cause?: unknown }).cause ?? err;
        if (!isRetryableAwsError(cause) || this.#startAbort.signal.aborted) throw err;
        this.#health.failed();
        this.#stateReason = `starting: ${what} failed, retrying`;
        const delayMs = callRetryDelayMs(attempt, 30_000, 500);
        this.log.warn({ err, retryInMs: delayMs }, `${what} failed; retrying`);
        // One listener at a time: an outage of many retries must not collect one per attempt.
        await new Promise<void>((resolve) => {
          const signal = this.#startAbort.signal;
          const done = () => {
            clearTimeout(timer);
            signal.removeEventListener('abort', done);
            resolve();
          };
          const timer = setTimeout(done, delayMs);
          signal.addEventListener('abort', done, { once: true });
        });
        if (this.#startAbort.signal.aborted) throw err;
      }
    }
  }

  async #resolveTopology(handlers: ResolvedHandler[]): Promise<{ topicArn: string | null; fifoTopicArn: string | null; queues: QueueRuntime[] }> {
    const clients = this.#clients!;
    if (this.#cfg.provision) {
      const aws = this.#o.aws ?? { endpoint: this.#cfg.endpoint, region: this.#cfg.region };
      const r = await provision(clients, { topic: this.#cfg.topic, fifoTopic: this.#cfg.fifoTopic, handlers, log: this.log, payloads: bucketPlanOf(aws, this.#cfg), kmsKeyId: this.#cfg.sqs.kmsKeyId, tags: this.#cfg.tags });
      const byQueue = new Map(r.queues.map((q) => [q.queue, q]));
      return {
        topicArn: r.topicArn,
        fifoTopicArn: r.fifoTopicArn,
        queues: handlers.map((h) => {
          const t = byQueue.get(h.queue)!;
          return { queue: h.queue, url: t.url, arn: t.arn, dlqUrl: t.dlqUrl, handler: h };
        }),
      };
    }
    const queues = await lookupQueues(clients.sqs, handlers, this.log);
    let topicArn: string | null = null;
    try {
      topicArn = await createPublisher({ sns: clients.sns, topic: this.#cfg.topic, source: this.#cfg.source }).topicArn();
    } catch (err) {
      // A topic that does not exist fails the start with its fix ("run eventbus provision"), like a
      // missing queue; an outage is retried by the caller; anything else leaves publishing off.
      if ((err as EventBusError).code === 'ERR_TOPIC_NOT_FOUND' || isRetryableAwsError((err as { cause?: unknown }).cause)) throw err;
      this.log.warn({ err, topic: this.#cfg.topic }, 'topic not resolved: failure events and ctx.publish are off');
    }
    let fifoTopicArn: string | null = null;
    try {
      fifoTopicArn = await resolveTopicArn(clients.sns, this.#cfg.fifoTopic);
    } catch (err) {
      // Missing: a deployment provisioned before issue 17. Fatal only where an ordered handler runs
      // (its queue is subscribed to it); elsewhere ctx.publish's grouped events go to the topic only.
      if (isRetryableAwsError((err as { cause?: unknown }).cause) || ((err as EventBusError).code === 'ERR_TOPIC_NOT_FOUND' && handlers.some((h) => h.ordered))) throw err;
      this.log.warn({ err, fifoTopic: this.#cfg.fifoTopic }, 'FIFO topic not resolved: ctx.publish sends events with a groupId to the topic only (run eventbus provision)');
    }
    return { topicArn, fifoTopicArn, queues };
  }
}

/** Looks every queue up; all missing queues are reported together. Drift from the declaration is a warning. */
export async function lookupQueues(sqs: SQSClient, handlers: ResolvedHandler[], log: Logger): Promise<QueueRuntime[]> {
  const missing: string[] = [];
  const out: QueueRuntime[] = [];
  for (const h of handlers) {
    let url: string;
    try {
      url = (await sqs.send(new GetQueueUrlCommand({ QueueName: h.queueName }))).QueueUrl!;
    } catch (err) {
      if (isNotFound(err)) {
        missing.push(h.queueName);
        continue;
      }
      throw toAwsError('GetQueueUrl', h.queueName, err);
    }
    let attrs: Record<string, string>;
    try {
      attrs = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn', 'VisibilityTimeout', 'RedrivePolicy'] }))).Attributes ?? {};
    } catch (err) {
      throw toAwsError('GetQueueAttributes', h.queueName, err);
    }
    let dlqUrl: string | null = null;
    try {
      dlqUrl = (await sqs.send(new GetQueueUrlCommand({ QueueName: h.dlqName }))).QueueUrl ?? null;
    } catch (err) {
      if (!isNotFound(err)) throw toAwsError('GetQueueUrl', h.dlqName, err);
    }
    const drift: string[] = [];
    if (Number(attrs.VisibilityTimeout) !== h.visibilityTimeoutSec) drift.push(`VisibilityTimeout is ${attrs.VisibilityTimeout}, handler declares ${h.visibilityTimeoutSec}`);
    let redrive: { maxReceiveCount?: number | string; deadLetterTargetArn?: string } = {};
    try {
      redrive = attrs.RedrivePolicy ? (JSON.parse(attrs.RedrivePolicy) as typeof redrive) : {};
    } catch {
      drift.push('RedrivePolicy is not JSON');
    }
    if (!attrs.RedrivePolicy) drift.push(`no RedrivePolicy: failing messages never reach ${h.dlqName}`);
    else if (Number(redrive.maxReceiveCount) !== h.maxReceiveCount) drift.push(`maxReceiveCount is ${redrive.maxReceiveCount}, handler declares ${h.maxReceiveCount}`);
    if (drift.length) log.warn({ queue: h.queue, drift }, 'queue differs from its handler declaration (run eventbus provision)');
    out.push({ queue: h.queue, url, arn: attrs.QueueArn ?? '', dlqUrl, handler: h });
  }
  if (missing.length) {
    throw new EventBusError(
      'ERR_QUEUE_NOT_FOUND',
      `queues not found: ${missing.join(', ')} (create them with "eventbus provision", or start with provision: true)`,
    );
  }
  return out;
}
