// The S3 calls of the claim check. Loaded only when a payload is offloaded or a pointer arrives
// (index.ts imports it lazily): the S3 SDK costs a thread ~100 ms to load, and most never need it.
import { GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { CALL_TIMEOUT_MS, DEV_REGION, type AwsSettings } from '../aws.js';
import { toAwsError } from '../errors.js';

/**
 * An S3 client for payloads. With an endpoint (an emulator, MinIO, or the S3-only
 * `payloads.endpoint`) requests are path-style (`<endpoint>/<bucket>/<key>`): such endpoints have no
 * DNS for `<bucket>.<host>`. On AWS (no endpoint) the SDK's virtual-hosted style.
 */
export function createS3Client(s: AwsSettings): S3Client {
  const s3 = new S3Client({
    ...(s.endpoint ? { endpoint: s.endpoint, forcePathStyle: true } : {}),
    ...(s.region ? { region: s.region } : s.endpoint ? { region: DEV_REGION } : {}),
    ...(s.credentials ? { credentials: s.credentials } : {}),
    maxAttempts: 3,
    requestHandler: {
      // Between bytes, not for the whole transfer: a 64 MiB payload may take longer than this.
      requestTimeout: CALL_TIMEOUT_MS,
      throwOnRequestTimeout: true,
      connectionTimeout: 5_000,
      httpAgent: { keepAlive: true, maxSockets: s.maxSockets ?? 64 },
      httpsAgent: { keepAlive: true, maxSockets: s.maxSockets ?? 64 },
    },
  });
  s3.middlewareStack.remove('loggerMiddleware');
  return s3;
}

/** Stores a payload (overwrites: the key derives from the event id, so a retried publish writes the same object). */
export async function putPayload(s3: S3Client, bucket: string, key: string, body: string): Promise<void> {
  try {
    await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body, ContentType: 'application/json' }));
  } catch (err) {
    throw toAwsError('PutObject', `s3://${bucket}/${key}`, err);
  }
}

/** Reads a payload as UTF-8 text. */
export async function getPayload(s3: S3Client, bucket: string, key: string): Promise<string> {
  try {
    const out = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    if (!out.Body) throw new Error('no body in the response');
    return await out.Body.transformToString('utf8');
  } catch (err) {
    throw toAwsError('GetObject', `s3://${bucket}/${key}`, err);
  }
}
