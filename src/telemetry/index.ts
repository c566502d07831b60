// Tracing glue (issue 15): the spans eventbus records through @opentelemetry/api, the trace context
// it puts in events, the user's SDK setup module, and flushing at shutdown. The API is a no-op until
// an SDK registers a tracer provider: every hook here first asks `tracer()`, which answers null
// then, so no span work is done. Context is carried in the event (CloudEvents `traceparent`,
// `tracestate`), never in message attributes: SQS allows 10 and filter policies need ours.
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  ProxyTracerProvider,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  context,
  isSpanContextValid,
  trace,
  type Attributes,
  type Context,
  type Link,
  type Span,
  type SpanContext,
  type Tracer,
} from '@opentelemetry/api';
import { EventBusError, describeError } from '../errors.js';
import type { CloudEvent } from '../types.js';
import { REPLAY_TRACEPARENT, REPLAY_TRACESTATE, TRACEPARENT, TRACESTATE, formatTraceparent, logIds, parseTraceparent, parseXRayHeader, traceExtensions } from './w3c.js';

export { REPLAY_TRACEPARENT, REPLAY_TRACESTATE, TRACEPARENT, TRACESTATE, formatTraceparent, logIds, parseTraceparent, parseXRayHeader, traceExtensions };

/** The instrumentation scope of eventbus's spans. */
export const TRACER_NAME = 'eventbus';

/** The API's own no-op provider: what the global proxy delegates to while no SDK is registered. */
const NOOP_PROVIDER = new ProxyTracerProvider().getDelegate();
let cached: { provider: unknown; tracer: Tracer } | undefined;

/**
 * The tracer, or null while no SDK has registered a tracer provider (the default): callers then
 * skip span work entirely. Asked per publish call and per task (not per message); a provider
 * registered later is seen from the next call on.
 */
export function tracer(): Tracer | null {
  const provider = registeredProvider();
  if (provider === NOOP_PROVIDER) return null;
  if (cached === undefined || cached.provider !== provider) cached = { provider, tracer: trace.getTracer(TRACER_NAME) };
  return cached.tracer;
}

/** The SDK's provider behind the API's global proxy (that of another copy of the API too). */
function registeredProvider(): unknown {
  const global = trace.getTracerProvider() as { getDelegate?(): unknown };
  return typeof global.getDelegate === 'function' ? global.getDelegate() : global;
}

/** An event's trace context: its `traceparent`/`tracestate` when valid, else null (malformed ones are ignored). */
export function eventContext(event: CloudEvent): SpanContext | null {
  return parseTraceparent(event[TRACEPARENT], event[TRACESTATE]);
}

// ---- publishing (src/publisher) --------------------------------------------------------------

export interface PublishDestination {
  /** The topic's name (span name, messaging.destination.name). */
  name: string;
  arn?: string | undefined;
  /** `aws_sqs` when sent straight to a queue (`eventbus replay --to-queue`). */
  system?: 'aws.sns' | 'aws_sqs';
  /** More contexts the span links to (a replay's originals). */
  links?: SpanContext[];
}

/**
 * Before events are encoded: gives each event without a valid `traceparent` the context it
 * continues, and starts the PRODUCER span `publish <topic>` when an SDK is registered (returned;
 * end it with endPublishSpan). The span's parent is the event's own `traceparent` when one event is
 * published with one (ctx.publish passes the handler's span this way, so no context manager is
 * needed), else the active context; the event then carries the span's context. In a batch, events
 * that bring their own context keep it and the span links to them. Without an SDK, events get the
 * active context's span, if any (the API returns none unless something set one).
 */
export function startPublishSpan(events: CloudEvent[], dest: PublishDestination): Span | null {
  const t = tracer();
  if (!t) {
    let sc: SpanContext | undefined | null;
    for (const e of events) {
      if (typeof e[TRACEPARENT] === 'string') continue;
      sc ??= trace.getSpanContext(context.active()) ?? null;
      if (!sc || !isSpanContextValid(sc)) return null;
      Object.assign(e, traceExtensions(sc));
    }
    return null;
  }
  const own = events.map(eventContext);
  let parent: Context = context.active();
  const links: Link[] = (dest.links ?? []).map((sc) => ({ context: sc }));
  if (events.length === 1 && own[0]) parent = trace.setSpanContext(ROOT_CONTEXT, own[0]);
  else for (const sc of own) if (sc) links.push({ context: sc });
  const attributes: Attributes = {
    'messaging.system': dest.system ?? 'aws.sns',
    'messaging.operation.type': 'send',
    'messaging.operation.name': 'publish',
    'messaging.destination.name': dest.name,
  };
  if (dest.arn) attributes['aws.sns.topic.arn'] = dest.arn;
  if (events.length === 1) {
    attributes['cloudevents.event_id'] = events[0]!.id;
    if (events[0]!.type) attributes['cloudevents.event_type'] = events[0]!.type;
  } else attributes['messaging.batch.message_count'] = events.length;
  const span = t.startSpan(`publish ${dest.name}`, { kind: SpanKind.PRODUCER, attributes, links }, parent);
  const ext = traceExtensions(span.spanContext());
  events.forEach((e, i) => {
    if (events.length === 1 || !own[i]) {
      delete e[TRACESTATE];
      Object.assign(e, ext);
    }
  });
  return span;
}

