// The worker thread: loads the handlers named in workerData, runs their setup hooks, and serves
// tasks through HandlerRunner (runner.ts); control and early outcomes go over its own port.
import { parentPort, threadId, workerData } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import { createLogger } from '../log.js';
import type { Publisher } from '../publisher/index.js';
import { lazyPayloadStore, type PayloadStore } from '../payloads/index.js';
import type { AnyHandlerDefinition } from '../types.js';
import { offerPort, type TaskInput, type TaskOutput, type WorkerData } from './protocol.js';
import { RunTable } from './run-table.js';
import { HandlerRunner, LoadedHandler } from './runner.js';
import { flushTelemetry, loadTelemetrySetup } from '../telemetry/index.js';

const cfg = (workerData as WorkerData).eventbus;
const log = createLogger({ level: cfg.logLevel, pretty: cfg.pretty, base: { pid: process.pid, thread: threadId } });

// The user's OpenTelemetry SDK first: SDKs are per isolate, and handlers may import instrumented modules.
await loadTelemetrySetup(cfg.telemetrySetup ?? null);

const handlers = new Map<string, LoadedHandler>();
// Each handler module is loaded once per thread, when the thread starts.
for (const h of cfg.handlers) {
  const mod = (await import(pathToFileURL(h.file).href)) as { default: AnyHandlerDefinition };
  handlers.set(h.queue, new LoadedHandler(h.queue, mod.default, log));
}

/** Made on the first ctx.publish: the SDK is loaded then, not as every thread starts (~100 ms each). */
let publisher: Promise<Publisher> | undefined;
/** From the tasks (resolved with the topic, after the threads started); the same in every task. */
let fifoTopicArn: string | null = null;
function getPublisher(topicArn: string | null): Promise<Publisher> {
  if (!topicArn) return Promise.reject(new Error('ctx.publish: the topic is not resolved on this host'));
  publisher ??= Promise.all([import('../aws.js'), import('../publisher/index.js')]).then(([aws, pub]) =>
    pub.createPublisher({ sns: aws.createAwsClients(cfg.aws).sns, topic: topicArn, fifoTopic: fifoTopicArn ?? undefined, source: cfg.source, payloads: cfg.payloads ? { ...cfg.payloads, store: payloadStore(), onOffloaded: (eventType) => port.send({ kind: 'offloaded', eventType }) } : null }),
  );
  return publisher;
}

/** How long a thread's teardown waits for its spans to be exported (the supervisor's own deadline bounds the whole teardown). */
const TEARDOWN_FLUSH_MS = 5_000;
/** Offloaded payloads (README "Large events"): the S3 SDK is loaded on the first pointer or large ctx.publish. */
let payloads: PayloadStore | undefined;
const payloadStore = () => (payloads ??= lazyPayloadStore(cfg.s3 ?? cfg.aws));

if (!parentPort) throw new Error('src/worker/index.js runs only as a piscina worker thread');
const port = offerPort(parentPort, threadId);
const runner = new HandlerRunner(
  {
    log,
    table: new RunTable(cfg.runTable, cfg.runTableEpochMs),
    threadId,
    graceMs: cfg.graceMs,
    sendOutcomes: (taskId, results) => port.send({ kind: 'outcomes', taskId, results }),
    publish: (topicArn, type, data, opts) => getPublisher(topicArn).then((p) => p.createEvent(type, data, opts)),
    fetchPayload: (bucket, key) => payloadStore().get(bucket, key),
  },
  handlers,
);
port.onMessage((msg) => {
  if (msg.kind === 'abort-all') runner.abortAll(new Error(msg.reason));
  // After the teardown hooks, this thread's spans still buffered are exported (its handlers' included).
  else if (msg.kind === 'teardown') void runner.teardown().then(async (errors) => (await flushTelemetry(TEARDOWN_FLUSH_MS), port.send({ kind: 'teardown-done', errors })));
});

// Setup runs as the thread starts (a replacement thread too), so its first message does not wait for it.
await runner.setupAll();

/** A piscina task: a batch of one queue's messages (or the warm-up, which runs the setup hooks). */
export default async function run(task: TaskInput): Promise<TaskOutput> {
  if (task.warmup) {
    const errors = await runner.setupAll();
    return { results: [], ...(errors.length ? { setupErrors: errors } : {}) };
  }
  fifoTopicArn = task.fifoTopicArn ?? null;
  return runner.run(task);
}
