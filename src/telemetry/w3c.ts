// Trace context as events carry it: the CloudEvents Distributed Tracing extension (`traceparent`,
// `tracestate`, W3C Trace Context), and the X-Ray header SQS gives as the `AWSTraceHeader` system
// attribute. Pure functions on strings: the wire format and the threads use them whether or not an
// OpenTelemetry SDK is registered.
import { TraceFlags, createTraceState, type SpanContext } from '@opentelemetry/api';

/** CloudEvents Distributed Tracing extension attributes (W3C Trace Context). */
export const TRACEPARENT = 'traceparent';
export const TRACESTATE = 'tracestate';
/**
 * A replayed event's original context (`eventbus replay`): its consumer links to it instead of
 * continuing it, so a replay a week later is not drawn inside the original request's trace.
 */
export const REPLAY_TRACEPARENT = 'replayoftraceparent';
export const REPLAY_TRACESTATE = 'replayoftracestate';

/** W3C: version-traceid-parentid-flags, lower-case hex; a future version may append fields. */
const TRACEPARENT_RE = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ZERO_TRACE = '00000000000000000000000000000000';
const ZERO_SPAN = '0000000000000000';
/** W3C: tracestate is at most 32 entries; 512 bytes is what propagators must keep. */
const MAX_TRACESTATE = 512;

/** The span context a `traceparent` (and `tracestate`) names; null when it is missing or malformed. */
export function parseTraceparent(traceparent: unknown, tracestate?: unknown): SpanContext | null {
  if (typeof traceparent !== 'string' || traceparent.length < 55 || traceparent.length > 512) return null;
  const m = TRACEPARENT_RE.exec(traceparent.trim());
  if (!m) return null;
  const [, version, traceId, spanId, flags, rest] = m as unknown as [string, string, string, string, string, string | undefined];
  // Version ff is invalid; version 00 has exactly four fields.
  if (version === 'ff' || (version === '00' && rest !== undefined)) return null;
  if (traceId === ZERO_TRACE || spanId === ZERO_SPAN) return null;
  const sc: SpanContext = { traceId, spanId, traceFlags: parseInt(flags, 16) & TraceFlags.SAMPLED, isRemote: true };
  if (typeof tracestate === 'string' && tracestate !== '' && tracestate.length <= MAX_TRACESTATE) sc.traceState = createTraceState(tracestate);
  return sc;
}

/** `traceparent` of a span context (version 00). */
export function formatTraceparent(sc: SpanContext): string {
  return `00-${sc.traceId}-${sc.spanId}-${sc.traceFlags & TraceFlags.SAMPLED ? '01' : '00'}`;
}

/** The extension attributes that carry a span context: `traceparent`, and `tracestate` when there is one. */
export function traceExtensions(sc: SpanContext): { traceparent: string; tracestate?: string } {
  const state = sc.traceState?.serialize();
  return state ? { traceparent: formatTraceparent(sc), tracestate: state } : { traceparent: formatTraceparent(sc) };
}

/**
 * The parent an X-Ray trace header names (`Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1`):
 * X-Ray's trace id is the W3C one with the epoch part and the random part joined. Null without a
 * `Parent` (there is no span to continue) or when malformed.
 */
export function parseXRayHeader(header: unknown): SpanContext | null {
  if (typeof header !== 'string' || header.length > 512) return null;
  let root: string | undefined;
  let parent: string | undefined;
  let sampled = false;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === 'Root') root = value;
    else if (key === 'Parent') parent = value;
    else if (key === 'Sampled') sampled = value === '1';
  }
  const r = root && /^1-([0-9a-f]{8})-([0-9a-f]{24})$/.exec(root);
  if (!r || !parent || !/^[0-9a-f]{16}$/.test(parent)) return null;
  const traceId = r[1]! + r[2]!;
  if (traceId === ZERO_TRACE || parent === ZERO_SPAN) return null;
  return { traceId, spanId: parent, traceFlags: sampled ? TraceFlags.SAMPLED : TraceFlags.NONE, isRemote: true };
}

/** Log fields of a `traceparent` (`trace_id`, `span_id`, as OpenTelemetry's log conventions name them). */
export function logIds(traceparent: string): { trace_id: string; span_id: string } {
  return { trace_id: traceparent.slice(3, 35), span_id: traceparent.slice(36, 52) };
}
