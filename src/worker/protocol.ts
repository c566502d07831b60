// The thread protocol, both directions, in one place: what the main thread hands each worker thread
// (WorkerData, tasks), what comes back (task returns, outcomes sent early), and the per-thread
// MessagePort that carries early outcomes and control. The run table's layout is in run-table.ts.
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import type { AwsSettings } from '../aws.js';
import type { ErrorInfo } from '../errors.js';
import type { HandlerResult } from '../types.js';
import type { PayloadSettings } from '../payloads/index.js';

/** Configuration every thread receives as `workerData.eventbus` (structured-clone-safe). */
export interface WorkerConfig {
  handlers: Array<{ queue: string; file: string }>;
  aws: AwsSettings;
  source: string;
  logLevel: string;
  pretty: boolean;
  /** After a handler's signal aborted, how long it may take to settle before the result is `timeout`. */
  graceMs: number;
  /** The run table's buffer and epoch (RunTable). */
  runTable: SharedArrayBuffer;
  runTableEpochMs: number;
  /** The archive store's url for the built-in archive handler (absolute file path or postgres://); null = archive off. */
  archiveUrl?: string | null;
  /** `telemetry.setup` as a file: URL, loaded before the handlers (OpenTelemetry SDKs are per isolate); null = none. */
  telemetrySetup?: string | null;
  /** SDK settings of the S3 client that fetches offloaded payloads (and stores ctx.publish's); made on first use. */
  s3?: AwsSettings;
  /** `payloads.*` for ctx.publish; null = large events are an error. */
  payloads?: PayloadSettings | null;
}

/** The thread's whole `workerData`. */
export interface WorkerData {
  eventbus: WorkerConfig;
  /** Opaque data the embedding application passed to every thread (`threadData()`). */
  threadData?: unknown;
}

/** One message of a task: the SQS body as is (decoded in the thread, not on the main thread). */
export interface TaskItem {
  /** Its row in the run table. */
  row: number;
  messageId: string;
  receiveCount: number;
  body: string;
  /** SQS message attributes (raw delivery), String values; undefined when there are none. */
  attributes?: Record<string, string> | undefined;
  sentTimestampMs?: number | undefined;
  /** SQS's AWSTraceHeader system attribute (X-Ray), when the message has one: the parent of an event without `traceparent`. */
  awsTraceHeader?: string | undefined;
}

/**
 * One pool task: some messages of one receive of one queue, run concurrently on one thread. A
 * whole receive batch per task, not a task per message: a piscina task costs two postMessages and
 * its bookkeeping on the main thread, which is the supervisor's bottleneck.
 */
export interface TaskInput {
  /** Warm-up: the thread has loaded the handlers; run their setup hooks and return. */
  warmup?: boolean;
  /** Id of this task; outcomes sent early carry it. */
  taskId: number;
  queue: string;
  /** The queue ARN: an event's `source` when the body has none. */
  queueArn: string;
  /**
   * For ctx.publish; null when the topic is not resolved (publish then rejects). Per task, not in
   * the thread's config: the threads start while the topic is still being looked up.
   */
  topicArn: string | null;
  /** The FIFO topic of ctx.publish's events with a groupId (issue 17); absent or null: the topic only. */
  fifoTopicArn?: string | null;
  timeoutMs: number;
  items: TaskItem[];
}

/** One message's outcome: data, never an exception. */
export interface ItemOutput {
  result: Exclude<HandlerResult, 'crashed'>;
  /** `name: message`, or what went wrong when nothing was thrown (`handler returned false`). */
  error?: string;
  /** What the handler threw, as plain data: its stack and `cause` chain. */
  err?: ErrorInfo;
  /** `invalid`: the schema's issues. */
  issues?: Array<{ path: string; message: string }>;
  durationMs: number;
  /** The decoded event's type and id (labels, failure events). */
  eventType: string | null;
  eventId: string;
  /**
   * The trace context the message's outcome continues (its TASK_WORKER_FAILED event, the main
   * thread's log lines): its process span's when one was recorded (`traced`), else, for a
   * non-success, the event's own. Absent on a success without a span.
   */
  traceparent?: string;
  tracestate?: string;
  traced?: boolean;
  /** An offloaded message: its payload's fetch from S3 (metrics; a failed fetch's reason). */
  payload?: PayloadFetch;
}

/** How the payload of an offloaded message (a claim check on S3) was fetched in the thread. */
export interface PayloadFetch {
  bucket: string;
  key: string;
  /** The payload's size in UTF-8 bytes (from ExtendedPayloadSize, else measured; null when the fetch failed without one). */
  bytes: number | null;
  fetchMs: number;
  /** Why it could not be fetched (the message's result is then `error`). */
  error?: string;
}

/** Outcomes as [index in `items`, outcome]. */
export type ItemResults = Array<[number, ItemOutput]>;

/** What a task returns: the outcomes not already sent early. */
export interface TaskOutput {
  results: ItemResults;
  /** Warm-up: what the setup hooks threw. */
  setupErrors?: string[];
  /** A handler ignored its aborted signal and is still running: its thread must be ended. */
  abandonedOnThread?: number;
  /** The share of the task's time the thread's event loop was busy (0-1): handlers that burn CPU, or wait. */
  threadBusyShare?: number;
}

/** Main thread → one thread, on its port. */
export type ToThread = { kind: 'abort-all'; reason: string } | { kind: 'teardown' };

/** One thread → main thread, on its port. */
export type FromThread =
  /** Outcomes ready while the rest of their task still runs. */
  | { kind: 'outcomes'; taskId: number; results: ItemResults }
  | { kind: 'teardown-done'; errors: string[] }
  /** A ctx.publish stored an event's payload on S3 (eventbus_payloads_offloaded_total). */
  | { kind: 'offloaded'; eventType: string | null };

/** Posted on `parentPort` once by every thread as it starts (a replacement thread too): its own port. */
export interface PortOffer {
  eventbusPort: MessagePort;
  threadId: number;
}

export function isPortOffer(m: unknown): m is PortOffer {
  return typeof m === 'object' && m !== null && 'eventbusPort' in m && 'threadId' in m;
}

/**
 * Thread side: makes this thread's port and offers its other end to the main thread (piscina
 * forwards what a thread posts on parentPort as the pool's 'message' event). One port per thread,
 * not a channel every thread listens on: no thread deserialises another's outcomes.
 */
export function offerPort(parent: MessagePort, threadId: number): { send(m: FromThread): void; onMessage(fn: (m: ToThread) => void): void } {
  const { port1, port2 } = new MessageChannel();
  parent.postMessage({ eventbusPort: port2, threadId } satisfies PortOffer, [port2]);
  port1.unref();
  return {
    send: (m) => port1.postMessage(m),
    onMessage: (fn) => {
      port1.on('message', fn);
      port1.unref();
    },
  };
}
