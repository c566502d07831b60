import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Config, QueueOverride } from '../config.js';
import { EventBusError } from '../errors.js';
import type { ResolvedHandler } from '../handlers.js';
import type { SettledMessage } from '../supervisor/run/dispatcher.js';
import type { CloudEvent, EventOptions, HandlerResult } from '../types.js';
import { TEST_SOURCE } from './make-event.js';

/** The keys the kit sets itself: the emulator's endpoint, provisioning, the handlers, one process. */
type OwnedKeys = 'endpoint' | 'region' | 'provision' | 'handlersDir' | 'processes' | 'child' | 'hostConcurrency';

type DeepPartial<T> = { [K in keyof T]?: T[K] extends readonly unknown[] ? T[K] : T[K] extends object ? DeepPartial<T[K]> : T[K] };

/** Config overrides of a test bus: any config key (as in the JSON config file) but the ones the kit owns. */
export type TestBusConfig = DeepPartial<Omit<Config, OwnedKeys | 'webhooks' | 'queues'>> & {
  queues?: Record<string, QueueOverride>;
  /** As in the config file: `sources.<name>` takes `secret` or `secrets`, `header`, ... */
  webhooks?: DeepPartial<Omit<Config['webhooks'], 'sources'>> & { sources?: Record<string, Record<string, unknown>> };
};

interface TestBusCommonOptions {
  /** Config overrides. The kit's defaults over the product's: `logLevel: 'silent'`, `threads: 2`, `shutdownTimeoutMs: 5000`, HTTP on 127.0.0.1 port 0, a unique `topic` and `queuePrefix`, `source: 'eventbus-test'`. */
  config?: TestBusConfig;
  /** Default timeout of `waitFor`, in ms (10 000). */
  timeoutMs?: number;
  /** Pretty log lines instead of JSON (when `config.logLevel` turns them on). */
  prettyLogs?: boolean;
}

/**
 * What `startTestBus` takes. Handlers run in worker threads, which import them by file: give a
 * compiled handlers folder (scanned as the supervisor scans `handlersDir`) or a list of handler
 * module files (`.js`/`.mjs`), never definition objects.
 */
export type TestBusOptions = TestBusCommonOptions &
  ({ handlersDir: string | URL; handlerFiles?: never } | { handlerFiles: ReadonlyArray<string | URL>; handlersDir?: never });

/** One message's outcome on a test bus, recorded once the supervisor has settled it with SQS. */
export interface TestResult {
  /** Logical queue name (without the bus's prefix). */
  queue: string;
  /** The decoded event's type; null for a body without one. */
  eventType: string | null;
  eventId: string;
  messageId: string;
  receiveCount: number;
  result: HandlerResult;
  /** `name: message` of what went wrong, for every result but `success`. */
  error?: string;
  durationMs: number;
}

/** Which results `waitFor` waits for; every given field must match. */
export interface ResultFilter {
  queue?: string;
  type?: string;
  eventId?: string;
  result?: HandlerResult | readonly HandlerResult[];
  /** How many matching results to wait for (1). */
  count?: number;
}

/** Where a test bus listens. */
export interface TestBusEndpoints {
  /** The emulator's SNS/SQS endpoint, `http://127.0.0.1:<port>`. */
  endpoint: string;
  /** SDK client settings for the emulator: `new SQSClient(bus.aws)`. */
  aws: { endpoint: string; region: string; credentials: { accessKeyId: string; secretAccessKey: string } };
  /** The supervisor's HTTP port (`/metrics`, `/healthz`, `/readyz`, webhooks): `http://127.0.0.1:<port>`. */
  httpUrl: string;
  ports: { emulator: number; http: number };
}

/** A provisioned queue of a test bus. */
export interface TestBusQueue {
  queue: string;
  /** The SQS name, `<queuePrefix><queue>`. */
  queueName: string;
  url: string;
  dlqUrl: string | null;
  /** Its subscription filter; null = every event. */
  events: string[] | null;
}

