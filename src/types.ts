import type { Logger } from 'pino';
import type { EventSchemas, StandardSchemaV1 } from './schema.js';

export type { EventSchemas, StandardSchemaV1 };

/** A CloudEvents 1.0 structured event, as published and as handlers receive it. */
export interface CloudEvent<T = unknown, K extends string | null = string | null> {
  specversion: '1.0';
  id: string;
  source: string;
  /** null only for a body that carried no type and no `event-type` attribute. */
  type: K;
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
  /**
   * The event's message group (an order id, an account, a tenant): recorded as the CloudEvents
   * extension `groupid`. Ordered handlers receive the events of a group in publish order; on standard
   * queues it is the SQS fair-queue tenant. 1-128 of a-z A-Z 0-9 and punctuation (SQS MessageGroupId).
   */
  groupId?: string;
}

/**
 * What a handler declares it publishes: a map of event type -> Standard Schema (`ctx.publish`
 * validates and types the data), or just the types. Undeclared: `ctx.publish` takes any type.
 */
export type Publishes = EventSchemas | readonly string[];

/** `ctx.publish`, typed by the handler's `publishes`. */
export type PublishFn<P extends Publishes | undefined = undefined> = P extends readonly (infer T extends string)[]
  ? (type: T, data: unknown, opts?: EventOptions) => Promise<CloudEvent>
  : P extends EventSchemas
    ? <K extends keyof P & string>(type: K, data: StandardSchemaV1.InferInput<P[K]>, opts?: EventOptions) => Promise<CloudEvent>
    : (type: string, data: unknown, opts?: EventOptions) => Promise<CloudEvent>;

/** What a handler receives besides the event. */
export interface HandlerContext<P extends Publishes | undefined = undefined> {
  messageId: string;
  receiveCount: number;
  /** Logical queue name (without prefix). */
  queue: string;
  /** Aborts at `timeoutMs` after the handler started, and at shutdown deadline. */
  signal: AbortSignal;
  log: Logger;
  /**
   * Set when the event arrived offloaded (a claim check on S3, README "Large events"): the object
   * it was read from and its size in bytes. Absent for events that came inline.
   */
  offloaded?: { bucket: string; key: string; bytes: number };
  /**
   * Publishes an event whose id is derived from this event's id, the queue and the call's position.
   * With `publishes` declared, only those types, validated first (ERR_EVENT_INVALID before any call).
   */
  publish: PublishFn<P>;
}

/** A handler's options besides its events and its function (SPEC "Handlers"). */
export interface HandlerOptions {
  queue?: string;
  concurrency?: number;
  visibilityTimeout?: number;
  timeoutMs?: number;
  maxReceiveCount?: number;
  /**
   * A FIFO queue (`<queue>.fifo`): receives only the events published with a `groupId`, in publish
   * order per group, one message of a group at a time; groups run in parallel.
   */
  ordered?: boolean;
  /** Standard queues only: messages of one group (tenant) running at once on this host; default unlimited. */
  groupConcurrency?: number;
  setup?(ctx: { queue: string; log: Logger }): unknown | Promise<unknown>;
  teardown?(): unknown | Promise<unknown>;
}

/** The events a handler with a schema map receives: a union discriminated on `type`. */
export type EventOf<S extends EventSchemas> = { [K in keyof S & string]: CloudEvent<StandardSchemaV1.InferOutput<S[K]>, K> }[keyof S & string];

/** A handler module's default export (SPEC "Handlers"), `events` as a list of types (or omitted: every event). */
export interface HandlerDefinition<T = any, P extends Publishes | undefined = undefined> extends HandlerOptions {
  events?: readonly string[];
  publishes?: P;
  handle(event: CloudEvent<T>, ctx: HandlerContext<P>): unknown | Promise<unknown>;
}

/**
 * A handler whose `events` map each type to a Standard Schema validator: the subscription filter is
 * the map's keys, `event` is typed by `type`, and data that fails its schema is `invalid`.
 */
export interface TypedHandlerDefinition<S extends EventSchemas, P extends Publishes | undefined = undefined> extends HandlerOptions {
  events: S;
  publishes?: P;
  handle(event: EventOf<S>, ctx: HandlerContext<P>): unknown | Promise<unknown>;
}

/** Either form, as the loader and the worker see it (types erased). */
export type AnyHandlerDefinition = HandlerOptions & {
  events?: readonly string[] | EventSchemas;
  publishes?: Publishes;
  handle(event: any, ctx: any): unknown | Promise<unknown>;
};

/** Only adds types: a plain object default export works the same. */
export function defineHandler<const S extends EventSchemas, const P extends Publishes | undefined = undefined>(def: TypedHandlerDefinition<S, P>): TypedHandlerDefinition<S, P>;
export function defineHandler<T = any, const P extends Publishes | undefined = undefined>(def: HandlerDefinition<T, P>): HandlerDefinition<T, P>;
export function defineHandler(def: AnyHandlerDefinition): AnyHandlerDefinition {
  return def;
}

/**
 * Handler outcomes (SPEC "Results"). `rejected` (a NonRetryableError) and `invalid` (data that fails
 * its schema) are dead-lettered at once; the others but `success` are retried.
 */
export type HandlerResult = 'success' | 'failure' | 'error' | 'timeout' | 'crashed' | 'rejected' | 'invalid';
