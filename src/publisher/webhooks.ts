// Webhook ingress: signature verification (pure functions) and the fastify routes that publish
// verified webhooks as events. Secrets and signature headers are never logged.
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import type { Logger } from '../log.js';
import { foldSourceName, WEBHOOK_SOURCE_RE, type WebhookSource } from '../config.js';
import type { DeliveryLedger } from './deliveries.js';
import type { Publisher } from './index.js';
import { SNS_MAX_BYTES } from '../event/index.js';

/** Stripe's default tolerance between the signed timestamp and now. */
export const STRIPE_TOLERANCE_SEC = 300;
export const STRIPE_EVENT_TYPE = 'STRIPE_INCOMING_WEBHOOK';
export const STRIPE_SIGNATURE_HEADER = 'stripe-signature';
/**
 * Largest accepted body. The event that wraps it must fit SNS's 256 KiB, so a larger body could
 * never be published; anything between the two limits fails as `too_large` after wrapping.
 */
export const WEBHOOK_MAX_BODY_BYTES = SNS_MAX_BYTES;
/**
 * Largest accepted body when large events go through S3 (`payloads.bucket` set; at most
 * `payloads.maxBytes`). Not the whole 64 MiB: a body is read, and held, before its signature is
 * checked, so an unauthenticated sender chooses how much each open connection holds.
 */
export const WEBHOOK_MAX_OFFLOADED_BODY_BYTES = 8 * 1024 * 1024;

/** Why a request was refused, or `published`: the `outcome` label of eventbus_webhook_requests_total. */
export type WebhookOutcome =
  | 'published'
  | 'bad_signature'
  | 'missing_signature'
  | 'stale_timestamp'
  | 'unknown_source'
  | 'malformed'
  | 'too_large'
  | 'publish_failed'
  | 'duplicate'
  | 'in_progress';

export type VerifyResult = { ok: true; timestamp?: number } | { ok: false; outcome: WebhookOutcome; reason: string };

/** Parses `t=...,v1=...,v1=...,v0=...`; unknown schemes are ignored, as Stripe's libraries do. */
export function parseStripeSignature(header: string): { timestamp: number | null; v1: string[] } {
  let timestamp: number | null = null;
  const v1: string[] = [];
  for (const part of header.split(',')) {
    const i = part.indexOf('=');
    if (i < 0) continue;
    const key = part.slice(0, i).trim();
    const value = part.slice(i + 1).trim();
    if (key === 't' && /^\d+$/.test(value)) timestamp = Number(value);
    else if (key === 'v1' && value !== '') v1.push(value);
  }
  return { timestamp, v1 };
}

/** The hex HMAC-SHA256 Stripe puts in `v1`: over `<timestamp>.<raw body>`. */
export function stripeSignature(payload: Buffer | string, secret: string, timestamp: number): string {
  return createHmac('sha256', secret).update(`${timestamp}.`).update(payload).digest('hex');
}

/** A whole `Stripe-Signature` header value for `payload` (tests and local senders). */
export function signStripePayload(payload: Buffer | string, secret: string, timestamp = Math.floor(Date.now() / 1000)): string {
  return `t=${timestamp},v1=${stripeSignature(payload, secret, timestamp)}`;
}

/** Constant-time comparison of two hex strings (false for different lengths or non-hex input). */
function hexEqual(a: string, b: string): boolean {
  if (!/^[0-9a-fA-F]+$/.test(a) || !/^[0-9a-fA-F]+$/.test(b) || a.length !== b.length || a.length % 2 !== 0) return false;
  return timingSafeEqual(Buffer.from(a, 'hex'), Buffer.from(b, 'hex'));
}

/**
 * Verifies a Stripe webhook as Stripe specifies: the `t` timestamp within `toleranceSec` of now,
 * and any `v1` signature equal (constant time) to HMAC-SHA256(secret, `t.rawBody`) for any of the
 * secrets (several during a rotation). The payload must be the raw request bytes.
 */
