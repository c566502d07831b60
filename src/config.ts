import convict from 'convict';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { EventBusError } from './errors.js';
import { usableCores } from './cpus.js';
import { REDACTED, redactDsn } from './redact.js';
import { SNS_MAX_BYTES } from './event/encode.js';

/** Per-queue overrides of a handler's declaration (`queues.<name>.*`). */
export interface QueueOverride {
  concurrency?: number;
  prefetch?: number;
  visibilityTimeout?: number;
  timeoutMs?: number;
  maxReceiveCount?: number;
  /** A standard queue's messages of one group running at once (the handler's `groupConcurrency`). */
  groupConcurrency?: number;
}

/** A generic HMAC webhook source (`webhooks.sources.<name>`), normalised. */
export interface WebhookSource {
  /** Signing secrets, any of which verifies (several during a rotation); from `secret` and `secrets`, or the env. */
  secrets: string[];
  /** The header holding the signature. */
  header: string;
  /** The header holding the signed Unix time in seconds; null = the sender signs no timestamp. */
  timestampHeader: string | null;
  /** Largest accepted difference between that timestamp and now. */
  toleranceSec: number;
  /** The header holding the sender's delivery id (e.g. X-GitHub-Delivery); null = a hash of the raw body. */
  deliveryIdHeader: string | null;
  /** What the HMAC covers: `{body}`, with `{timestamp}` and `{id}` (the delivery id) when signed. */
  signedPayload: string;
}

/** The keys a source may set in the config file. */
const SOURCE_KEYS = ['secret', 'secrets', 'header', 'timestampHeader', 'toleranceSec', 'deliveryIdHeader', 'signedPayload'] as const;
/** Stripe's tolerance, and the default of a generic source with a timestamp header. */
export const DEFAULT_TOLERANCE_SEC = 300;
/** A source name usable in a URL, a metric label and an env var name. */
export const WEBHOOK_SOURCE_RE = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;

/**
 * The upper-case form of a source name (non-alphanumerics as `_`): in its event type
 * `<FOLDED>_INCOMING_WEBHOOK` and its env vars `EVENTBUS_WEBHOOK_<FOLDED>_SECRETS[_FILE]`.
 */
export function foldSourceName(name: string): string {
  return name.toUpperCase().replace(/[^A-Z0-9]+/g, '_');
}

/** The validated, frozen configuration. Durations carry their unit in the name. */
export interface Config {
  endpoint: string | null;
  region: string | null;
  topic: string;
  /** The FIFO topic of grouped events (ordered handlers); `<topic>.fifo` unless set. */
  fifoTopic: string;
  source: string;
  queuePrefix: string;
  handlersDir: string;
  provision: boolean;
  concurrency: number;
  /** Received messages a queue may hold waiting for a free slot (SPEC "Slots"); clipped to its cap. */
  prefetch: number;
  threads: number;
  tasksPerThread: number;
  processes: number;
  /** V8 old-generation limit per worker thread in MiB (piscina resourceLimits); null = V8's default. */
  threadHeapMb: number | null;
  http: { host: string; port: number; apiToken: string | null };
  shutdownTimeoutMs: number;
  retry: { baseDelaySec: number; maxDelaySec: number };
  readiness: { sqsFailureSec: number };
  logLevel: string;
  failureEvents: { enabled: boolean; maxPerSecond: number };
  webhooks: {
    stripe: { secrets: string[]; toleranceSec: number };
    sources: Record<string, WebhookSource>;
    /** How long a delivery's idempotency record is kept (>= every tolerance). */
    deliveryTtlSec: number;
    /** Most delivery records one process keeps in memory when the archive is off. */
    deliveryCacheSize: number;
  };
  archive: { enabled: boolean; url: string | null };
  /** The web console on the HTTP port (`/console`, README "Console"). */
  console: { enabled: boolean };
  /** OpenTelemetry (issue 15): `setup` is a module loaded first in the main thread and in every worker thread. */
  telemetry: { setup: string | null };
  /** Large events on S3 (README "Large events"); `bucket` null = off (oversized events are an error). */
  payloads: {
    bucket: string | null;
    prefix: string;
    /** Published size (JSON + attributes) above which an event is offloaded; at most SNS's limit. */
    thresholdBytes: number;
    maxBytes: number;
    retentionDays: number;
    /** An S3 endpoint of its own (an S3-compatible store, a proxy); null = `endpoint`. */
    endpoint: string | null;
  };
  queues: Record<string, QueueOverride>;
  /** SQS settings of what `eventbus provision` creates: `kmsKeyId` null = SQS-managed encryption (SSE-SQS). */
  sqs: { kmsKeyId: string | null };
  /** Tags `eventbus provision` puts on the topics, queues, DLQs and the payloads bucket (AWS tag rules). */
  tags: Record<string, string>;
  /** Set in a cluster child: its index and the number of children; caps are this child's share. */
  child: { index: number; count: number } | null;
  /** The host-wide global cap (= concurrency outside a cluster child): the default per-queue cap before splitting. */
  hostConcurrency: number;
}

const OVERRIDE_KEYS: Record<keyof QueueOverride, { min: number; max: number }> = {
  concurrency: { min: 1, max: 100_000 },
  prefetch: { min: 0, max: 100_000 },
  visibilityTimeout: { min: 1, max: 43_200 }, // SQS allows 0, but a handler needs time to run
  timeoutMs: { min: 1, max: 43_200_000 },
  maxReceiveCount: { min: 1, max: 1000 }, // SQS RedrivePolicy range
  groupConcurrency: { min: 1, max: 100_000 },
};

