import t from 'tap';
import { ErrorCodes, EventBusError, RETIRED_CODES, toAwsError } from '../../dist/errors.js';
import { isRetryableAwsError } from '../../dist/retryable.js';

t.test('every error code equals its key', async (t) => {
  for (const [k, v] of Object.entries(ErrorCodes)) t.equal(v, k);
  const e = new EventBusError('ERR_QUEUE_NOT_FOUND', 'x');
  t.equal(e.code, 'ERR_QUEUE_NOT_FOUND');
  t.equal(e.name, 'EventBusError');
});

t.test('the set of error codes is pinned', async (t) => {
  // Users branch on these codes: adding, dropping or renaming one is a change of this list, on purpose.
  t.same(Object.keys(ErrorCodes).sort(), [
    'ERR_ARCHIVE',
    'ERR_AWS',
    'ERR_CONFIG_INVALID',
    'ERR_EMULATOR_MISSING',
    'ERR_EVENT_INVALID',
    'ERR_EVENT_TOO_LARGE',
    'ERR_FIFO_UNSUPPORTED',
    'ERR_FILTER_POLICY_LIMIT',
    'ERR_HANDLERS_DIR',
    'ERR_HANDLER_DUPLICATE_QUEUE',
    'ERR_HANDLER_INVALID',
    'ERR_LOCKED',
    'ERR_QUEUE_NOT_FOUND',
    'ERR_TOPIC_NOT_FOUND',
    'ERR_USAGE',
  ]);
  // A removed code is never reused, for any meaning: code that still matches it would misread the new one.
  t.same([...RETIRED_CODES].sort(), ['ERR_CAPACITY', 'ERR_PUBLISH_FAILED']);
  for (const code of RETIRED_CODES) t.notOk(Object.hasOwn(ErrorCodes, code), `${code} is retired`);
});

t.test('retryable classification', async (t) => {
  t.ok(isRetryableAwsError({ name: 'ThrottlingException', $metadata: { httpStatusCode: 400 } }), 'throttling');
  t.ok(isRetryableAwsError({ name: 'RequestLimitExceeded', $metadata: { httpStatusCode: 400 } }), 'SNS Query-protocol throttling');
  t.ok(isRetryableAwsError({ name: 'RequestThrottled', $metadata: { httpStatusCode: 403 } }), 'SQS legacy throttling (403)');
  t.ok(isRetryableAwsError({ name: 'InternalError', $metadata: { httpStatusCode: 500 } }), '5xx');
  t.ok(isRetryableAwsError(Object.assign(new Error('socket hang up'), { code: 'ECONNRESET' })), 'reset');
  t.ok(isRetryableAwsError(Object.assign(new Error('x'), { code: 'ECONNREFUSED' })), 'refused');
  t.notOk(isRetryableAwsError({ name: 'QueueDoesNotExist', $metadata: { httpStatusCode: 400 } }), 'missing queue');
  t.notOk(isRetryableAwsError({ name: 'AccessDenied', $metadata: { httpStatusCode: 403 } }), 'access denied');
  t.notOk(isRetryableAwsError(Object.assign(new Error('aborted'), { name: 'AbortError' })), 'our own abort');
});

