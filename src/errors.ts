/** Stable error codes. A code is never reused for another meaning: a retired one goes to RETIRED_CODES. */
export const ErrorCodes = {
  ERR_CONFIG_INVALID: 'ERR_CONFIG_INVALID',
  ERR_HANDLER_INVALID: 'ERR_HANDLER_INVALID',
  ERR_HANDLER_DUPLICATE_QUEUE: 'ERR_HANDLER_DUPLICATE_QUEUE',
  ERR_HANDLERS_DIR: 'ERR_HANDLERS_DIR',
  ERR_FIFO_UNSUPPORTED: 'ERR_FIFO_UNSUPPORTED',
  ERR_QUEUE_NOT_FOUND: 'ERR_QUEUE_NOT_FOUND',
  ERR_TOPIC_NOT_FOUND: 'ERR_TOPIC_NOT_FOUND',
  ERR_EVENT_TOO_LARGE: 'ERR_EVENT_TOO_LARGE',
  ERR_EVENT_INVALID: 'ERR_EVENT_INVALID',
  ERR_FILTER_POLICY_LIMIT: 'ERR_FILTER_POLICY_LIMIT',
  ERR_AWS: 'ERR_AWS',
  ERR_USAGE: 'ERR_USAGE',
  ERR_ARCHIVE: 'ERR_ARCHIVE',
  /** `eventbus dev` without its dev dependency fauxqs (`npm ci --omit=dev`). */
  ERR_EMULATOR_MISSING: 'ERR_EMULATOR_MISSING',
  /** A replay or redrive of the same target is already running (its lock is held). */
  ERR_LOCKED: 'ERR_LOCKED',
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

/** Codes that were removed (never thrown); none may be used again, for any meaning. */
export const RETIRED_CODES: readonly string[] = ['ERR_CAPACITY', 'ERR_PUBLISH_FAILED'];

/** The one error class of eventbus: callers branch on `code`, never on the message. */
export class EventBusError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EventBusError';
    this.code = code;
  }
}

export interface AwsLikeError {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
  $retryable?: unknown;
}

/** Wraps an SDK failure with the operation and queue it belongs to. */
export function toAwsError(operation: string, target: string, err: unknown): EventBusError {
  const e = (err ?? {}) as AwsLikeError;
  const name = e.name ?? 'Error';
  return new EventBusError('ERR_AWS', `${operation} ${target} failed: ${name}: ${e.message ?? String(err)}`, {
    cause: err,
  });
}

/** The error name the SDK reports, with fauxqs' long `AWS.SimpleQueueService.X` names shortened to X. */
export function awsErrorName(err: unknown): string {
  const e = (err ?? {}) as AwsLikeError;
  const raw = e.name ?? e.code ?? '';
  const dot = raw.lastIndexOf('.');
  return dot >= 0 ? raw.slice(dot + 1) : raw;
}

const NOT_FOUND = new Set([
  'QueueDoesNotExist',
  'NonExistentQueue',
  'AWS.SimpleQueueService.NonExistentQueue',
  'NotFound',
  'NotFoundException',
]);

/** True when the SDK error says the queue or topic does not exist. */
export function isNotFound(err: unknown): boolean {
  const e = (err ?? {}) as AwsLikeError;
  return NOT_FOUND.has(e.name ?? '') || NOT_FOUND.has(awsErrorName(err));
}

/** True for an abort we asked for (shutdown), which is not an SQS failure. */
export function isAbort(err: unknown): boolean {
  const e = (err ?? {}) as AwsLikeError;
  return e.name === 'AbortError';
}

/** Describes an unknown thrown value for a log line or a failure event. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  try {
    return typeof err === 'string' ? err : JSON.stringify(err) ?? String(err);
  } catch {
    return String(err);
  }
}

// Marks a NonRetryableError across copies of this package (a handler's `eventbus` may be another
// install than the supervisor's, so `instanceof` alone could miss it).
const NON_RETRYABLE = Symbol.for('eventbus.NonRetryableError');

/**
 * Thrown by a handler for a message that can never succeed (SPEC "Dead-lettered at once"): its result
 * is `rejected`, and the message goes to its queue's DLQ now instead of after `maxReceiveCount`.
 */
export class NonRetryableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'NonRetryableError';
    Object.defineProperty(this, NON_RETRYABLE, { value: true });
  }
}

