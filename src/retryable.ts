// Whether an SQS/SNS failure may pass if the call is made again: its own module, so that `eventbus`
// (imported by every handler module, in every worker thread) does not load the SDK's retry code.
import { isServerError, isThrottlingError, isTransientError } from '@smithy/core/retry';
import { awsErrorName, isAbort, type AwsLikeError } from './errors.js';

// Connection failures by errno code, on the error or anywhere in its cause chain. The SDK knows most
// of them too (NODEJS_TIMEOUT_ERROR_CODES, NODEJS_NETWORK_ERROR_CODES); the list is ours so that a
// connection that fails is retried whatever a future SDK version says.
const NETWORK_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNABORTED', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_SOCKET']);
// Throttling the SDK's list (THROTTLING_ERROR_CODES) leaves out: KMS throttling the queue's or the
// topic's server-side encryption, 400 without a retryable trait in the SQS and SNS models.
const KMS_THROTTLING_NAMES = new Set(['KmsThrottled', 'KMSThrottlingException']);
// The SDK's credential providers fail with these when no source answered (IMDS timing out, an IRSA
// token not mounted yet): as before, waited out with /readyz 503, not a crash loop.
const CREDENTIAL_NAMES = new Set(['CredentialsProviderError', 'ProviderError']);
/** How deep a cause chain is followed (the SDK's isTransientError stops at 10 too). */
const MAX_CAUSE_DEPTH = 10;

type SdkErrorLike = Parameters<typeof isTransientError>[0];

/**
 * The SDK's own classification, the one its retry middleware uses: throttling (by name, 429 or the
 * `$retryable` trait), transient (TimeoutError, a socket reset or timeout, 500/502/503/504, a
 * corrected clock skew) or another 5xx. Not its deprecated isClockSkewError: that name list includes
 * SignatureDoesNotMatch and AccessDeniedException, so a wrong secret key would be retried for ever.
 */
function sdkRetryable(e: AwsLikeError): boolean {
  try {
    return isThrottlingError(e as SdkErrorLike) || isTransientError(e as SdkErrorLike) || isServerError(e as SdkErrorLike);
  } catch {
    return false; // not shaped like an SDK error (e.g. a message that is not a string): not the SDK's to retry
  }
}

/**
 * One place that says whether an SQS/SNS failure may pass if the call is made again later: what the
 * SDK classifies as retryable (also under fauxqs' long names), KMS throttling, a connection failure
 * (errno code, a failed system call, a cut stream) or the credential chain not answering yet, on the
 * error or in its cause chain. Anything else is not, however it
 * failed: a TypeError from config wiring at start is a bug to report, not an outage to wait out. An
 * abort we asked for is not.
 */
export function isRetryableAwsError(err: unknown): boolean {
  let e: unknown = err;
  for (let depth = 0; depth <= MAX_CAUSE_DEPTH && typeof e === 'object' && e !== null; depth++) {
    const x = e as AwsLikeError & { cause?: unknown };
    if (isAbort(x)) return false;
    if (sdkRetryable(x)) return true;
    const short = awsErrorName(x);
    if (short !== x.name && sdkRetryable({ name: short, message: x.message ?? '', $metadata: x.$metadata ?? {}, $retryable: x.$retryable })) return true;
    if (KMS_THROTTLING_NAMES.has(short)) return true;
    if (typeof x.code === 'string' && (NETWORK_CODES.has(x.code) || x.code.startsWith('HPE_') || x.code === 'ERR_STREAM_PREMATURE_CLOSE')) return true;
    // Any failed system call (libuv: EADDRNOTAVAIL when ephemeral ports run out, EMFILE, ENETDOWN, ...).
    if (typeof (x as { syscall?: unknown }).syscall === 'string') return true;
    if (CREDENTIAL_NAMES.has(x.name ?? '')) return true;
    if (x.cause === e) return false;
    e = x.cause;
  }
  return false;
}
