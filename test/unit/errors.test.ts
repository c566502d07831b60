import t from 'tap';
import { ErrorCodes, EventBusError, isRetryableAwsError } from '../../dist/errors.js';

t.test('every error code equals its key', async (t) => {
  for (const [k, v] of Object.entries(ErrorCodes)) t.equal(v, k);
  const e = new EventBusError('ERR_QUEUE_NOT_FOUND', 'x');
  t.equal(e.code, 'ERR_QUEUE_NOT_FOUND');
  t.equal(e.name, 'EventBusError');
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
