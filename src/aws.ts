import { SQSClient } from '@aws-sdk/client-sqs';
import { SNSClient } from '@aws-sdk/client-sns';

/** What the SDK clients need; plain data so it can cross into worker threads. */
export interface AwsSettings {
  endpoint: string | null;
  region: string | null;
  /** Explicit credentials (the embedded emulator); unset = the SDK's default chain. */
  credentials?: { accessKeyId: string; secretAccessKey: string } | undefined;
  /** A profile of the shared config/credentials files for the default chain (as AWS_PROFILE, for these clients only). */
  profile?: string | undefined;
  /** Sockets per client: long polls hold one each for up to 20 s. */
  maxSockets?: number;
}

export interface AwsClients {
  sqs: SQSClient;
  sns: SNSClient;
}

/**
 * How long one SQS/SNS call may take before it is abandoned as hung (a dead connection, a black-holed
 * route): they answer in milliseconds. A long poll gets its wait on top (the poller passes it per call).
 */
export const CALL_TIMEOUT_MS = 10_000;

/** Credentials the emulator accepts; `eventbus dev` and `--dev` use these, never the ambient chain. */
export const DEV_CREDENTIALS = { accessKeyId: 'eventbus-dev', secretAccessKey: 'eventbus-dev' } as const;
export const DEV_REGION = 'us-east-1';

/** SDK attempts per call (first try included) unless AWS_MAX_ATTEMPTS or AWS_RETRY_MODE is set. */
export const DEFAULT_MAX_ATTEMPTS = 3;

/**
 * The settings every eventbus SDK client shares: endpoint, region (the emulator's when only an
 * endpoint is set), credentials, retries and timeouts. `maxSockets` per client. `env` is only
 * asked whether the operator set the SDK's retry variables (default: process.env).
 */
export function clientConfig(s: AwsSettings, maxSockets: number, env: Readonly<Record<string, string | undefined>> = process.env) {
  // The SDK's own retries stay on for the single calls; our loops add backoff on top. An operator's
  // AWS_MAX_ATTEMPTS / AWS_RETRY_MODE win: an explicit maxAttempts would override what the SDK reads
  // from them (issue 20), so it is passed only when neither is set.
  const sdkRetryEnv = Boolean(env.AWS_MAX_ATTEMPTS?.trim() || env.AWS_RETRY_MODE?.trim());
  return {
    ...(s.endpoint ? { endpoint: s.endpoint } : {}),
    // An endpoint alone (an emulator) gets the emulator's region; with a profile, the profile's region applies.
    ...(s.region ? { region: s.region } : s.endpoint && !s.profile ? { region: DEV_REGION } : {}),
    ...(s.credentials ? { credentials: s.credentials } : {}),
    ...(s.profile && !s.credentials ? { profile: s.profile } : {}),
    ...(sdkRetryEnv ? {} : { maxAttempts: DEFAULT_MAX_ATTEMPTS }),
    requestHandler: {
      requestTimeout: CALL_TIMEOUT_MS,
      // Without it a call past requestTimeout only prints a console warning and waits forever: a hung
      // endpoint would hold every poller and ack, and /readyz would never see a failure.
      throwOnRequestTimeout: true,
      connectionTimeout: 5_000,
      httpAgent: { keepAlive: true, maxSockets: s.maxSockets ?? maxSockets },
      httpsAgent: { keepAlive: true, maxSockets: s.maxSockets ?? maxSockets },
    },
  };
}

/** Builds both clients; the endpoint is passed explicitly because the SQS client otherwise sends to the queue URL's host. */
export function createAwsClients(s: AwsSettings): AwsClients {
  const common = clientConfig(s, 256);
  const sqs = new SQSClient(common);
  const sns = new SNSClient(common);
  // The SDK's logger middleware builds a redacted copy of every input and output (each received
  // message, body and attributes) to pass to a logger that is a no-op unless one is configured,
  // which we never do: ~2 % of the supervisor's main thread, and garbage, for nothing.
  sqs.middlewareStack.remove('loggerMiddleware');
  sns.middlewareStack.remove('loggerMiddleware');
  return { sqs, sns };
}

/** SQS queue names must be 1-80 of [A-Za-z0-9_-]. */
export const QUEUE_NAME_RE = /^[A-Za-z0-9_-]{1,80}$/;