export function verifyStripeSignature(o: {
  payload: Buffer | string;
  header: string | undefined;
  secrets: readonly string[];
  toleranceSec?: number;
  nowSec?: number;
}): VerifyResult {
  if (!o.header) return { ok: false, outcome: 'missing_signature', reason: 'missing Stripe-Signature header' };
  const { timestamp, v1 } = parseStripeSignature(o.header);
  if (timestamp === null || v1.length === 0) return { ok: false, outcome: 'bad_signature', reason: 'Stripe-Signature has no timestamp or no v1 signature' };
  let matched = false;
  // Every secret and every signature is compared, so timing does not tell which one matched.
  for (const secret of o.secrets) {
    const expected = stripeSignature(o.payload, secret, timestamp);
    for (const sig of v1) if (hexEqual(expected, sig)) matched = true;
  }
  if (!matched) return { ok: false, outcome: 'bad_signature', reason: 'no signature matches the payload' };
  const now = o.nowSec ?? Math.floor(Date.now() / 1000);
  const tolerance = o.toleranceSec ?? STRIPE_TOLERANCE_SEC;
  if (tolerance > 0 && Math.abs(now - timestamp) > tolerance) {
    return { ok: false, outcome: 'stale_timestamp', reason: `timestamp outside the ${tolerance} s tolerance` };
  }
  return { ok: true, timestamp };
}

/** The signature a generic source sends: hex HMAC-SHA256 of the signed payload (optionally `sha256=<hex>`). */
export function hmacSignature(payload: Buffer | string, secret: string): string {
  return createHmac('sha256', secret).update(payload).digest('hex');
}

/**
 * Verifies a generic HMAC source: the header holds HMAC-SHA256(secret, payload) as hex, optionally
 * prefixed `sha256=` (GitHub's form), or as base64 (Shopify's form), for any of the secrets (several
 * during a rotation). Constant-time comparison; every secret is tried, so timing does not tell which.
 */
export function verifyHmacSignature(o: { payload: Buffer | string; signature: string | undefined; secrets: readonly string[] }): VerifyResult {
  if (!o.signature) return { ok: false, outcome: 'missing_signature', reason: 'missing signature header' };
  const given = o.signature.trim().replace(/^sha256=/i, '');
  let bytes: Buffer | null = null;
  if (/^[0-9a-fA-F]{64}$/.test(given)) bytes = Buffer.from(given, 'hex');
  else if (/^[A-Za-z0-9+/]{43}=$/.test(given)) bytes = Buffer.from(given, 'base64');
  let matched = false;
  for (const secret of o.secrets) {
    const expected = createHmac('sha256', secret).update(o.payload).digest();
    if (bytes && bytes.length === expected.length && timingSafeEqual(bytes, expected)) matched = true;
  }
  return matched ? { ok: true } : { ok: false, outcome: 'bad_signature', reason: 'signature does not match the payload' };
}

/** The bytes a generic source signs: its `signedPayload` template with `{body}` (raw bytes), `{timestamp}` and `{id}` filled in. */
export function signedPayloadOf(template: string, parts: { body: Buffer; timestamp?: string | undefined; id?: string | undefined }): Buffer {
  const chunks: Buffer[] = [];
  let last = 0;
  for (const m of template.matchAll(/\{(body|timestamp|id)\}/g)) {
    chunks.push(Buffer.from(template.slice(last, m.index)));
    const name = m[1] as 'body' | 'timestamp' | 'id';
    chunks.push(name === 'body' ? parts.body : Buffer.from(parts[name] ?? ''));
    last = m.index + m[0].length;
  }
  chunks.push(Buffer.from(template.slice(last)));
  return Buffer.concat(chunks);
}

/** Checks a signed Unix timestamp in seconds against now (the signature must already have verified). */
export function checkTimestamp(value: string | undefined, toleranceSec: number, nowSec: number): VerifyResult {
  if (value === undefined || !/^\d{1,12}$/.test(value.trim())) return { ok: false, outcome: 'stale_timestamp', reason: 'missing or malformed timestamp header' };
  const ts = Number(value.trim());
  if (Math.abs(nowSec - ts) > toleranceSec) return { ok: false, outcome: 'stale_timestamp', reason: `timestamp outside the ${toleranceSec} s tolerance` };
  return { ok: true, timestamp: ts };
}