function positiveInt(name: string, min = 1) {
  return {
    name,
    validate(v: unknown) {
      if (!Number.isInteger(v) || (v as number) < min) throw new Error(`must be an integer >= ${min}`);
    },
    coerce: (v: unknown) => (typeof v === 'string' && v.trim() !== '' ? Number(v) : v),
  };
}

convict.addFormat(positiveInt('positive-int'));
convict.addFormat(positiveInt('non-negative-int', 0));
convict.addFormat({
  name: 'optional-positive-int',
  validate(v: unknown) {
    if (v !== null && (!Number.isInteger(v) || (v as number) < 1)) throw new Error('must be an integer >= 1');
  },
  coerce: (v: unknown) => (typeof v === 'string' && v.trim() !== '' ? Number(v) : v),
});
convict.addFormat({
  name: 'optional-string',
  validate(v: unknown) {
    if (v !== null && typeof v !== 'string') throw new Error('must be a string');
  },
});
convict.addFormat({
  name: 'optional-secret',
  validate(v: unknown) {
    if (v === null) return;
    if (typeof v !== 'string') throw new Error('must be a string');
    // An empty EVENTBUS_API_TOKEN= would otherwise count as set (and match an empty bearer).
    if (v.trim() === '') throw new Error('must not be empty or whitespace (unset it instead)');
  },
});
convict.addFormat({
  name: 'kms-key-id',
  validate(v: unknown) {
    if (v === null) return;
    if (typeof v !== 'string' || v.trim() === '') throw new Error('must be a KMS key id, key ARN, alias name (alias/...) or alias ARN');
    // SNS cannot deliver to a queue encrypted with the AWS managed key: its key policy cannot be
    // changed to let sns.amazonaws.com use it (AWS SNS Developer Guide, "Encrypting messages ... SSE").
    if (/(^|:)alias\/aws\/sqs$/.test(v)) throw new Error('the AWS managed key alias/aws/sqs cannot be used: SNS cannot send to a queue encrypted with it; use a customer managed key whose policy allows sns.amazonaws.com, or unset it for SQS-managed encryption');
    if (!/^(arn:[a-z-]+:kms:[a-z0-9-]+:\d{12}:(key|alias)\/[A-Za-z0-9/_+=.@-]+|alias\/[A-Za-z0-9/_-]+|[A-Za-z0-9-]{1,2048})$/.test(v)) {
      throw new Error('must be a KMS key id, key ARN, alias name (alias/...) or alias ARN');
    }
  },
});
convict.addFormat({
  name: 'csv',
  validate(v: unknown) {
    if (!Array.isArray(v) || v.some((s) => typeof s !== 'string')) throw new Error('must be a list of strings');
  },
  // Commas or newlines: a secrets file may hold one per line.
  coerce: (v: unknown) => (typeof v === 'string' ? splitList(v) : v),
});
convict.addFormat({
  name: 'archive-url',
  // The value is never quoted back (the key is sensitive): it may hold a password.
  validate(v: unknown) {
    if (v === null) return;
    if (typeof v !== 'string' || v.trim() === '') throw new Error('must be a non-empty string');
    const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(v)?.[1]?.toLowerCase();
    if (scheme !== undefined && !['postgres', 'postgresql', 'socket', 'file', 'sqlite'].includes(scheme)) {
      throw new Error(`the scheme ${scheme}:// is not a store (postgres://, postgresql://, socket://, file: or a file path)`);
    }
    if (scheme === undefined && /\b(host|user|password|dbname)\s*=/i.test(v)) {
      throw new Error('looks like a key=value connection string, which pg reads as a database name: use a postgres:// URL');
    }
  },
});
// convict merges nested objects only under format Object, so these two keys are validated here.
const objectFormats: Record<string, (v: unknown) => void> = {
  tags(v: unknown) {
    checkTags(v);
  },
  queues(v: unknown) {
    if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('must be an object of queue names');
    for (const [queue, o] of Object.entries(v)) {
      if (typeof o !== 'object' || o === null) throw new Error(`queues.${queue} must be an object`);
      for (const [k, val] of Object.entries(o)) {
        const bounds = OVERRIDE_KEYS[k as keyof QueueOverride];
        if (!bounds) {
          throw new Error(`queues.${queue}.${k} is not a known key (allowed: ${Object.keys(OVERRIDE_KEYS).join(', ')})`);
        }
        if (!Number.isInteger(val) || (val as number) < bounds.min || (val as number) > bounds.max) {
          throw new Error(`queues.${queue}.${k} must be an integer from ${bounds.min} to ${bounds.max}`);
        }
      }
    }
  },
};

/** The env var holding a generic source's secrets (comma-separated); `_FILE` appended: a file of them. */
export function sourceSecretsEnv(name: string): string {
  return `EVENTBUS_WEBHOOK_${foldSourceName(name)}_SECRETS`;
}

const SOURCE_ENV_RE = /^EVENTBUS_WEBHOOK_(.+)_SECRETS$/;
const HEADER_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const PLACEHOLDER_RE = /\{([^}]*)\}/g;