/** A running supervisor on its own embedded emulator (`startTestBus`). */
export interface TestBus extends TestBusEndpoints {
  /** Publishes to the bus's topic as a service would; resolves to the event as sent. */
  publish<T = unknown>(type: string, data: T, opts?: EventOptions): Promise<CloudEvent<T>>;
  /**
   * Resolves with every result so far that matches (oldest first) once there are `count` (1) of
   * them, counting results from before the call; rejects after `timeoutMs` with what was seen. Match
   * `eventId: (await bus.publish(...)).id` to wait for one event's outcome.
   */
  waitFor(match?: ResultFilter | ((result: TestResult) => boolean), options?: { timeoutMs?: number; count?: number }): Promise<TestResult[]>;
  /** Every outcome so far, oldest first (live). */
  readonly results: readonly TestResult[];
  readonly topic: string;
  readonly queuePrefix: string;
  readonly queues: readonly TestBusQueue[];
  /** The effective config. */
  readonly config: Readonly<Config>;
  /** Stops the supervisor (a graceful drain), then the emulator; idempotent. Nothing keeps the process alive after it. */
  stop(): Promise<void>;
}

const DEFAULT_WAIT_MS = 10_000;
const FILTER_KEYS = new Set(['queue', 'type', 'eventId', 'result', 'count']);
/** Results listed in a waitFor timeout message. */
const SHOWN_RESULTS = 20;

/**
 * Starts the real supervisor for integration tests: the embedded emulator (fauxqs, a dev
 * dependency of your project) on 127.0.0.1 port 0, a unique topic and queue prefix, the topology
 * provisioned from the handlers, HTTP on 127.0.0.1 port 0, logs silent. Reads no environment
 * variable and no config file. Call `stop()` when done (in `after`/`t.teardown`).
 */
export async function startTestBus(options: TestBusOptions): Promise<TestBus> {
  const o = checkOptions(options);
  const [{ startEmulator }, { loadConfig }, { Supervisor }, { createAwsClients }, { createPublisher }] = await Promise.all([
    import('../emulator.js'),
    import('../config.js'),
    import('../supervisor/supervisor.js'),
    import('../aws.js'),
    import('../publisher/index.js'),
  ]);
  let emulator: Awaited<ReturnType<typeof startEmulator>>;
  try {
    emulator = await startEmulator({ port: 0 });
  } catch (err) {
    if ((err as EventBusError).code === 'ERR_EMULATOR_MISSING') {
      throw new EventBusError(
        'ERR_EMULATOR_MISSING',
        'startTestBus runs the embedded SNS/SQS emulator, fauxqs, which is not installed in this project: npm i -D fauxqs (on Node 20: npm i -D fauxqs@1.9.2)',
        { cause: err },
      );
    }
    throw err;
  }
  const results: TestResult[] = [];
  const waiters = new Set<Waiter>();
  let clients: ReturnType<typeof createAwsClients> | undefined;
  let sup: InstanceType<typeof Supervisor> | undefined;
  try {
    const id = randomUUID().slice(0, 8);
    const user = options.config ?? {};
    const config = loadConfig({
      env: {},
      overrides: {
        logLevel: 'silent',
        threads: 2,
        shutdownTimeoutMs: 5_000,
        topic: `eventbus-test-${id}`,
        queuePrefix: `test-${id}-`,
        source: TEST_SOURCE,
        ...user,
        http: { host: '127.0.0.1', port: 0, ...user.http },
        endpoint: emulator.endpoint,
        region: emulator.aws.region,
        provision: true,
        ...(o.handlersDir !== undefined ? { handlersDir: o.handlersDir } : {}),
      },
    });
    const handlers = o.handlerFiles ? await resolveHandlerFiles(o.handlerFiles, config) : undefined;
    sup = new Supervisor({
      config,
      aws: emulator.aws,
      pretty: options.prettyLogs ?? false,
      ...(handlers ? { handlers } : {}),
      onSettled: (s) => {
        results.push(toResult(s));
        for (const w of waiters) w.check();
      },
    });
    await sup.start();
    clients = createAwsClients(emulator.aws);
    const publisher = createPublisher({ sns: clients.sns, topic: config.topic, fifoTopic: config.fifoTopic, source: config.source });
    const queues: TestBusQueue[] = sup.queues.map((q) => ({ queue: q.queue, queueName: q.handler.queueName, url: q.url, dlqUrl: q.dlqUrl, events: q.handler.events }));
    const httpPort = sup.httpPort ?? 0;
    const supervisor = sup;
    const busClients = clients;
    let stopping: Promise<void> | undefined;
    const bus: TestBus = {
      endpoint: emulator.endpoint,
      aws: { endpoint: emulator.endpoint, region: emulator.aws.region ?? 'us-east-1', credentials: { ...emulator.aws.credentials! } },
      httpUrl: `http://127.0.0.1:${httpPort}`,
      ports: { emulator: emulator.port, http: httpPort },
      topic: config.topic,
      queuePrefix: config.queuePrefix,
      queues,
      config,
      results,
      publish<T>(type: string, data: T, opts?: EventOptions) {
        return publisher.createEvent(type, data, opts) as Promise<CloudEvent<T>>;
      },
      waitFor(match = {}, waitOptions = {}) {
        try {
          return waitForResults({ results, waiters, queues, stopped: () => stopping !== undefined }, match, waitOptions.timeoutMs ?? o.timeoutMs, waitOptions.count);
        } catch (err) {
          return Promise.reject(err);
        }
      },
      stop() {
        stopping ??= (async () => {
          try {
            await supervisor.stop('test bus stopped');
          } finally {
            busClients.sqs.destroy();
            busClients.sns.destroy();
            await emulator.stop();
            for (const w of waiters) w.fail('the bus stopped');
          }
        })();
        return stopping;
      },
    };
    return bus;
  } catch (err) {
    // A failed start leaves nothing behind: the supervisor stopped itself; the emulator and clients are ours.
    clients?.sqs.destroy();
    clients?.sns.destroy();
    await emulator.stop();
    throw err;
  }
}