/** Whether a thrown value is a NonRetryableError (of any copy of eventbus). */
export function isNonRetryable(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as Record<symbol, unknown>)[NON_RETRYABLE] === true;
}

/**
 * A thrown value as plain data, to cross the thread boundary and to be logged: an Error's name,
 * message, stack, string `code` and `cause` chain; any other value described (a thrown string or object).
 */
export interface ErrorInfo {
  name: string;
  message: string;
  stack?: string;
  code?: string;
  cause?: ErrorInfo;
}

/** How deep a `cause` chain is carried (a cycle stops there too). */
const MAX_ERROR_CAUSES = 8;
/** Bounds on what crosses the thread per error (a handler's message may be a whole document). */
const MAX_MESSAGE_CHARS = 4_096;
const MAX_STACK_CHARS = 16_384;

/** Plain data of a thrown value (never throws; getters that throw are described, not rethrown). */
export function toErrorInfo(err: unknown, depth = 0): ErrorInfo {
  try {
    if (!(err instanceof Error) && !(typeof err === 'object' && err !== null && typeof (err as Error).message === 'string' && typeof (err as Error).stack === 'string')) {
      if (err === undefined || err === null) return { name: 'NonError', message: `${String(err)} was thrown` };
      const what = Array.isArray(err) ? 'an array' : typeof err === 'object' ? 'an object' : `a ${typeof err}`;
      return { name: 'NonError', message: `${what} was thrown: ${clip(describeError(err), MAX_MESSAGE_CHARS)}` };
    }
    const e = err as Error & { code?: unknown };
    const out: ErrorInfo = { name: String(e.name || 'Error'), message: clip(String(e.message), MAX_MESSAGE_CHARS) };
    if (typeof e.stack === 'string') out.stack = clip(e.stack, MAX_STACK_CHARS);
    if (typeof e.code === 'string' || typeof e.code === 'number') out.code = String(e.code);
    if (e.cause !== undefined && e.cause !== err && depth < MAX_ERROR_CAUSES) out.cause = toErrorInfo(e.cause, depth + 1);
    return out;
  } catch (inner) {
    return { name: 'NonError', message: `an error that cannot be described was thrown (${String(inner)})` };
  }
}

/** `name: message`, the short form in failure events and the `error` field. */
export function errorSummary(info: ErrorInfo): string {
  return info.name === 'NonError' ? info.message : `${info.name}: ${info.message}`;
}

const revivedClasses = new Map<string, new (message: string) => Error>();

/**
 * An Error made from ErrorInfo, for pino's `err` serializer: its `type` is the original class name
 * (TypeError, not Error), and its message and stack carry the `cause` chain.
 */
export function reviveError(info: ErrorInfo): Error {
  let Cls = revivedClasses.get(info.name);
  if (!Cls) {
    // A class named after the original (names are the handlers' own, few; bounded all the same).
    Cls = { [info.name]: class extends Error {} }[info.name]!;
    if (revivedClasses.size < 200) revivedClasses.set(info.name, Cls);
  }
  const e = new Cls(info.message);
  e.name = info.name;
  e.stack = info.stack ?? `${info.name}: ${info.message}`;
  if (info.code !== undefined) (e as Error & { code?: string }).code = info.code;
  if (info.cause) e.cause = reviveError(info.cause);
  return e;
}

/** The stack for a failure event: the error's and its causes', at most `maxBytes` UTF-8 bytes. */
export function stackForEvent(info: ErrorInfo, maxBytes = 2_048): string | null {
  const parts: string[] = [];
  for (let e: ErrorInfo | undefined = info, first = true; e; e = e.cause, first = false) {
    parts.push(`${first ? '' : 'caused by: '}${e.stack ?? `${e.name}: ${e.message}`}`);
  }
  const all = parts.join('\n');
  if (!info.stack && !info.cause) return null;
  return truncateUtf8(all, maxBytes);
}

function clip(s: string, max: number): string {
  return s.length <= max ? s : `${s.slice(0, max - 1)}…`;
}

/** Cuts a string to at most `maxBytes` UTF-8 bytes without splitting a character. */
export function truncateUtf8(s: string, maxBytes: number): string {
  if (Buffer.byteLength(s) <= maxBytes) return s;
  const buf = Buffer.from(s).subarray(0, maxBytes - 3);
  // A cut inside a multi-byte character decodes to U+FFFD at the end: drop it.
  return `${buf.toString('utf8').replace(/\uFFFD+$/, '')}…`;
}