/**
 * Validates `webhooks.sources` and fills each source's defaults; secrets from
 * EVENTBUS_WEBHOOK_<SOURCE>_SECRETS (already read from `_FILE` by readSecretFiles) replace the file's.
 * Two names that fold to one event type or env var, or to Stripe's, fail: one would shadow the other.
 */
function normaliseSources(v: unknown, env: NodeJS.ProcessEnv): Record<string, WebhookSource> {
  const at = 'webhooks.sources';
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error(`${at} must be an object of sources`);
  const byFold = new Map<string, string>([['STRIPE', 'the built-in stripe route']]);
  const out: Record<string, WebhookSource> = {};
  for (const [name, o] of Object.entries(v as Record<string, unknown>)) {
    const key = `${at}.${name}`;
    if (!WEBHOOK_SOURCE_RE.test(name)) throw new Error(`${key}: a source name is 1-64 letters, digits, - or _, starting with a letter or digit`);
    const fold = foldSourceName(name);
    const other = byFold.get(fold);
    if (other !== undefined) {
      throw new Error(`${key}: the name folds to ${fold}_INCOMING_WEBHOOK and ${sourceSecretsEnv(name)}, as ${other.startsWith('the ') ? other : `${at}.${other}`} does: rename one`);
    }
    byFold.set(fold, name);
    if (typeof o !== 'object' || o === null || Array.isArray(o)) throw new Error(`${key} must be an object`);
    const s = o as Record<string, unknown>;
    for (const k of Object.keys(s)) if (!(SOURCE_KEYS as readonly string[]).includes(k)) throw new Error(`${key}.${k} is not a known key (allowed: ${SOURCE_KEYS.join(', ')})`);
    const header = (k: string, required: boolean): string | null => {
      const h = s[k];
      if (h === undefined && !required) return null;
      if (typeof h !== 'string' || !HEADER_RE.test(h)) throw new Error(`${key}.${k} must be an HTTP header name`);
      return h.toLowerCase();
    };
    const envName = sourceSecretsEnv(name);
    let secrets: string[];
    if (env[envName] !== undefined) secrets = splitList(env[envName]);
    else {
      if (s.secret !== undefined && (typeof s.secret !== 'string' || s.secret.trim() === '')) throw new Error(`${key}.secret must be a non-empty string`);
      if (s.secrets !== undefined && (!Array.isArray(s.secrets) || s.secrets.some((x) => typeof x !== 'string' || x.trim() === ''))) {
        throw new Error(`${key}.secrets must be a list of non-empty strings`);
      }
      secrets = [...(typeof s.secret === 'string' ? [s.secret] : []), ...((s.secrets as string[] | undefined) ?? [])];
    }
    if (secrets.length === 0) throw new Error(`${key} has no secret: set ${key}.secret or .secrets, ${envName} or ${envName}_FILE`);
    const timestampHeader = header('timestampHeader', false);
    const deliveryIdHeader = header('deliveryIdHeader', false);
    if (s.toleranceSec !== undefined && (timestampHeader === null || !Number.isInteger(s.toleranceSec) || (s.toleranceSec as number) < 1)) {
      throw new Error(`${key}.toleranceSec must be an integer >= 1, and needs ${key}.timestampHeader`);
    }
    const signedPayload = s.signedPayload ?? (timestampHeader ? '{timestamp}.{body}' : '{body}');
    if (typeof signedPayload !== 'string') throw new Error(`${key}.signedPayload must be a string`);
    const used = new Set([...signedPayload.matchAll(PLACEHOLDER_RE)].map((m) => m[1]));
    const allowed = new Set(['body', ...(timestampHeader ? ['timestamp'] : []), ...(deliveryIdHeader ? ['id'] : [])]);
    for (const p of used) if (!allowed.has(p!)) throw new Error(`${key}.signedPayload: {${p}} is not available (allowed: ${[...allowed].map((a) => `{${a}}`).join(', ')})`);
    if (!used.has('body')) throw new Error(`${key}.signedPayload must contain {body}`);
    // An unsigned timestamp protects nothing: whoever replays a request can set it anew.
    if (timestampHeader && !used.has('timestamp')) throw new Error(`${key}.signedPayload must contain {timestamp} when ${key}.timestampHeader is set`);
    out[name] = {
      secrets,
      header: header('header', true)!,
      timestampHeader,
      toleranceSec: (s.toleranceSec as number | undefined) ?? DEFAULT_TOLERANCE_SEC,
      deliveryIdHeader,
      signedPayload,
    };
  }
  for (const name of Object.keys(env)) {
    const m = SOURCE_ENV_RE.exec(name);
    if (m && !byFold.has(m[1]!)) throw new Error(`${name} names no source in ${at} (set the source's header there)`);
  }
  return out;
}

function splitList(v: string | undefined): string[] {
  return (v ?? '')
    .split(/[,\n]/)
    .map((s) => s.trim())
    .filter(Boolean);
}

/** The env vars of secrets (besides EVENTBUS_WEBHOOK_<SOURCE>_SECRETS), with the key each sets. */
const SECRET_ENV: Record<string, string> = {
  EVENTBUS_API_TOKEN: 'http.apiToken',
  EVENTBUS_STRIPE_WEBHOOK_SECRETS: 'webhooks.stripe.secrets',
  EVENTBUS_ARCHIVE_URL: 'archive.url',
};

/**
 * The env with every `<SECRET VAR>_FILE` replaced by `<SECRET VAR>` = the file's contents, trimmed
 * (the Docker/Kubernetes secrets convention). A file that cannot be read or is empty, or both forms
 * set, is an error naming the key, the variable and the path, never the contents.
 */