function checkOptions(options: TestBusOptions): { handlersDir?: string; handlerFiles?: string[]; timeoutMs: number } {
  if (!options || typeof options !== 'object') throw new TypeError('startTestBus(options): options must be an object with handlersDir or handlerFiles');
  const hasDir = options.handlersDir !== undefined;
  const hasFiles = options.handlerFiles !== undefined;
  if (hasDir === hasFiles) {
    throw new TypeError('startTestBus: give exactly one of handlersDir (a compiled handlers folder) and handlerFiles (handler module files)');
  }
  const timeoutMs = options.timeoutMs ?? DEFAULT_WAIT_MS;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new TypeError(`startTestBus: timeoutMs must be a positive number of ms, got ${options.timeoutMs}`);
  if (hasFiles) {
    if (!Array.isArray(options.handlerFiles) || options.handlerFiles.length === 0) {
      throw new TypeError('startTestBus: handlerFiles must be a non-empty array of handler module paths or file: URLs');
    }
    return { handlerFiles: options.handlerFiles.map(toPath), timeoutMs };
  }
  return { handlersDir: toPath(options.handlersDir!), timeoutMs };
}

function toPath(p: string | URL): string {
  return resolve(p instanceof URL || p.startsWith('file:') ? fileURLToPath(p) : p);
}

/** The loader's checks for an explicit list of files (the folder's scan aside, what the supervisor's start does). */
async function resolveHandlerFiles(files: string[], config: Readonly<Config>): Promise<ResolvedHandler[]> {
  const [{ loadHandlers }, { builtInHandlers }] = await Promise.all([import('../handlers.js'), import('../built-ins.js')]);
  return loadHandlers({ ...config, concurrency: config.hostConcurrency }, builtInHandlers(config), files);
}

function toResult(s: SettledMessage): TestResult {
  return {
    queue: s.queue,
    eventType: s.eventType,
    eventId: s.eventId,
    messageId: s.messageId,
    receiveCount: s.receiveCount,
    result: s.result,
    ...(s.error !== undefined ? { error: s.error } : {}),
    durationMs: s.durationMs,
  };
}