/** Ends a publish span: the SNS message id of a single publish, or what failed. */
export function endPublishSpan(span: Span | null, o: { messageId?: string | undefined; error?: unknown; failed?: number; total?: number }): void {
  if (!span) return;
  if (o.messageId) span.setAttribute('messaging.message.id', o.messageId);
  if (o.error !== undefined) {
    recordError(span, o.error, describeError(o.error));
  } else if (o.failed) {
    span.setAttribute('error.type', 'partial_failure');
    span.setStatus({ code: SpanStatusCode.ERROR, message: `${o.failed} of ${o.total} entries failed` });
  }
  span.end();
}

// ---- processing (src/worker/runner.ts) -------------------------------------------------------

/** What a message's process span is made from. */
export interface ProcessInfo {
  queue: string;
  /** The SQS queue's ARN (its name is the last part). */
  queueArn: string;
  messageId: string;
  receiveCount: number;
  /** The SQS system attribute, when the message has one (X-Ray senders, AWS services). */
  awsTraceHeader?: string | undefined;
}

/**
 * The context a message continues: the event's `traceparent`, else the X-Ray header of the message.
 * Null: a new trace. A malformed `traceparent` counts as none (never a failed message).
 */
export function messageContext(event: CloudEvent, awsTraceHeader: string | undefined): SpanContext | null {
  return eventContext(event) ?? (awsTraceHeader ? parseXRayHeader(awsTraceHeader) : null);
}

/**
 * Starts the CONSUMER span `process <queue>` of one message, around its schema validation and
 * `handle`: its parent is the message's context, which it also links to (OpenTelemetry's messaging
 * conventions: the creation context is a link; we also keep it as the parent so one request reads
 * as one trace). A replayed event's original context is a link only.
 */
export function startProcessSpan(t: Tracer, event: CloudEvent, info: ProcessInfo): Span {
  const parent = messageContext(event, info.awsTraceHeader);
  const links: Link[] = parent ? [{ context: parent }] : [];
  const replayOf = parseTraceparent(event[REPLAY_TRACEPARENT], event[REPLAY_TRACESTATE]);
  if (replayOf) links.push({ context: replayOf, attributes: { 'eventbus.link': 'replay_of' } });
  const attributes: Attributes = {
    'messaging.system': 'aws_sqs',
    'messaging.operation.type': 'process',
    'messaging.operation.name': 'process',
    'messaging.destination.name': info.queueArn.slice(info.queueArn.lastIndexOf(':') + 1) || info.queue,
    'messaging.message.id': info.messageId,
    'eventbus.queue': info.queue,
    'eventbus.receive_count': info.receiveCount,
    'cloudevents.event_id': event.id,
  };
  if (event.type !== null) attributes['cloudevents.event_type'] = event.type;
  if (event.source) attributes['cloudevents.event_source'] = event.source;
  return t.startSpan(`process ${info.queue}`, { kind: SpanKind.CONSUMER, attributes, links }, parent ? trace.setSpanContext(ROOT_CONTEXT, parent) : ROOT_CONTEXT);
}

/** Runs `fn` with `span` active (the handler's own instrumentation nests under it, given a context manager). */
export function withSpan<T>(span: Span, fn: () => T): T {
  return context.with(trace.setSpan(context.active(), span), fn);
}

/** Records that a handler's signal aborted (its timeout, or the shutdown deadline). */
export function recordAbort(span: Span, reason: string): void {
  span.addEvent('eventbus.signal_aborted', { 'eventbus.abort_reason': reason });
}

/** Ends a process span with the message's result; a non-success is an error status, a throw an exception event. */
export function endProcessSpan(span: Span, result: string, error: string | undefined, thrown: unknown): void {
  span.setAttribute('eventbus.result', result);
  if (result !== 'success') {
    if (thrown !== undefined) recordError(span, thrown, error);
    else {
      span.setAttribute('error.type', result);
      span.setStatus({ code: SpanStatusCode.ERROR, message: error ?? result });
    }
  }
  span.end();
}

function recordError(span: Span, err: unknown, message: string | undefined): void {
  if (err instanceof Error) span.recordException(err);
  else span.recordException({ name: 'Error', message: describeError(err) });
  span.setAttribute('error.type', err instanceof Error ? err.name : 'Error');
  span.setStatus({ code: SpanStatusCode.ERROR, ...(message ? { message } : {}) });
}

// ---- the SDK: setup module and flushing ----------------------------------------------------------

/** The URL of `telemetry.setup` (a path, relative to the working directory, or a file: URL). */
export function setupUrl(setup: string): string {
  return setup.startsWith('file:') ? new URL(setup).href : pathToFileURL(resolve(setup)).href;
}

/**
 * Loads the user's `telemetry.setup` module (where the SDK and its exporter are registered), once
 * per isolate: the main thread before anything else, and each worker thread before its handlers.
 * A module that cannot be loaded fails the start naming the key.
 */
export async function loadTelemetrySetup(url: string | null): Promise<void> {
  if (!url) return;
  try {
    await import(url);
  } catch (err) {
    throw new EventBusError('ERR_CONFIG_INVALID', `invalid config: telemetry.setup: cannot load ${url}: ${describeError(err)}`, { cause: err });
  }
}

/**
 * Exports the spans still buffered (a BatchSpanProcessor's queue): the registered provider's
 * forceFlush, bounded by `timeoutMs`. Nothing when no SDK is registered. Never throws.
 */
export async function flushTelemetry(timeoutMs: number): Promise<void> {
  if (!tracer()) return;
  const provider = registeredProvider() as { forceFlush?(): Promise<void> };
  if (typeof provider.forceFlush !== 'function') return;
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([provider.forceFlush(), new Promise<void>((r) => (timer = setTimeout(r, Math.max(0, timeoutMs))))]);
  } catch {
    // An exporter that fails at shutdown must not stop the shutdown.
  } finally {
    clearTimeout(timer);
  }
}