export function readSecretFiles(env: NodeJS.ProcessEnv, read: (path: string) => string = (p) => readFileSync(p, 'utf8')): NodeJS.ProcessEnv {
  const out: NodeJS.ProcessEnv = { ...env };
  for (const [fileVar, path] of Object.entries(env)) {
    if (!fileVar.endsWith('_FILE') || path === undefined) continue;
    const name = fileVar.slice(0, -'_FILE'.length);
    const key = SECRET_ENV[name] ?? (SOURCE_ENV_RE.test(name) ? `the webhook source of ${name}` : undefined);
    if (key === undefined) continue;
    if (env[name] !== undefined) throw new Error(`${key}: set ${name} or ${fileVar}, not both`);
    let text: string;
    try {
      text = read(path);
    } catch (err) {
      throw new Error(`${key}: cannot read ${fileVar} ${path} (${(err as { code?: string }).code ?? 'unreadable'})`);
    }
    if (text.trim() === '') throw new Error(`${key}: ${fileVar} ${path} is empty`);
    out[name] = text.trim();
    delete out[fileVar];
  }
  return out;
}

const schema = {
  endpoint: {
    doc: 'SQS/SNS endpoint URL, passed explicitly to both SDK clients (emulators, LocalStack)',
    format: 'optional-string',
    default: null as string | null,
    env: 'AWS_ENDPOINT_URL',
  },
  region: {
    doc: 'AWS region; unset = the SDK default chain (AWS_REGION, profile)',
    format: 'optional-string',
    default: null as string | null,
  },
  topic: { doc: 'SNS topic name or ARN', format: String, default: 'events', env: 'EVENTBUS_TOPIC' },
  fifoTopic: {
    doc: 'SNS FIFO topic (name or ARN, ending in .fifo) of events published with a groupId, which ordered handlers subscribe to; empty = <topic>.fifo',
    format: String,
    default: '',
    env: 'EVENTBUS_FIFO_TOPIC',
  },
  source: { doc: 'CloudEvents source of published events', format: String, default: hostname(), env: 'EVENTBUS_SOURCE' },
  queuePrefix: { doc: 'prefix of every SQS queue name (e.g. prod-)', format: String, default: '', env: 'EVENTBUS_QUEUE_PREFIX' },
  handlersDir: { doc: 'folder of compiled handler modules', format: String, default: 'dist/handlers', env: 'EVENTBUS_HANDLERS_DIR' },
  provision: { doc: 'create/update the topology at start', format: Boolean, default: false, env: 'EVENTBUS_PROVISION' },
  concurrency: { doc: 'global cap on messages in flight on this host', format: 'positive-int', default: 10, env: 'EVENTBUS_CONCURRENCY' },
  prefetch: {
    doc: 'received messages a queue may hold waiting for a free slot (never above its cap; 0 = receive only into free slots)',
    format: 'non-negative-int',
    default: 10,
    env: 'EVENTBUS_PREFETCH',
  },
  threads: { doc: 'worker threads (default: usable cores)', format: 'optional-positive-int', default: null as number | null, env: 'EVENTBUS_THREADS' },
  tasksPerThread: {
    doc: 'concurrent tasks per thread (default: ceil(concurrency / threads))',
    format: 'optional-positive-int',
    default: null as number | null,
    env: 'EVENTBUS_TASKS_PER_THREAD',
  },
  processes: { doc: 'supervised child processes (node:cluster)', format: 'positive-int', default: 1, env: 'EVENTBUS_PROCESSES' },
  threadHeapMb: {
    doc: 'heap limit per worker thread in MiB: a handler that exhausts it ends its thread (crashed), not the process',
    format: 'optional-positive-int',
    default: null as number | null,
    env: 'EVENTBUS_THREAD_HEAP_MB',
  },
  http: {
    host: { doc: 'HTTP listen address', format: String, default: '0.0.0.0', env: 'EVENTBUS_HTTP_HOST' },
    port: { doc: 'HTTP port (0 = any free port)', format: 'port', default: 9464, env: 'EVENTBUS_HTTP_PORT' },
    apiToken: { doc: 'bearer token for /events and /console (required with the archive or the console on a non-loopback http.host)', format: 'optional-secret', default: null as string | null, env: 'EVENTBUS_API_TOKEN', sensitive: true },
  },
  shutdownTimeoutMs: { doc: 'drain deadline after SIGTERM', format: 'positive-int', default: 25_000, env: 'EVENTBUS_SHUTDOWN_TIMEOUT_MS' },
  retry: {
    baseDelaySec: { doc: 'backoff base, doubled per receive', format: 'non-negative-int', default: 2 },
    maxDelaySec: { doc: 'backoff cap (SQS allows 43200)', format: 'non-negative-int', default: 900 },
  },
  readiness: {
    sqsFailureSec: { doc: 'seconds of SQS failures before /readyz turns 503', format: 'positive-int', default: 60 },
  },
  logLevel: {
    doc: 'pino log level',
    format: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
    default: 'info',
    env: 'LOG_LEVEL',
  },
  failureEvents: {
    enabled: { doc: 'publish TASK_WORKER_FAILED on every non-success', format: Boolean, default: true, env: 'EVENTBUS_FAILURE_EVENTS' },
    maxPerSecond: { doc: 'failure events per second per queue; the rest are counted', format: 'positive-int', default: 10 },
  },
  webhooks: {
    stripe: {
      secrets: { doc: 'Stripe signing secrets (comma-separated)', format: 'csv', default: [] as string[], env: 'EVENTBUS_STRIPE_WEBHOOK_SECRETS', sensitive: true },
      toleranceSec: { doc: "largest age of Stripe's signed timestamp", format: 'positive-int', default: DEFAULT_TOLERANCE_SEC },
    },
    sources: { doc: 'HMAC webhook sources', format: Object, default: {} as Record<string, WebhookSource>, sensitive: true },
    deliveryTtlSec: { doc: 'how long a webhook delivery is remembered (replays and redeliveries answered 200 without publishing)', format: 'positive-int', default: 86_400 },
    deliveryCacheSize: { doc: 'delivery records kept in memory per process when the archive is off', format: 'positive-int', default: 100_000 },
  },
  archive: {
    enabled: { doc: 'archive every event', format: Boolean, default: false, env: 'EVENTBUS_ARCHIVE' },
    url: { doc: 'archive store: unset = embedded under ./data; postgres://...', format: 'archive-url', default: null as string | null, env: 'EVENTBUS_ARCHIVE_URL', sensitive: true },
  },
  console: {
    enabled: { doc: 'serve the web console on /console (on under npm start; a non-loopback http.host needs http.apiToken)', format: Boolean, default: false, env: 'EVENTBUS_CONSOLE_ENABLED' },
  },
  telemetry: {
    setup: {
      doc: 'module that registers an OpenTelemetry SDK, loaded first in the main thread and in every worker thread (a path, relative to the working directory)',
      format: 'optional-string',
      default: null as string | null,
      env: 'EVENTBUS_TELEMETRY_SETUP',
    },
  },
  payloads: {
    bucket: { doc: 'S3 bucket for events too large for SNS (unset = such events are an error)', format: 'optional-string', default: null as string | null, env: 'EVENTBUS_PAYLOADS_BUCKET' },
    prefix: { doc: 'key prefix of offloaded payloads', format: String, default: 'eventbus/', env: 'EVENTBUS_PAYLOADS_PREFIX' },
    thresholdBytes: { doc: 'events whose published size is above this are offloaded (default and most: the SNS limit)', format: 'non-negative-int', default: SNS_MAX_BYTES },
    maxBytes: { doc: 'largest event (JSON bytes) that is offloaded; larger is an error before any call', format: 'positive-int', default: 64 * 1024 * 1024 },
    retentionDays: { doc: 'the bucket lifecycle rule expires payloads after this many days', format: 'positive-int', default: 14 },
    endpoint: { doc: 'S3 endpoint of its own (default: endpoint)', format: 'optional-string', default: null as string | null, env: 'EVENTBUS_PAYLOADS_ENDPOINT' },
  },
  queues: { doc: 'per-queue overrides', format: Object, default: {} as Record<string, QueueOverride> },
  sqs: {
    kmsKeyId: {
      doc: 'KMS key (id, ARN or alias) that encrypts the queues and DLQs provision creates; unset = SQS-managed encryption (SSE-SQS)',
      format: 'kms-key-id',
      default: null as string | null,
      env: 'EVENTBUS_SQS_KMS_KEY_ID',
    },
  },
  // Its env var (EVENTBUS_TAGS, `k=v,k2=v2`) is read in loadConfig: convict would not parse it into an object.
  tags: { doc: 'tags put on the topics, queues, DLQs and payloads bucket that provision creates or updates', format: Object, default: {} as Record<string, string> },
};

