// Large events: the claim check on S3 (README "Large events"). An event whose JSON is over
// `payloads.thresholdBytes` is stored in `payloads.bucket` and published as a pointer in the
// format of AWS's extended clients (src/event/pointer.ts); consumers resolve pointers in the worker
// thread before validation and `handle`. Objects are never deleted by eventbus (several queues
// read one object): the bucket's lifecycle rule (provisioning) expires them. This module has no
// S3 SDK import: ./s3.js is loaded on the first offload or fetch.
import { createHash } from 'node:crypto';
import type { S3Client } from '@aws-sdk/client-s3';
import type { AwsSettings } from '../aws.js';
import type { CloudEvent } from '../types.js';
import {
  EXTENDED_PAYLOAD_SIZE_ATTRIBUTE,
  OFFLOAD_HINT,
  SNS_MAX_BYTES,
  encodePointer,
  publishedSize,
  serializeEvent,
  tooLarge,
  type EncodedEvent,
} from '../event/index.js';

/** `payloads.maxBytes` default: 64 MiB. */
export const DEFAULT_PAYLOAD_MAX_BYTES = 64 * 1024 * 1024;
/** `payloads.retentionDays` default: the DLQs' retention, so a dead letter's payload outlives it. */
export const DEFAULT_PAYLOAD_RETENTION_DAYS = 14;
/** `payloads.prefix` default. */
export const DEFAULT_PAYLOAD_PREFIX = 'eventbus/';
/** The bucket `npm start` (and `--dev`) provisions on the embedded emulator. */
export const DEV_PAYLOAD_BUCKET = 'eventbus-payloads';

/** The `payloads.*` config a publisher needs. */
export interface PayloadSettings {
  bucket: string;
  prefix: string;
  /** Events whose published size (JSON + attributes, as SNS counts it) is above this are offloaded. */
  thresholdBytes: number;
  /** Larger events are ERR_EVENT_TOO_LARGE before any call. */
  maxBytes: number;
}

/** Reads and writes payload objects. */
export interface PayloadStore {
  put(bucket: string, key: string, body: string): Promise<void>;
  get(bucket: string, key: string): Promise<string>;
}

/** A store over an S3 client made (and the SDK loaded) on first use; or over a client given. */
export function lazyPayloadStore(settings: AwsSettings | { client: S3Client | (() => S3Client) }): PayloadStore {
  let ready: Promise<{ s3: S3Client; mod: typeof import('./s3.js') }> | undefined;
  const load = () =>
    (ready ??= import('./s3.js').then((mod) => {
      const s3 = 'client' in settings ? (typeof settings.client === 'function' ? settings.client() : settings.client) : mod.createS3Client(settings);
      return { s3, mod };
    }));
  return {
    put: (bucket, key, body) => load().then(({ s3, mod }) => mod.putPayload(s3, bucket, key, body)),
    get: (bucket, key) => load().then(({ s3, mod }) => mod.getPayload(s3, bucket, key)),
  };
}

const SAFE_ID_RE = /^[A-Za-z0-9._-]{1,200}$/;

/**
 * The object key of an event's payload: `<prefix><event id>`, so a retried publish (same id)
 * overwrites the same object. An id with other characters (S3 keys allow them, but URLs, logs and
 * IAM patterns are easier without) is replaced by its SHA-256.
 */
export function payloadKey(prefix: string, eventId: string): string {
  return `${prefix}${SAFE_ID_RE.test(eventId) && eventId !== '.' && eventId !== '..' ? eventId : `sha256-${createHash('sha256').update(eventId).digest('hex')}`}`;
}

/** An event ready to send: inline, or a pointer whose payload still has to be stored (`offload`). */
export interface PreparedEvent extends EncodedEvent {
  event: CloudEvent;
  offload?: { bucket: string; key: string; body: string; bytes: number };
}

/**
 * Encodes an event for SNS (or an SQS send), checking every limit before any call: inline when its
 * size is within the threshold; else, with `payloads`, a pointer body (the extended clients' format)
 * with the same attributes (`event-type` keeps filter policies routing it) plus ExtendedPayloadSize;
 * without `payloads`, ERR_EVENT_TOO_LARGE naming `payloads.bucket`. Over `payloads.maxBytes`:
 * ERR_EVENT_TOO_LARGE naming it.
 */
export function prepareEvent(event: CloudEvent, extraAttributes: Record<string, string> | undefined, payloads: PayloadSettings | null): PreparedEvent {
  const enc = serializeEvent(event, extraAttributes);
  const threshold = payloads ? payloads.thresholdBytes : SNS_MAX_BYTES;
  if (enc.size <= threshold) return { event, ...enc };
  if (!payloads) throw tooLarge(event, enc.size, SNS_MAX_BYTES, OFFLOAD_HINT);
  const bytes = Buffer.byteLength(enc.body, 'utf8');
  if (bytes > payloads.maxBytes) throw tooLarge(event, bytes, payloads.maxBytes, 'payloads.maxBytes');
  const key = payloadKey(payloads.prefix, event.id);
  const body = encodePointer(payloads.bucket, key);
  const attributes = { ...enc.attributes, [EXTENDED_PAYLOAD_SIZE_ATTRIBUTE]: { DataType: 'Number' as const, StringValue: String(bytes) } };
  const size = publishedSize(body, attributes);
  // Only the attributes can make a pointer too large: they stay on the message.
  if (size > SNS_MAX_BYTES) throw tooLarge(event, size, SNS_MAX_BYTES, 'SNS for a pointer with these attributes');
  return { event, body, attributes, size, offload: { bucket: payloads.bucket, key, body: enc.body, bytes } };
}

/**
 * Stores the payloads of the prepared events that need it, a few at a time. Returns the ones that
 * could not be stored, with why (the caller reports them; the others may be sent).
 */
export async function storePayloads(store: PayloadStore, prepared: readonly PreparedEvent[]): Promise<Map<PreparedEvent, unknown>> {
  const failed = new Map<PreparedEvent, unknown>();
  const todo = prepared.filter((p) => p.offload);
  let next = 0;
  const worker = async () => {
    while (next < todo.length) {
      const p = todo[next++]!;
      try {
        await store.put(p.offload!.bucket, p.offload!.key, p.offload!.body);
      } catch (err) {
        failed.set(p, err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(4, todo.length) }, worker));
  return failed;
}

/** `payloads.*` of a config as a publisher takes it; null when no bucket is configured. */
export function payloadSettingsOf(cfg: { payloads: { bucket: string | null; prefix: string; thresholdBytes: number; maxBytes: number } }): PayloadSettings | null {
  const p = cfg.payloads;
  return p.bucket ? { bucket: p.bucket, prefix: p.prefix, thresholdBytes: p.thresholdBytes, maxBytes: p.maxBytes } : null;
}

/** The S3 client's settings: the AWS ones, with `payloads.endpoint` in place of the endpoint when set. */
export function s3SettingsOf(aws: AwsSettings, cfg: { payloads: { endpoint: string | null } }): AwsSettings {
  return cfg.payloads.endpoint ? { ...aws, endpoint: cfg.payloads.endpoint } : aws;
}

/** What provisioning needs for the bucket; null when no bucket is configured. */
export function bucketPlanOf(aws: AwsSettings, cfg: { payloads: { bucket: string | null; prefix: string; retentionDays: number; endpoint: string | null } }) {
  const p = cfg.payloads;
  return p.bucket ? { bucket: p.bucket, prefix: p.prefix, retentionDays: p.retentionDays, s3: s3SettingsOf(aws, cfg) } : null;
}
