import { createHash, randomUUID } from 'node:crypto';
import { EventBusError } from '../errors.js';
import type { CloudEvent, EventOptions } from '../types.js';

/** SNS Publish limit: message plus attributes, 256 KiB. */
export const SNS_MAX_BYTES = 262_144;
/** SNS PublishBatch limit on entries per call. */
export const SNS_MAX_BATCH = 10;
export const EVENT_TYPE_ATTRIBUTE = 'event-type';
/**
 * The SQS message attribute a message dead-lettered at once (SPEC: `rejected`, `invalid`) carries in
 * its DLQ: why. `dlq peek` shows it; `dlq redrive` drops it.
 */
export const DEAD_LETTER_REASON_ATTRIBUTE = 'eventbus-dead-letter-reason';

const EXTENSION_NAME_RE = /^[a-z0-9]{1,20}$/;
/** The CloudEvents extension attribute that records an event's message group (`EventOptions.groupId`). */
export const GROUP_ID_EXTENSION = 'groupid';
/** SQS/SNS MessageGroupId and MessageDeduplicationId: 1-128 of a-z A-Z 0-9 and punctuation. */
export const MESSAGE_GROUP_ID_RE = /^[A-Za-z0-9!"#$%&'()*+,\-./:;<=>?@[\\\]^_`{|}~]{1,128}$/;

/** Throws ERR_EVENT_INVALID unless `groupId` is a valid SQS MessageGroupId. */
export function checkGroupId(groupId: unknown): string {
  if (typeof groupId !== 'string' || !MESSAGE_GROUP_ID_RE.test(groupId)) {
    throw new EventBusError('ERR_EVENT_INVALID', `groupId ${JSON.stringify(groupId)} must be 1-128 of a-z A-Z 0-9 and punctuation (the SQS MessageGroupId rules)`);
  }
  return groupId;
}

/** An event's message group: its `groupid` extension, or undefined. */
export function groupIdOf(event: { [k: string]: unknown }): string | undefined {
  const g = event[GROUP_ID_EXTENSION];
  return typeof g === 'string' && g !== '' ? g : undefined;
}

/**
 * The MessageDeduplicationId of an event on the FIFO topic: its id, or (an id that is not a valid
 * deduplication id: longer than 128, or other characters) its SHA-256 in hex. Equal ids give equal
 * deduplication ids, so a publish retried within SNS's 5-minute window is delivered once.
 */
export function deduplicationId(eventId: string): string {
  return MESSAGE_GROUP_ID_RE.test(eventId) ? eventId : createHash('sha256').update(eventId).digest('hex');
}
const RESERVED = new Set(['specversion', 'id', 'source', 'type', 'time', 'datacontenttype', 'subject', 'data', 'dataschema']);

/** Builds a CloudEvents 1.0 envelope. Throws ERR_EVENT_INVALID for an empty type or a bad extension name. */
export function buildEvent(type: string, data: unknown, source: string, opts: EventOptions = {}): CloudEvent {
  if (typeof type !== 'string' || type.trim() === '') throw new EventBusError('ERR_EVENT_INVALID', 'event type must be a non-empty string');
  const time = opts.time instanceof Date ? opts.time.toISOString() : (opts.time ?? new Date().toISOString());
  const event: CloudEvent = {
    specversion: '1.0',
    id: opts.id ?? randomUUID(),
    source: opts.source ?? source,
    type,
    time,
    datacontenttype: 'application/json',
    ...(opts.subject !== undefined ? { subject: opts.subject } : {}),
    data: data === undefined ? null : data,
  };
  for (const [k, v] of Object.entries(opts.extensions ?? {})) {
    if (!EXTENSION_NAME_RE.test(k) || RESERVED.has(k)) {
      throw new EventBusError('ERR_EVENT_INVALID', `CloudEvents extension name "${k}" must be 1-20 lower-case letters or digits and not a core attribute`);
    }
    event[k] = v;
  }
  if (opts.groupId !== undefined) event[GROUP_ID_EXTENSION] = checkGroupId(opts.groupId);
  else if (event[GROUP_ID_EXTENSION] !== undefined) checkGroupId(event[GROUP_ID_EXTENSION]);
  return event;
}

/** Message attributes as SNS and SQS take them (String, or Number as a string). */
export type MessageAttributes = Record<string, { DataType: 'String' | 'Number'; StringValue: string }>;

/** SNS message attributes of an event: `event-type` plus the caller's extra ones. */
export function eventAttributes(event: CloudEvent, extra: Record<string, string> = {}): MessageAttributes {
  const attrs: MessageAttributes = {};
  for (const [k, v] of Object.entries(extra)) attrs[k] = { DataType: 'String', StringValue: v };
  if (event.type) attrs[EVENT_TYPE_ATTRIBUTE] = { DataType: 'String', StringValue: event.type };
  return attrs;
}

/** Bytes SNS counts toward its limit: the message body plus each attribute's name, type and value. */
export function publishedSize(body: string, attrs: MessageAttributes): number {
  let n = Buffer.byteLength(body, 'utf8');
  for (const [k, v] of Object.entries(attrs)) n += Buffer.byteLength(k) + Buffer.byteLength(v.DataType) + Buffer.byteLength(v.StringValue);
  return n;
}

/** An event as it is sent: its body, its attributes, and the bytes SNS counts. */
export interface EncodedEvent {
  body: string;
  attributes: MessageAttributes;
  size: number;
}

/** Serialises an event with its attributes, without the size check (the publisher decides whether to offload). */
export function serializeEvent(event: CloudEvent, extraAttributes?: Record<string, string>): EncodedEvent {
  let body: string;
  try {
    body = JSON.stringify(event);
  } catch (err) {
    throw new EventBusError('ERR_EVENT_INVALID', `event ${event.type} data is not JSON-serialisable: ${(err as Error).message}`, { cause: err });
  }
  const attributes = eventAttributes(event, extraAttributes);
  return { body, attributes, size: publishedSize(body, attributes) };
}

/**
 * ERR_EVENT_TOO_LARGE for an event of `size` bytes over `limit`; `fix` names the config key that
 * would allow it (README "Large events").
 */
export function tooLarge(event: CloudEvent, size: number, limit: number, fix: string): EventBusError {
  return new EventBusError('ERR_EVENT_TOO_LARGE', `event ${event.type} (${event.id}) is ${size} bytes; ${fix} allows ${limit}`);
}

/** What to set for events over SNS's limit when offloading is off. */
export const OFFLOAD_HINT = 'SNS (set payloads.bucket to offload larger events to S3)';

/** Serialises an event and checks the SNS size limit before any call (no offloading). */
export function encodeEvent(event: CloudEvent, extraAttributes?: Record<string, string>): EncodedEvent {
  const enc = serializeEvent(event, extraAttributes);
  if (enc.size > SNS_MAX_BYTES) throw tooLarge(event, enc.size, SNS_MAX_BYTES, OFFLOAD_HINT);
  return enc;
}

/**
 * A deterministic UUID (version 5 layout, SHA-1) for an event published from a handler: the same
 * triggering event, queue and call position give the same id on every retry, so consumers can dedupe.
 */
export function derivedEventId(parentId: string, queue: string, position: number): string {
  const h = createHash('sha1').update(`eventbus\0${parentId}\0${queue}\0${position}`).digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const hex = h.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}