/** The env var of `tags`: `key=value` pairs separated by commas (AWS tags cannot contain a comma). */
export const TAGS_ENV = 'EVENTBUS_TAGS';
/** AWS tag limits (SQS, SNS and S3 alike): keys 1-128 characters, values at most 256, 50 tags per resource. */
export const TAG_KEY_MAX = 128;
export const TAG_VALUE_MAX = 256;
export const TAGS_MAX = 50;
/** The characters AWS allows in tag keys and values: letters, digits, white space and `_ . : / = + - @`. */
const TAG_CHARS_RE = /^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$/u;

/** Checks `tags` against the AWS tag rules; the error names the tag. */
export function checkTags(v: unknown): void {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('must be an object of tag names to string values');
  const entries = Object.entries(v);
  if (entries.length > TAGS_MAX) throw new Error(`has ${entries.length} tags; AWS allows at most ${TAGS_MAX} per resource`);
  for (const [key, value] of entries) {
    const len = [...key].length;
    if (len < 1 || len > TAG_KEY_MAX) throw new Error(`tag key "${key}" must be 1-${TAG_KEY_MAX} characters`);
    if (/^aws:/i.test(key)) throw new Error(`tag key "${key}": the aws: prefix is reserved for AWS`);
    if (!TAG_CHARS_RE.test(key)) throw new Error(`tag key "${key}" may hold only letters, digits, spaces and _ . : / = + - @`);
    if (typeof value !== 'string') throw new Error(`tag ${key} must have a string value`);
    if ([...value].length > TAG_VALUE_MAX) throw new Error(`tag ${key}: the value must be at most ${TAG_VALUE_MAX} characters`);
    if (!TAG_CHARS_RE.test(value)) throw new Error(`tag ${key}: the value may hold only letters, digits, spaces and _ . : / = + - @`);
  }
}