/**
 * A deterministic UUID (version 5 layout) for the event of a webhook: the same sender and sender id
 * (Stripe's `evt_...`) give the same event id on every redelivery, so the archive and idempotent
 * handlers keep it once.
 */
export function webhookEventId(source: string, senderId: string): string {
  const h = createHash('sha1').update(`eventbus-webhook\0${source}\0${senderId}`).digest();
  h[6] = (h[6]! & 0x0f) | 0x50;
  h[8] = (h[8]! & 0x3f) | 0x80;
  const hex = h.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/** `<SOURCE>_INCOMING_WEBHOOK` for a source name (upper case, other characters as `_`). */
export function webhookEventType(source: string): string {
  return `${foldSourceName(source)}_INCOMING_WEBHOOK`;
}

export { WEBHOOK_SOURCE_RE };

/** How long a request holds a delivery while it publishes; a holder that died frees it after this. */
export const DELIVERY_LEASE_MS = 60_000;
/** Longest delivery id header value accepted. */
const MAX_DELIVERY_ID = 200;

export interface WebhookRoutesOptions {
  stripeSecrets: readonly string[];
  /** Stripe's timestamp tolerance (default 300 s). */
  stripeToleranceSec?: number;
  sources: Readonly<Record<string, WebhookSource>>;
  /** Where accepted deliveries are recorded (the archive store, or memory). */
  deliveries: DeliveryLedger;
  /** How long a delivery is remembered; at least every tolerance. */
  deliveryTtlSec: number;
  /** The publisher, or null while the topic is not resolved yet (then 503: the sender retries). */
  publisher(): Publisher | null;
  /** Counts one request: eventbus_webhook_requests_total{source, outcome}. */
  count(source: string, outcome: WebhookOutcome): void;
  log: Logger;
  /** CloudEvents source of the published events (default `webhook/<source>`). */
  eventSource?: (source: string) => string;
  /** The clock, ms since the epoch (tests). */
  now?: () => number;
  /** Largest body (default WEBHOOK_MAX_BODY_BYTES; with large events on S3, webhookBodyLimit). */
  maxBodyBytes?: number;
}

/** The body limit of webhook routes under a config: SNS's limit, or more when large events go through S3. */
export function webhookBodyLimit(cfg: { payloads: { bucket: string | null; maxBytes: number } }): number {
  return cfg.payloads.bucket ? Math.min(cfg.payloads.maxBytes, WEBHOOK_MAX_OFFLOADED_BODY_BYTES) : WEBHOOK_MAX_BODY_BYTES;
}

/** Whether any webhook route is configured. */
export function webhooksEnabled(cfg: { webhooks: { stripe: { secrets: readonly string[] }; sources: Readonly<Record<string, unknown>> } }): boolean {
  return cfg.webhooks.stripe.secrets.length > 0 || Object.keys(cfg.webhooks.sources).length > 0;
}

class Refused extends Error {
  constructor(
    readonly status: number,
    readonly outcome: WebhookOutcome,
    message: string,
  ) {
    super(message);
  }
}

/** A request that did not prove it comes from a configured sender: answered as if no route existed. */
const NOT_FOUND = 404;

/**
 * Registers `POST /webhooks/stripe` (when Stripe secrets are set) and `POST /webhooks/:source` (when
 * sources are configured) in their own fastify scope, whose body parser keeps the raw bytes. 2xx only
 * once SNS accepted the event, or for a delivery already accepted (published once, not again).
 * An unknown source, a missing or bad signature and a stale timestamp all get fastify's own 404, the
 * answer for a path with no route, so none tells a caller which sources exist; the reason is logged
 * and counted. Other refusals (after a valid signature) are a 4xx with a short reason. No refusal publishes.
 */
export async function registerWebhookRoutes(app: FastifyInstance, o: WebhookRoutesOptions): Promise<void> {
  const stripeOn = o.stripeSecrets.length > 0;
  const sourceNames = Object.keys(o.sources);
  if (!stripeOn && sourceNames.length === 0) return;
  const eventSource = o.eventSource ?? ((s: string) => `webhook/${s}`);
  const now = o.now ?? Date.now;
  const ttlMs = o.deliveryTtlSec * 1000;
  const maxBody = o.maxBodyBytes ?? WEBHOOK_MAX_BODY_BYTES;

  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: maxBody }, (_req, body, done) => done(null, body));
    // Body-limit and parser errors land here: answer briefly, and count them.
    scope.setErrorHandler((err: FastifyError, req, reply) => {
      const label = labelOf((req.params as { source?: string } | undefined)?.source ?? (req.url.startsWith('/webhooks/stripe') ? 'stripe' : undefined));
      if (err.statusCode === 413) return refuse(reply, label, new Refused(413, 'too_large', `body larger than ${maxBody} bytes`));
      if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) return refuse(reply, label, new Refused(400, 'malformed', 'malformed request'));
      o.log.error({ err, source: label }, 'webhook ingress failed');
      o.count(label, 'publish_failed');
      return reply.code(500).send({ error: 'internal error' });
    });

    const labelOf = (s: string | undefined) => (s === 'stripe' && stripeOn) || (s !== undefined && Object.hasOwn(o.sources, s)) ? s! : 'unknown';

    const refuse = (reply: FastifyReply, source: string, r: Refused) => {
      o.count(source, r.outcome);
      o.log.warn({ source, outcome: r.outcome, reason: r.message }, 'webhook refused');
      if (r.status === NOT_FOUND) return reply.callNotFound();
      return reply.code(r.status).send({ error: r.message });
    };
    const unverified = (reply: FastifyReply, source: string, v: VerifyResult & { ok: false }) => refuse(reply, source, new Refused(NOT_FOUND, v.outcome, v.reason));

    /** Publishes a delivery unless one of its keys was already accepted (then 200, nothing published). */
    const publishOnce = async (reply: FastifyReply, source: string, keys: readonly string[], type: string, id: string, data: unknown, subject?: string) => {
      const publisher = o.publisher();
      if (!publisher) {
        o.count(source, 'publish_failed');
        return reply.code(503).header('retry-after', '5').send({ error: 'not ready to publish; retry later' });
      }
      const claimed: string[] = [];
      const release = async () => {
        try {
          await Promise.all(claimed.map((k) => o.deliveries.releaseDelivery(source, k)));
        } catch (err) {
          o.log.warn({ err, source }, 'webhook delivery record not released; a retry is refused until its lease ends');
        }
      };
      try {
        for (const key of keys) {
          const claim = await o.deliveries.claimDelivery(source, key, now(), DELIVERY_LEASE_MS);
          if (claim === 'new') {
            claimed.push(key);
            continue;
          }
          await release();
          if (claim === 'done') {
            o.count(source, 'duplicate');
            o.log.info({ source, eventId: id }, 'webhook delivery already accepted; not published again');
            return reply.code(200).send({ received: true, id, duplicate: true });
          }
          o.count(source, 'in_progress');
          return reply.code(409).header('retry-after', '5').send({ error: 'this delivery is being processed; retry later' });
        }
      } catch (err) {
        await release();
        o.count(source, 'publish_failed');
        o.log.error({ err, source }, 'webhook delivery records unavailable; the sender will retry');
        return reply.code(503).header('retry-after', '5').send({ error: 'event not published; retry later' });
      }
      try {
        const event = await publisher.createEvent(type, data, { id, source: eventSource(source), ...(subject ? { subject } : {}) });
        o.count(source, 'published');
        try {
          const at = now();
          await Promise.all(claimed.map((k) => o.deliveries.completeDelivery(source, k, at, ttlMs)));
        } catch (err) {
          o.log.warn({ err, source, eventId: event.id }, 'webhook published, but its delivery record was not kept: a repeat within the lease may publish again');
        }
        return reply.code(200).send({ received: true, id: event.id });
      } catch (err) {
        await release();
        if ((err as { code?: string }).code === 'ERR_EVENT_TOO_LARGE') return refuse(reply, source, new Refused(413, 'too_large', 'event too large for SNS'));
        o.count(source, 'publish_failed');
        o.log.error({ err, source, eventType: type }, 'webhook not published; the sender will retry');
        return reply.code(503).send({ error: 'event not published; retry later' });
      }
    };

    if (stripeOn) {
      scope.post('/webhooks/stripe', async (req, reply) => {
        const raw = rawBody(req.body);
        const header = req.headers[STRIPE_SIGNATURE_HEADER];
        const v = verifyStripeSignature({
          payload: raw,
          header: Array.isArray(header) ? header.join(',') : header,
          secrets: o.stripeSecrets,
          nowSec: Math.floor(now() / 1000),
          ...(o.stripeToleranceSec !== undefined ? { toleranceSec: o.stripeToleranceSec } : {}),
        });
        if (!v.ok) return unverified(reply, 'stripe', v);
        const evt = parseJson(raw);
        if (!isObject(evt) || typeof evt.id !== 'string' || evt.id === '') {
          return refuse(reply, 'stripe', new Refused(400, 'malformed', 'body is not a Stripe event (a JSON object with an id)'));
        }
        // Stripe's delivery id is its event id: inside the signed body, and the same on every retry.
        return publishOnce(reply, 'stripe', [`id:${evt.id}`], STRIPE_EVENT_TYPE, webhookEventId('stripe', evt.id), evt, typeof evt.type === 'string' ? evt.type : undefined);
      });
    }

    if (sourceNames.length > 0) {
      scope.post('/webhooks/:source', async (req, reply) => {
        const name = (req.params as { source: string }).source;
        const src = WEBHOOK_SOURCE_RE.test(name) && Object.hasOwn(o.sources, name) ? o.sources[name] : undefined;
        const raw = rawBody(req.body);
        if (!src) {
          // The same work as a known source's check, so the time taken does not tell them apart either.
          verifyHmacSignature({ payload: raw, signature: '0'.repeat(64), secrets: [UNKNOWN_SOURCE_KEY] });
          return unverified(reply, 'unknown', { ok: false, outcome: 'unknown_source', reason: 'unknown webhook source' });
        }
        const deliveryId = src.deliveryIdHeader ? firstHeader(req.headers[src.deliveryIdHeader]) : undefined;
        const timestamp = src.timestampHeader ? firstHeader(req.headers[src.timestampHeader]) : undefined;
        const signed = signedPayloadOf(src.signedPayload, { body: raw, timestamp, id: deliveryId });
        const v = verifyHmacSignature({ payload: signed, signature: firstHeader(req.headers[src.header]), secrets: src.secrets });
        if (!v.ok) return unverified(reply, name, v);
        if (src.timestampHeader) {
          const ts = checkTimestamp(timestamp, src.toleranceSec, Math.floor(now() / 1000));
          if (!ts.ok) return unverified(reply, name, ts);
        }
        if (src.deliveryIdHeader && (!deliveryId || deliveryId.length > MAX_DELIVERY_ID)) {
          return refuse(reply, name, new Refused(400, 'malformed', `missing or overlong ${src.deliveryIdHeader} header`));
        }
        const data = parseJson(raw);
        if (data === undefined) return refuse(reply, name, new Refused(400, 'malformed', 'body is not JSON'));
        // The event id: the sender's delivery id when the source names its header, else the raw body's
        // hash (never the body's `id`, often an object's id shared by many deliveries). A redelivery
        // gets the same event id either way.
        const idKey = deliveryId !== undefined ? `delivery:${deliveryId}` : `sha256:${sha256(raw)}`;
        const keys = [idKey];
        // A delivery id outside the signature could be changed by whoever replays a request: then the
        // signed bytes (which include the timestamp, when there is one) are a key of their own too.
        if (deliveryId !== undefined && !src.signedPayload.includes('{id}')) keys.push(`signed:${sha256(signed)}`);
        return publishOnce(reply, name, keys, webhookEventType(name), webhookEventId(name, idKey), data);
      });
    }
  });
}

/** A random key for the unknown-source check: it never verifies. */
const UNKNOWN_SOURCE_KEY = randomBytes(32).toString('hex');

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

function firstHeader(h: string | string[] | undefined): string | undefined {
  return Array.isArray(h) ? h[0] : h;
}

function rawBody(body: unknown): Buffer {
  if (Buffer.isBuffer(body)) return body;
  if (typeof body === 'string') return Buffer.from(body);
  return Buffer.alloc(0);
}

/** The parsed JSON value, or undefined when the bytes are not JSON. */
function parseJson(raw: Buffer): unknown {
  try {
    return JSON.parse(raw.toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