interface Waiter {
  check(): void;
  fail(why: string): void;
}

interface WaitState {
  results: readonly TestResult[];
  waiters: Set<Waiter>;
  queues: readonly TestBusQueue[];
  stopped(): boolean;
}

function waitForResults(
  state: WaitState,
  match: ResultFilter | ((r: TestResult) => boolean),
  timeoutMs: number,
  countOption: number | undefined,
): Promise<TestResult[]> {
  let predicate: (r: TestResult) => boolean;
  let count: number;
  let wanted: string;
  if (typeof match === 'function') {
    predicate = match;
    count = countOption ?? 1;
    wanted = `matching ${match.name ? `predicate ${match.name}` : 'the predicate'}`;
  } else {
    const unknown = Object.keys(match).filter((k) => !FILTER_KEYS.has(k));
    if (unknown.length) throw new TypeError(`waitFor: unknown filter field ${unknown.join(', ')} (fields: ${[...FILTER_KEYS].join(', ')})`);
    const results = match.result === undefined ? undefined : ([] as HandlerResult[]).concat(match.result);
    predicate = (r) =>
      (match.queue === undefined || r.queue === match.queue) &&
      (match.type === undefined || r.eventType === match.type) &&
      (match.eventId === undefined || r.eventId === match.eventId) &&
      (results === undefined || results.includes(r.result));
    count = countOption ?? match.count ?? 1;
    const { count: _count, ...fields } = match;
    wanted = Object.keys(fields).length ? `matching ${JSON.stringify(fields)}` : '(any)';
  }
  if (!Number.isInteger(count) || count < 1) throw new TypeError(`waitFor: count must be an integer >= 1, got ${count}`);
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new TypeError(`waitFor: timeoutMs must be a positive number of ms, got ${timeoutMs}`);
  // The rejection's stack is the caller's (the test's line), not the kit's timer.
  const callSite = new Error('waitFor');
  return new Promise<TestResult[]>((resolvePromise, reject) => {
    const done = () => {
      clearTimeout(timer);
      state.waiters.delete(waiter);
    };
    const waiter: Waiter = {
      check() {
        const found = state.results.filter(predicate);
        if (found.length >= count) {
          done();
          resolvePromise(found);
        }
      },
      fail(why) {
        done();
        const found = state.results.filter(predicate).length;
        const err = new Error(`waitFor: ${why} while waiting for ${count} result(s) ${wanted}; ${found} matched.\n${describeSeen(state, typeof match === 'function' ? undefined : match.type)}`);
        err.stack = `Error: ${err.message}\n${callSite.stack?.split('\n').slice(1).join('\n') ?? ''}`;
        reject(err);
      },
    };
    const timer = setTimeout(() => waiter.fail(`timed out after ${timeoutMs} ms`), timeoutMs);
    state.waiters.add(waiter);
    waiter.check();
    if (state.waiters.has(waiter) && state.stopped()) waiter.fail('the bus is stopped');
  });
}

/** What a timed-out waitFor says it saw: the latest results, and whether any handler subscribes to the awaited type. */
function describeSeen(state: WaitState, type: string | undefined): string {
  const { results, queues } = state;
  const lines: string[] = [];
  if (results.length === 0) lines.push('No results yet: no handler has finished a message on this bus.');
  else {
    lines.push(`Results so far (${results.length}${results.length > SHOWN_RESULTS ? `, the last ${SHOWN_RESULTS}` : ''}):`);
    for (const r of results.slice(-SHOWN_RESULTS)) {
      lines.push(`  ${r.queue} ${r.eventType ?? '(no type)'} ${r.result} (receive ${r.receiveCount}, event ${r.eventId}${r.error ? `, ${r.error}` : ''})`);
    }
  }
  if (type !== undefined && !queues.some((q) => q.events === null || q.events.includes(type))) {
    lines.push(`No handler subscribes to ${type}: ${queues.map((q) => `${q.queue} <- ${q.events?.join(', ') ?? 'every event'}`).join('; ')}.`);
  }
  return lines.join('\n');
}