/** Parses EVENTBUS_TAGS (`team=payments,env=prod`; a value may contain `=`, not `,`). */
export function parseTagsEnv(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of text.split(',')) {
    if (pair.trim() === '') continue;
    const eq = pair.indexOf('=');
    if (eq < 0) throw new Error(`${TAGS_ENV}: "${pair.trim()}" is not key=value (the format is key=value,key2=value2)`);
    const key = pair.slice(0, eq).trim();
    if (Object.hasOwn(out, key)) throw new Error(`${TAGS_ENV}: tag key "${key}" is given twice`);
    out[key] = pair.slice(eq + 1).trim();
  }
  return out;
}

export interface LoadConfigOptions {
  /** A JSON config file; defaults to $EVENTBUS_CONFIG. */
  file?: string | undefined;
  /** Values applied over file and env (used by `eventbus dev` and tests). */
  overrides?: Record<string, unknown>;
  /** Defaults applied under file and env (used by `eventbus dev`). */
  defaults?: Record<string, unknown>;
  env?: NodeJS.ProcessEnv;
  /** In a cluster child: split the host's caps and default threads across the children. */
  child?: { index: number; count: number };
  /** The command-line flag behind `overrides` and `defaults` (e.g. `--dev`), for configOrigins. */
  flag?: string;
}

/** This child's share of a per-host cap split exactly across `count` children. */
export function shareOf(cap: number, child: { index: number; count: number } | null | undefined): number {
  if (!child) return cap;
  return Math.floor(cap / child.count) + (child.index < cap % child.count ? 1 : 0);
}

/**
 * Where a key's value came from (`eventbus config --sources`): its default (`derived`: computed at
 * load, e.g. from the cores), the config file, an env var (named: `<VAR>_FILE` when read from a
 * file), or a command-line flag (`overrides`/`defaults` of loadConfig).
 */
export type ConfigOrigin =
  | { kind: 'default'; derived?: string }
  | { kind: 'file'; file: string }
  | { kind: 'env'; env: string }
  | { kind: 'flag'; flag?: string };

/** The origin of every key of a loaded config, by dotted key; kept beside the frozen config. */
const ORIGINS = new WeakMap<object, Record<string, ConfigOrigin>>();

/** Where each key of a config returned by loadConfig came from (see ConfigOrigin), in schema order. */
export function configOrigins(cfg: Readonly<Config>): Record<string, ConfigOrigin> {
  const o = ORIGINS.get(cfg);
  if (!o) throw new Error('configOrigins: not a config returned by loadConfig');
  return o;
}

type SchemaNode = Record<string, unknown>;
const isLeaf = (n: SchemaNode): boolean => Object.hasOwn(n, 'default');

/** Every key of the schema (dotted), in declaration order; an object-valued key (`queues`) is one key. */
function schemaKeys(node: SchemaNode = schema as unknown as SchemaNode, at = ''): string[] {
  return Object.entries(node).flatMap(([k, v]) => {
    const key = at ? `${at}.${k}` : k;
    return isLeaf(v as SchemaNode) ? [key] : schemaKeys(v as SchemaNode, key);
  });
}

function schemaNode(key: string): SchemaNode | undefined {
  let node: SchemaNode | undefined = schema as unknown as SchemaNode;
  for (const p of key.split('.')) node = node?.[p] as SchemaNode | undefined;
  return node;
}

/** `values` (nested and/or dotted keys) as [dotted schema key, value] pairs, nested objects walked down to the schema's keys. */
function flattenToKeys(values: Record<string, unknown>, at = ''): Array<[string, unknown]> {
  return Object.entries(values).flatMap(([k, v]): Array<[string, unknown]> => {
    const key = at ? `${at}.${k}` : k;
    const node = schemaNode(key);
    if (node && !isLeaf(node) && typeof v === 'object' && v !== null && !Array.isArray(v)) return flattenToKeys(v as Record<string, unknown>, key);
    return [[key, v]];
  });
}

function hasPath(obj: unknown, key: string): boolean {
  let node = obj;
  for (const p of key.split('.')) {
    if (typeof node !== 'object' || node === null || !Object.hasOwn(node, p)) return false;
    node = (node as Record<string, unknown>)[p];
  }
  return true;
}

/** The secret keys and their env vars, for the `[redacted]` check. */
const REDACTABLE: Array<{ key: string; env: string; holds: (v: unknown) => boolean }> = [
  { key: 'http.apiToken', env: 'EVENTBUS_API_TOKEN', holds: (v) => v === REDACTED },
  { key: 'webhooks.stripe.secrets', env: 'EVENTBUS_STRIPE_WEBHOOK_SECRETS', holds: (v) => Array.isArray(v) && v.includes(REDACTED) },
  { key: 'archive.url', env: 'EVENTBUS_ARCHIVE_URL', holds: (v) => typeof v === 'string' && v.includes(REDACTED) },
];

/**
 * Refuses the `[redacted]` placeholder that `eventbus config` prints in place of a secret, naming
 * the key: a printed config loaded back must not run with "[redacted]" as its API token or password.
 */
function refuseRedacted(c: { get(key: never): unknown }, sources: Record<string, WebhookSource>): void {
  const hint = (env: string) => `\`eventbus config\` prints that in place of a secret: put the secret itself there, or set ${env} (or ${env}_FILE)`;
  for (const r of REDACTABLE) {
    if (r.holds(c.get(r.key as never))) throw new Error(`${r.key} holds "${REDACTED}": ${hint(r.env)}`);
  }
  for (const [name, s] of Object.entries(sources)) {
    if (s.secrets.includes(REDACTED)) throw new Error(`webhooks.sources.${name}.secrets holds "${REDACTED}": ${hint(sourceSecretsEnv(name))}`);
  }
}

