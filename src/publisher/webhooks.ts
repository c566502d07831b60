// Webhook ingress: signature verification (pure functions) and the fastify routes that publish
// verified webhooks as events. Secrets and signature headers are never logged.
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { FastifyError, FastifyInstance, FastifyReply } from 'fastify';
import type { Logger } from '../log.js';
import type { WebhookSource } from '../config.js';
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

/** Why a request was refused, or `published`: the `outcome` label of eventbus_webhook_requests_total. */
export type WebhookOutcome =
  | 'published'
  | 'bad_signature'
  | 'missing_signature'
  | 'stale_timestamp'
  | 'unknown_source'
  | 'malformed'
  | 'too_large'
  | 'publish_failed';

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

/** The signature a generic source sends: hex HMAC-SHA256 of the raw body (optionally `sha256=<hex>`). */
export function hmacSignature(payload: Buffer | string, secret: string): string {
  return createHmac('sha256', secret).update(payload).digest('hex');
}

/**
 * Verifies a generic HMAC source: the header holds HMAC-SHA256(secret, rawBody) as hex, optionally
 * prefixed `sha256=` (GitHub's form), or as base64 (Shopify's form). Constant-time comparison.
 */
export function verifyHmacSignature(o: { payload: Buffer | string; signature: string | undefined; secret: string }): VerifyResult {
  if (!o.signature) return { ok: false, outcome: 'missing_signature', reason: 'missing signature header' };
  const expected = createHmac('sha256', o.secret).update(o.payload).digest();
  const given = o.signature.trim().replace(/^sha256=/i, '');
  let bytes: Buffer | null = null;
  if (/^[0-9a-fA-F]{64}$/.test(given)) bytes = Buffer.from(given, 'hex');
  else if (/^[A-Za-z0-9+/]{43}=$/.test(given)) bytes = Buffer.from(given, 'base64');
  if (!bytes || bytes.length !== expected.length || !timingSafeEqual(bytes, expected)) {
    return { ok: false, outcome: 'bad_signature', reason: 'signature does not match the payload' };
  }
  return { ok: true };
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
  return `${source.toUpperCase().replace(/[^A-Z0-9]+/g, '_')}_INCOMING_WEBHOOK`;
}

/** A source name usable in a URL and a metric label. */
export const WEBHOOK_SOURCE_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

export interface WebhookRoutesOptions {
  stripeSecrets: readonly string[];
  sources: Readonly<Record<string, WebhookSource>>;
  /** The publisher, or null while the topic is not resolved yet (then 503: the sender retries). */
  publisher(): Publisher | null;
  /** Counts one request: eventbus_webhook_requests_total{source, outcome}. */
  count(source: string, outcome: WebhookOutcome): void;
  log: Logger;
  /** Stripe's timestamp tolerance (default 300 s). */
  toleranceSec?: number;
  /** CloudEvents source of the published events (default `webhook/<source>`). */
  eventSource?: (source: string) => string;
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

/**
 * Registers `POST /webhooks/stripe` (when Stripe secrets are set) and `POST /webhooks/:source` (when
 * sources are configured) in their own fastify scope, whose body parser keeps the raw bytes. 2xx only
 * once SNS accepted the event; every refusal is a 4xx with a short reason and publishes nothing.
 */
export async function registerWebhookRoutes(app: FastifyInstance, o: WebhookRoutesOptions): Promise<void> {
  const stripeOn = o.stripeSecrets.length > 0;
  const sourceNames = Object.keys(o.sources);
  if (!stripeOn && sourceNames.length === 0) return;
  const eventSource = o.eventSource ?? ((s: string) => `webhook/${s}`);

  await app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: WEBHOOK_MAX_BODY_BYTES }, (_req, body, done) => done(null, body));
    // Body-limit and parser errors land here: answer briefly, and count them.
    scope.setErrorHandler((err: FastifyError, req, reply) => {
      const label = labelOf((req.params as { source?: string } | undefined)?.source ?? (req.url.startsWith('/webhooks/stripe') ? 'stripe' : undefined));
      if (err.statusCode === 413) return refuse(reply, label, new Refused(413, 'too_large', `body larger than ${WEBHOOK_MAX_BODY_BYTES} bytes`));
      if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) return refuse(reply, label, new Refused(400, 'malformed', 'malformed request'));
      o.log.error({ err, source: label }, 'webhook ingress failed');
      o.count(label, 'publish_failed');
      return reply.code(500).send({ error: 'internal error' });
    });

    const labelOf = (s: string | undefined) => (s === 'stripe' && stripeOn) || (s !== undefined && Object.hasOwn(o.sources, s)) ? s! : 'unknown';

    const refuse = (reply: FastifyReply, source: string, r: Refused) => {
      o.count(source, r.outcome);
      o.log.warn({ source, outcome: r.outcome, reason: r.message }, 'webhook refused');
      return reply.code(r.status).send({ error: r.message });
    };

    const publish = async (reply: FastifyReply, source: string, type: string, id: string, data: unknown, subject?: string) => {
      const publisher = o.publisher();
      if (!publisher) {
        o.count(source, 'publish_failed');
        return reply.code(503).header('retry-after', '5').send({ error: 'not ready to publish; retry later' });
      }
      try {
        const event = await publisher.createEvent(type, data, { id, source: eventSource(source), ...(subject ? { subject } : {}) });
        o.count(source, 'published');
        return reply.code(200).send({ received: true, id: event.id });
      } catch (err) {
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
          ...(o.toleranceSec !== undefined ? { toleranceSec: o.toleranceSec } : {}),
        });
        if (!v.ok) return refuse(reply, 'stripe', new Refused(v.outcome === 'missing_signature' ? 400 : v.outcome === 'stale_timestamp' ? 400 : 401, v.outcome, v.reason));
        const evt = parseJson(raw);
        if (!isObject(evt) || typeof evt.id !== 'string' || evt.id === '') {
          return refuse(reply, 'stripe', new Refused(400, 'malformed', 'body is not a Stripe event (a JSON object with an id)'));
        }
        return publish(reply, 'stripe', STRIPE_EVENT_TYPE, webhookEventId('stripe', evt.id), evt, typeof evt.type === 'string' ? evt.type : undefined);
      });
    }

    if (sourceNames.length > 0) {
      scope.post('/webhooks/:source', async (req, reply) => {
        const name = (req.params as { source: string }).source;
        const src = WEBHOOK_SOURCE_RE.test(name) && Object.hasOwn(o.sources, name) ? o.sources[name] : undefined;
        if (!src) return refuse(reply, 'unknown', new Refused(404, 'unknown_source', 'unknown webhook source'));
        const raw = rawBody(req.body);
        const header = req.headers[src.header.toLowerCase()];
        const v = verifyHmacSignature({ payload: raw, signature: Array.isArray(header) ? header[0] : header, secret: src.secret });
        if (!v.ok) return refuse(reply, name, new Refused(v.outcome === 'missing_signature' ? 400 : 401, v.outcome, v.reason));
        const data = parseJson(raw);
        if (data === undefined) return refuse(reply, name, new Refused(400, 'malformed', 'body is not JSON'));
        // The sender's own id when it has one, else the body itself: a redelivery gets the same event id.
        const senderId = isObject(data) && (typeof data.id === 'string' || typeof data.id === 'number') ? `id:${data.id}` : `sha256:${createHash('sha256').update(raw).digest('hex')}`;
        return publish(reply, name, webhookEventType(name), webhookEventId(name, senderId), data);
      });
    }
  });
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
