import type { AwsSettings } from '../aws.js';
import type { CloudEvent, HandlerResult } from '../types.js';

/** Configuration every thread receives as `workerData.eventbus` (structured-clone-safe). */
export interface WorkerConfig {
  handlers: Array<{ queue: string; file: string }>;
  aws: AwsSettings;
  /** For ctx.publish; null when the topic could not be resolved (publish then throws). */
  topicArn: string | null;
  source: string;
  logLevel: string;
  pretty: boolean;
  /** After a handler's signal aborted, how long it may take to settle before the result is `timeout`. */
  graceMs: number;
  /**
   * Int32Array over this buffer, two cells per slot: the threadId running the task in that slot,
   * and when its handler started (ms since `slotEpochMs`, +1; 0 = not started). Once the handler
   * settled: -threadId, and -(1 + index in RESULT_CODES).
   */
  slotThreads: SharedArrayBuffer;
  slotEpochMs: number;
  /** BroadcastChannel name for teardown and shutdown aborts. */
  controlChannel: string;
  /** BroadcastChannel name for outcomes a thread sends before its whole task is done. */
  resultsChannel: string;
  /** The archive store's url for the built-in archive handler (absolute file path or postgres://); null = archive off. */
  archiveUrl?: string | null;
}

/** The thread's whole `workerData`. */
export interface WorkerData {
  eventbus: WorkerConfig;
  /** Opaque data the embedding application passed to every thread (`threadData()`). */
  threadData?: unknown;
}

/**
 * A settled handler's result as a code in the slot table (stored negated in the start cell, with the
 * thread cell set to -threadId), so the main thread knows it even if its thread dies before the
 * outcome message reaches it.
 */
export const RESULT_CODES = ['success', 'failure', 'error', 'timeout'] as const;

/** One message of a batch task: the SQS body as is (decoded in the thread, not on the main thread). */
export interface TaskItem {
  /** Its cells in `slotThreads`. */
  slot: number;
  messageId: string;
  receiveCount: number;
  body: string;
  /** SQS message attributes (raw delivery), String values; undefined when there are none. */
  attributes?: Record<string, string> | undefined;
  sentTimestampMs?: number | undefined;
}

/**
 * One pool task: some messages of one receive of one queue, run concurrently on one thread. A
 * whole batch per task, not a task per message: a piscina task costs two postMessages and its
 * bookkeeping on the main thread, which is the supervisor's bottleneck.
 */
export interface TaskInput {
  /** Warm-up: the thread has loaded the handlers; run their setup hooks and return. */
  warmup?: boolean;
  /** Id of this task; results sent early on the results channel carry it. */
  batch: number;
  queue: string;
  /** The queue ARN: an event's `source` when the body has none. */
  queueArn: string;
  timeoutMs: number;
  items: TaskItem[];
}

/** One message's outcome: data, never an exception. */
export interface ItemOutput {
  result: Exclude<HandlerResult, 'crashed'>;
  error?: string;
  durationMs: number;
  /** The decoded event's type and id (labels, failure events). */
  eventType: string | null;
  eventId: string;
}

/** Outcomes as [index in `items`, outcome]. */
export type ItemResults = Array<[number, ItemOutput]>;

/** What a task returns: the outcomes not already sent on the results channel. */
export interface TaskOutput {
  results: ItemResults;
  /** Warm-up: what the setup hooks threw. */
  setupErrors?: string[];
  /** A handler ignored its aborted signal and is still running: its thread must be ended. */
  abandonedOnThread?: number;
  /** How busy the thread's event loop was while the task ran (0-1): handlers that burn CPU, or wait. */
  busy?: number;
}

/** Sent on the results channel by a thread while the rest of its task still runs. */
export interface EarlyResults {
  batch: number;
  results: ItemResults;
}

/** Messages on the control channel. */
export type ControlMessage =
  | { cmd: 'teardown' }
  | { cmd: 'abort-all'; reason: string }
  | { ack: 'teardown'; threadId: number; errors: string[] };