/** Loads file + env, validates strictly (unknown keys fail), fills computed defaults, freezes. */
export function loadConfig(options: LoadConfigOptions = {}): Readonly<Config> {
  const rawEnv = options.env ?? process.env;
  let env: NodeJS.ProcessEnv;
  try {
    env = readSecretFiles(rawEnv);
  } catch (err) {
    throw new EventBusError('ERR_CONFIG_INVALID', `invalid config: ${oneLine(err)}`, { cause: err });
  }
  const c = convict(schema, { env: env as Record<string, string> });
  let sources: Record<string, WebhookSource>;
  const file = options.file ?? env.EVENTBUS_CONFIG;
  const overrides = flattenToKeys(options.overrides ?? {});
  const defaultsSet = new Set<string>();
  try {
    if (options.defaults) {
      for (const [k, v] of Object.entries(options.defaults)) {
        if (setByEnv(k, env)) continue;
        c.set(k as never, v as never);
        defaultsSet.add(k);
      }
    }
    if (file) {
      try {
        c.loadFile(file);
      } catch (err) {
        throw new Error(`config file ${file}: ${(err as Error).message}`);
      }
    }
    if (env[TAGS_ENV] !== undefined) c.set('tags' as never, parseTagsEnv(env[TAGS_ENV]) as never);
    // Key by key with set(): load() would apply the env vars again over them (convict's env wins over
    // loaded objects), and overrides are what the command line or the caller insists on.
    for (const [k, v] of overrides) c.set(k as never, v as never);
    c.validate({ allowed: 'strict' });
    for (const [key, check] of Object.entries(objectFormats)) {
      try {
        check(c.get(key as never));
      } catch (err) {
        throw new Error(`${key}: ${(err as Error).message}`);
      }
    }
    sources = normaliseSources(c.get('webhooks.sources' as never), env);
    refuseRedacted(c, sources);
  } catch (err) {
    throw new EventBusError('ERR_CONFIG_INVALID', `invalid config: ${oneLine(err)}`, { cause: err });
  }
  const raw = c.getProperties() as unknown as Config & { threads: number | null; tasksPerThread: number | null };
  const child = options.child ?? null;
  const concurrency = shareOf(raw.concurrency, child);
  // `threads` is per process; by default a host's cores are shared by its children.
  const threads = raw.threads ?? Math.max(1, Math.floor(usableCores() / (child?.count ?? 1)));
  const tasksPerThread = raw.tasksPerThread ?? Math.ceil(concurrency / threads);
  const cfg: Config = { ...raw, fifoTopic: raw.fifoTopic || `${raw.topic}.fifo`, webhooks: { ...raw.webhooks, sources }, concurrency, hostConcurrency: raw.concurrency, threads, tasksPerThread, child };
  crossCheck(cfg);
  const frozen = deepFreeze(cfg);
  ORIGINS.set(frozen, originsOf({ file, rawEnv, env, overrides: new Set(overrides.map(([k]) => k)), defaultsSet, raw, sources, flag: options.flag }));
  return frozen;
}

function originsOf(o: {
  file: string | undefined;
  rawEnv: NodeJS.ProcessEnv;
  env: NodeJS.ProcessEnv;
  overrides: Set<string>;
  defaultsSet: Set<string>;
  raw: { threads: number | null; tasksPerThread: number | null; fifoTopic: string; source: string };
  sources: Record<string, WebhookSource>;
  flag: string | undefined;
}): Record<string, ConfigOrigin> {
  let fileObj: unknown = {};
  if (o.file) {
    try {
      fileObj = JSON.parse(readFileSync(o.file, 'utf8'));
    } catch {
      // convict read it; a format JSON.parse does not take shows as not from the file
    }
  }
  const envNamed = (name: string): ConfigOrigin => ({ kind: 'env', env: o.rawEnv[`${name}_FILE`] !== undefined ? `${name}_FILE` : name });
  const flag: ConfigOrigin = o.flag ? { kind: 'flag', flag: o.flag } : { kind: 'flag' };
  const derived: Record<string, string | undefined> = {
    threads: o.raw.threads === null ? 'the usable cores' : undefined,
    tasksPerThread: o.raw.tasksPerThread === null ? 'ceil(concurrency / threads)' : undefined,
    fifoTopic: o.raw.fifoTopic === '' ? '<topic>.fifo' : undefined,
    source: 'the host name',
  };
  const out: Record<string, ConfigOrigin> = {};
  for (const key of schemaKeys()) {
    const envName = (schemaNode(key)?.env as string | undefined) ?? (key === 'tags' ? TAGS_ENV : undefined);
    if (o.overrides.has(key)) out[key] = flag;
    else if (envName !== undefined && o.env[envName] !== undefined) out[key] = envNamed(envName);
    else if (o.file && hasPath(fileObj, key)) out[key] = { kind: 'file', file: o.file };
    else if (o.defaultsSet.has(key)) out[key] = flag;
    else out[key] = derived[key] ? { kind: 'default', derived: derived[key] } : { kind: 'default' };
    if (key === 'webhooks.sources') {
      for (const name of Object.keys(o.sources)) {
        const v = sourceSecretsEnv(name);
        if (o.env[v] !== undefined) out[`webhooks.sources.${name}.secrets`] = envNamed(v);
      }
    }
  }
  return out;
}

