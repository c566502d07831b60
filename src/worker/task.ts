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
   * and when its handler started (ms since `slotEpochMs`, +1; 0 = not started).
   */
  slotThreads: SharedArrayBuffer;
  slotEpochMs: number;
  /** BroadcastChannel name for teardown and shutdown aborts. */
  controlChannel: string;
  /** The archive store's url for the built-in archive handler (absolute file path or postgres://); null = archive off. */
  archiveUrl?: string | null;
}

/** The thread's whole `workerData`. */
export interface WorkerData {
  eventbus: WorkerConfig;
  /** Opaque data the embedding application passed to every thread (`threadData()`). */
  threadData?: unknown;
}

/** One message for a handler; small, plain data. */
export interface TaskInput {
  /** Warm-up: the thread has loaded the handlers; run their setup hooks and return. */
  warmup?: boolean;
  slot: number;
  queue: string;
  messageId: string;
  receiveCount: number;
  timeoutMs: number;
  event: CloudEvent;
}

/** What comes back across the thread boundary: data, never an exception. */
export interface TaskOutput {
  result: Exclude<HandlerResult, 'crashed'>;
  error?: string;
  durationMs: number;
  /** The handler ignored its aborted signal and is still running: its thread must be ended. */
  abandonedOnThread?: number;
}

/** Messages on the control channel. */
export type ControlMessage =
  | { cmd: 'teardown' }
  | { cmd: 'abort-all'; reason: string }
  | { ack: 'teardown'; threadId: number; errors: string[] };