t.test('only what may pass later is retryable: a bug at start is not', async (t) => {
  // Expected: an error without an HTTP answer is retried only when it is a network failure. Broke:
  // any such error was, so the start loop retried a TypeError from config wiring for ever.
  t.notOk(isRetryableAwsError(new TypeError("Cannot read properties of undefined (reading 'url')")), 'a plain TypeError');
  t.notOk(isRetryableAwsError(Object.assign(new TypeError('Invalid URL'), { code: 'ERR_INVALID_URL' })), 'an endpoint without its scheme (what the SDK throws)');
  t.notOk(isRetryableAwsError(new Error('Region not accepted: region="bad region!" is not a valid hostname component.')), 'a bad region (what the SDK throws)');
  t.notOk(isRetryableAwsError(new EventBusError('ERR_QUEUE_NOT_FOUND', 'queues not found: a')), 'one of ours');
  for (const v of [undefined, null, 'socket hang up', 42]) t.notOk(isRetryableAwsError(v), `thrown ${String(v)}`);
  t.notOk(isRetryableAwsError({ name: 'SignatureDoesNotMatch', $metadata: { httpStatusCode: 403 } }), 'a wrong secret key');
  // Kept retryable on review: outages that reach us without an HTTP answer and outside the SDK's lists.
  t.ok(isRetryableAwsError(Object.assign(new Error('connect EADDRNOTAVAIL 10.0.0.1:443'), { code: 'EADDRNOTAVAIL', syscall: 'connect' })), 'ephemeral ports exhausted (a failed system call)');
  t.ok(isRetryableAwsError(Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' })), 'a stream cut short');
  t.ok(isRetryableAwsError(Object.assign(new Error('Parse Error: Expected HTTP/'), { code: 'HPE_INVALID_CONSTANT' })), 'a middlebox answering garbage');
  t.ok(isRetryableAwsError(Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' })), 'the credential chain (IMDS slow, token not mounted yet)');
  const loop: Error & { cause?: unknown } = new Error('cause of itself');
  loop.cause = loop;
  t.notOk(isRetryableAwsError(loop), 'a cause loop ends');
});

t.test('what the SDK classifies as throttling, transient or server error is retryable', async (t) => {
  // @smithy/core 3.41.0 THROTTLING_ERROR_CODES; LimitExceededException was missing from our old list.
  for (const name of [
    'BandwidthLimitExceeded',
    'EC2ThrottledException',
    'LimitExceededException',
    'PriorRequestNotComplete',
    'ProvisionedThroughputExceededException',
    'RequestLimitExceeded',
    'RequestThrottled',
    'RequestThrottledException',
    'SlowDown',
    'ThrottledException',
    'Throttling',
    'ThrottlingException',
    'TooManyRequestsException',
    'TransactionInProgressException',
  ]) {
    t.ok(isRetryableAwsError({ name, message: 'm', $metadata: { httpStatusCode: 400 } }), name);
  }
  t.ok(isRetryableAwsError({ name: 'AWS.SimpleQueueService.RequestThrottled', $metadata: { httpStatusCode: 403 } }), "fauxqs' long names");
  t.ok(isRetryableAwsError({ name: 'KmsThrottled', $metadata: { httpStatusCode: 400 } }), 'SQS: KMS throttling (not in the SDK list)');
  t.ok(isRetryableAwsError({ name: 'KMSThrottlingException', $metadata: { httpStatusCode: 400 } }), 'SNS: KMS throttling (not in the SDK list)');
  t.ok(isRetryableAwsError({ name: 'Unknown', message: 'Unknown', $metadata: { httpStatusCode: 503 } }), '503 with an unknown name');
  t.ok(isRetryableAwsError({ name: 'SyntaxError', message: 'Unexpected token <', $metadata: { httpStatusCode: 503 } }), "a load balancer's HTML 503 (SQS's JSON parser fails on it)");
  t.ok(isRetryableAwsError({ name: 'Unknown', message: 'Unknown', $metadata: { httpStatusCode: 501 } }), 'any 5xx');
  t.ok(isRetryableAwsError({ name: 'Unknown', message: 'Unknown', $metadata: { httpStatusCode: 429 } }), '429');
  t.ok(isRetryableAwsError({ name: 'SomeModeledError', message: 'm', $retryable: {}, $metadata: { httpStatusCode: 400 } }), 'the $retryable trait');
  t.ok(isRetryableAwsError({ name: 'SignatureDoesNotMatch', message: 'm', $metadata: { httpStatusCode: 403, clockSkewCorrected: true } }), 'a clock skew the SDK corrected');
});

t.test('every way the fault proxy leaves a call without an answer is retryable', async (t) => {
  // What @smithy/node-http-handler 4.x rejects with (test/helpers/fault-proxy.ts modes, and a proxy that is down).
  t.ok(isRetryableAwsError({ name: 'TimeoutError', message: 'timed out' }), 'a TimeoutError without a status');
  t.ok(isRetryableAwsError(Object.assign(new Error('read ECONNRESET'), { name: 'TimeoutError', code: 'ECONNRESET' })), 'reset (RST)');
  t.ok(isRetryableAwsError({ name: 'Error', message: 'socket hang up', code: 'ECONNRESET' }), 'socket hang up (closed unanswered)');
  t.ok(
    isRetryableAwsError(Object.assign(new Error('a request has exceeded the configured 10000 ms requestTimeout.'), { name: 'TimeoutError', code: 'ETIMEDOUT' })),
    'hang / too slow: the request timeout',
  );
  t.ok(isRetryableAwsError(Object.assign(new Error('did not establish a connection'), { name: 'TimeoutError' })), 'connection timeout');
  t.ok(isRetryableAwsError(Object.assign(new Error('getaddrinfo EAI_AGAIN sqs'), { code: 'EAI_AGAIN' })), 'DNS not answering');
  t.ok(isRetryableAwsError(Object.assign(new Error('x'), { code: 'ECONNABORTED' })), 'an errno the SDK does not list');
  t.ok(isRetryableAwsError(toAwsError('GetQueueUrl', 'q', Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }))), 'wrapped: the cause chain');
  t.ok(isRetryableAwsError(new Error('outer', { cause: { name: 'ThrottlingException', $metadata: { httpStatusCode: 400 } } })), 'throttling in the cause chain');
  t.notOk(
    isRetryableAwsError(Object.assign(new Error('Request aborted'), { name: 'AbortError', cause: Object.assign(new Error('t'), { name: 'TimeoutError' }) })),
    'our abort, whatever its cause',
  );
});