function setByEnv(key: string, env: NodeJS.ProcessEnv): boolean {
  let node: Record<string, unknown> = schema as unknown as Record<string, unknown>;
  for (const p of key.split('.')) node = (node?.[p] ?? {}) as Record<string, unknown>;
  const envName = node.env as string | undefined;
  return envName !== undefined && env[envName] !== undefined;
}

function crossCheck(cfg: Config): void {
  const problems: string[] = [];
  if (cfg.retry.maxDelaySec < cfg.retry.baseDelaySec) {
    problems.push(`retry.maxDelaySec (${cfg.retry.maxDelaySec}) must be >= retry.baseDelaySec (${cfg.retry.baseDelaySec})`);
  }
  if (cfg.retry.maxDelaySec > 43_200) problems.push('retry.maxDelaySec must be <= 43200 (the SQS visibility limit)');
  if (!cfg.child && cfg.concurrency < cfg.processes) {
    problems.push(`concurrency (${cfg.concurrency}) must be >= processes (${cfg.processes}): the cap is split across processes`);
  }
  if (/\.fifo$/i.test(cfg.topic)) problems.push('topic: must be a standard topic (events published with a groupId also go to fifoTopic, the FIFO one)');
  if (!/\.fifo$/.test(cfg.fifoTopic)) problems.push(`fifoTopic: "${cfg.fifoTopic}" must end in .fifo (an SNS FIFO topic)`);
  // A replay inside the tolerance window must still find the delivery's record.
  const tolerances: Array<[string, number]> = [
    ['webhooks.stripe.toleranceSec', cfg.webhooks.stripe.toleranceSec],
    ...Object.entries(cfg.webhooks.sources)
      .filter(([, s]) => s.timestampHeader !== null)
      .map(([n, s]): [string, number] => [`webhooks.sources.${n}.toleranceSec`, s.toleranceSec]),
  ];
  for (const [key, sec] of tolerances) {
    if (cfg.webhooks.deliveryTtlSec < sec) problems.push(`webhooks.deliveryTtlSec (${cfg.webhooks.deliveryTtlSec}) must be >= ${key} (${sec})`);
  }
  const pl = cfg.payloads;
  if (pl.thresholdBytes > SNS_MAX_BYTES) problems.push(`payloads.thresholdBytes (${pl.thresholdBytes}) must be <= ${SNS_MAX_BYTES} (the SNS limit)`);
  if (pl.maxBytes < pl.thresholdBytes) problems.push(`payloads.maxBytes (${pl.maxBytes}) must be >= payloads.thresholdBytes (${pl.thresholdBytes})`);
  if (pl.bucket !== null && !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(pl.bucket)) problems.push(`payloads.bucket "${pl.bucket}" is not an S3 bucket name (3-63 of a-z 0-9 . -)`);
  if (!/^[A-Za-z0-9!_.*'()/-]{0,900}$/.test(pl.prefix)) problems.push('payloads.prefix must be at most 900 of A-Z a-z 0-9 ! _ . * \' ( ) / -');
  if (problems.length) throw new EventBusError('ERR_CONFIG_INVALID', `invalid config: ${problems.join('; ')}`);
}

function oneLine(err: unknown): string {
  const msg = err instanceof Error ? err.message : String(err);
  return msg
    .split('\n')
    .map((s) => s.trim())
    .filter(Boolean)
    .join('; ');
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

/**
 * The effective config as a config file (`eventbus config`): every key the loader takes and nothing
 * else (not `child` nor `hostConcurrency`, which loading computes; `concurrency` is the host's),
 * webhook sources in the file's form, and each secret replaced by `[redacted]`, which loadConfig
 * refuses with the key's name, so a printed config loaded back never runs with a placeholder secret.
 * Derived defaults (threads, tasksPerThread, fifoTopic, source) are printed as computed here.
 */
export function redactConfig(cfg: Config): Record<string, unknown> {
  const { child: _child, hostConcurrency, ...rest } = JSON.parse(JSON.stringify(cfg)) as Config;
  const copy = { ...rest, concurrency: hostConcurrency } as Record<string, any>;
  if (copy.http?.apiToken) copy.http.apiToken = REDACTED;
  if (copy.webhooks?.stripe?.secrets?.length) copy.webhooks.stripe.secrets = copy.webhooks.stripe.secrets.map(() => REDACTED);
  copy.webhooks.sources = Object.fromEntries(
    Object.entries(cfg.webhooks.sources).map(([name, s]) => [
      name,
      {
        secrets: s.secrets.map(() => REDACTED),
        header: s.header,
        ...(s.timestampHeader !== null ? { timestampHeader: s.timestampHeader, toleranceSec: s.toleranceSec } : {}),
        ...(s.deliveryIdHeader !== null ? { deliveryIdHeader: s.deliveryIdHeader } : {}),
        signedPayload: s.signedPayload,
      },
    ]),
  );
  if (copy.archive?.url) copy.archive.url = redactDsn(String(copy.archive.url));
  // In the schema's order, as a hand-written file would be.
  const ordered: Record<string, unknown> = {};
  for (const k of Object.keys(schema)) if (k in copy) ordered[k] = copy[k];
  return ordered;
}
