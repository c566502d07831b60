/** Stable error codes. A code is never reused for another meaning. */
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
  ERR_PUBLISH_FAILED: 'ERR_PUBLISH_FAILED',
  ERR_FILTER_POLICY_LIMIT: 'ERR_FILTER_POLICY_LIMIT',
  ERR_AWS: 'ERR_AWS',
  ERR_CAPACITY: 'ERR_CAPACITY',
  ERR_USAGE: 'ERR_USAGE',
  ERR_ARCHIVE: 'ERR_ARCHIVE',
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

/** The one error class of eventbus: callers branch on `code`, never on the message. */
export class EventBusError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'EventBusError';
    this.code = code;
  }
}

interface AwsLikeError {
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

// Every throttling code the SDK's own retry strategy knows (@smithy THROTTLING_ERROR_CODES): SNS on the
// Query protocol answers RequestLimitExceeded, which was missing and left the topic unresolved at start.
const RETRYABLE_NAMES = new Set([
  'ThrottlingException',
  'Throttling',
  'ThrottledException',
  'RequestThrottled',
  'RequestThrottledException',
  'RequestLimitExceeded',
  'TooManyRequestsException',
  'SlowDown',
  'BandwidthLimitExceeded',
  'PriorRequestNotComplete',
  'ProvisionedThroughputExceededException',
  'TransactionInProgressException',
  'EC2ThrottledException',
  'ServiceUnavailable',
  'InternalError',
  'InternalFailure',
  'KmsThrottled',
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
]);
const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_SOCKET']);

/** One place that says whether an SQS/SNS failure may pass if the call is made again later. */
export function isRetryableAwsError(err: unknown): boolean {
  const e = (err ?? {}) as AwsLikeError & { code?: string; cause?: unknown };
  if (e.$retryable) return true;
  const status = e.$metadata?.httpStatusCode;
  if (status !== undefined && (status >= 500 || status === 429)) return true;
  const name = awsErrorName(err);
  if (RETRYABLE_NAMES.has(name) || RETRYABLE_NAMES.has(e.name ?? '')) return true;
  if (e.code && NETWORK_CODES.has(e.code)) return true;
  if (e.cause && e.cause !== err) return isRetryableAwsError(e.cause);
  // No HTTP answer at all (socket hang up and the like) is a network failure.
  return status === undefined && !isAbort(err) && e.name !== 'EventBusError';
}
