import type { Logger } from 'pino';

/** A CloudEvents 1.0 structured event, as published and as handlers receive it. */
export interface CloudEvent<T = unknown> {
  specversion: '1.0';
  id: string;
  source: string;
  /** null only for a body that carried no type and no `event-type` attribute. */
  type: string | null;
  time: string;
  datacontenttype?: string;
  subject?: string;
  data: T;
  [extension: string]: unknown;
}

/** Options of one published event (SPEC: `id`, `source`, `subject`, `time`). */
export interface EventOptions {
  id?: string;
  source?: string;
  subject?: string;
  time?: string | Date;
  /** Extra CloudEvents extension attributes (lower-case alphanumeric names). */
  extensions?: Record<string, string>;
  /** Extra SNS message attributes (String). */
  attributes?: Record<string, string>;
}

/** What a handler receives besides the event. */
export interface HandlerContext {
  messageId: string;
  receiveCount: number;
  /** Logical queue name (without prefix). */
  queue: string;
  /** Aborts at `timeoutMs` after the handler started, and at shutdown deadline. */
  signal: AbortSignal;
  log: Logger;
  /** Publishes an event whose id is derived from this event's id, the queue and the call's position. */
  publish(type: string, data: unknown, opts?: EventOptions): Promise<CloudEvent>;
}

/** A handler module's default export (SPEC "Handlers"). */
export interface HandlerDefinition<T = any> {
  queue?: string;
  events?: string[];
  concurrency?: number;
  visibilityTimeout?: number;
  timeoutMs?: number;
  maxReceiveCount?: number;
  setup?(ctx: { queue: string; log: Logger }): unknown | Promise<unknown>;
  handle(event: CloudEvent<T>, ctx: HandlerContext): unknown | Promise<unknown>;
  teardown?(): unknown | Promise<unknown>;
}

/** Only adds types: a plain object default export works the same. */
export function defineHandler<T = any>(def: HandlerDefinition<T>): HandlerDefinition<T> {
  return def;
}

/** Handler outcomes (SPEC "Results"). */
export type HandlerResult = 'success' | 'failure' | 'error' | 'timeout' | 'crashed';
