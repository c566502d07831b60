import type { CloudEvent } from '../types.js';
import { EVENT_TYPE_ATTRIBUTE } from './encode.js';
import { LEGACY_POINTER_CLASS, POINTER_CLASS, parsePointer, type PayloadPointer } from './pointer.js';

/** The parts of an SQS message that decoding needs (SDK spellings stay in the poller). */
export interface RawMessage {
  messageId: string;
  body: string;
  /** SQS message attributes (raw delivery), String values. */
  attributes: Record<string, string>;
  /** SentTimestamp in ms, if SQS gave it. */
  sentTimestampMs?: number | undefined;
  /** The queue ARN, the default `source`. */
  queueArn: string;
  /**
   * The payload an offloaded message's pointer named, fetched from S3 (findPointer): decoded in
   * place of the pointer, with the message's envelope and attributes.
   */
  payload?: string | undefined;
}

export interface DecodedMessage {
  event: CloudEvent;
  /** How the body was recognised, for logs and tests. */
  form: 'sns-envelope' | 'raw-event' | 'raw-data' | 'non-json';
}

/**
 * Decodes a body in the SPEC's order: the SNS envelope, then raw delivery; then the event itself.
 * Never throws and never drops: whatever the body is becomes an event with `data`.
 */
export function decodeMessage(msg: RawMessage): DecodedMessage {
  let attributes = msg.attributes;
  let messageId = msg.messageId;
  let sentMs = msg.sentTimestampMs;
  let payload: string = msg.body;
  let fromEnvelope = false;

  const outer = tryParse(msg.body);
  if (isObject(outer.value) && outer.value.Type === 'Notification' && typeof outer.value.Message === 'string') {
    fromEnvelope = true;
    payload = outer.value.Message;
    attributes = snsAttributes(outer.value.MessageAttributes);
    if (typeof outer.value.MessageId === 'string') messageId = outer.value.MessageId;
    if (typeof outer.value.Timestamp === 'string' && !Number.isNaN(Date.parse(outer.value.Timestamp))) sentMs = Date.parse(outer.value.Timestamp);
  }
  if (msg.payload !== undefined) payload = msg.payload;
  const inner = fromEnvelope || msg.payload !== undefined ? tryParse(payload) : outer;
  const attrType = attributes[EVENT_TYPE_ATTRIBUTE] ?? null;
  const defaults = {
    id: messageId,
    time: new Date(sentMs ?? Date.now()).toISOString(),
    source: msg.queueArn,
  };

  if (inner.ok && isObject(inner.value) && typeof inner.value.type === 'string' && inner.value.type !== '') {
    const v = inner.value;
    const event: CloudEvent = {
      ...v,
      specversion: '1.0',
      id: typeof v.id === 'string' && v.id !== '' ? v.id : defaults.id,
      source: typeof v.source === 'string' && v.source !== '' ? v.source : defaults.source,
      type: v.type as string,
      time: typeof v.time === 'string' && v.time !== '' ? v.time : defaults.time,
      data: 'data' in v ? v.data : null,
    };
    return { event, form: fromEnvelope ? 'sns-envelope' : 'raw-event' };
  }
  const data = inner.ok ? inner.value : payload;
  const event: CloudEvent = { specversion: '1.0', ...defaults, type: attrType, data };
  return { event, form: fromEnvelope ? 'sns-envelope' : inner.ok ? 'raw-data' : 'non-json' };
}

/**
 * The S3 pointer a message carries (a claim check in the extended clients' format, event/pointer.ts),
 * in its body (raw delivery, attributes from SQS) or in its SNS envelope's Message (attributes from
 * the envelope); null for any other message. Cheap for the others: a substring test before any parse.
 */
export function findPointer(msg: Pick<RawMessage, 'body' | 'attributes'>): PayloadPointer | null {
  const body = msg.body;
  if (!body.includes(POINTER_CLASS) && !body.includes(LEGACY_POINTER_CLASS)) return null;
  const direct = parsePointer(body, msg.attributes);
  if (direct) return direct;
  const outer = tryParse(body);
  if (isObject(outer.value) && outer.value.Type === 'Notification' && typeof outer.value.Message === 'string') {
    return parsePointer(outer.value.Message, snsAttributes(outer.value.MessageAttributes));
  }
  return null;
}

function tryParse(s: string): { ok: true; value: unknown } | { ok: false; value: undefined } {
  try {
    return { ok: true, value: JSON.parse(s) as unknown };
  } catch {
    return { ok: false, value: undefined };
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** SNS envelope attributes look like {"event-type": {"Type": "String", "Value": "X"}}. */
function snsAttributes(v: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!isObject(v)) return out;
  for (const [k, a] of Object.entries(v)) {
    if (isObject(a) && typeof a.Value === 'string') out[k] = a.Value;
  }
  return out;
}
