// The S3 client of payloads, alone in its file: provisioning (the bucket) and the payload calls
// (s3.ts) share it, and test/unit/iam.test.ts tells their S3 actions apart by file.
import { S3Client } from '@aws-sdk/client-s3';
import { clientConfig, type AwsSettings } from '../aws.js';

/**
 * An S3 client for payloads. With an endpoint (an emulator, MinIO, or the S3-only
 * `payloads.endpoint`) requests are path-style (`<endpoint>/<bucket>/<key>`): such endpoints have no
 * DNS for `<bucket>.<host>`. On AWS (no endpoint) the SDK's virtual-hosted style.
 */
export function createS3Client(s: AwsSettings): S3Client {
  // requestTimeout is between bytes, not for the whole transfer: a 64 MiB payload may take longer.
  const s3 = new S3Client({ ...clientConfig(s, 64), ...(s.endpoint ? { forcePathStyle: true } : {}) });
  s3.middlewareStack.remove('loggerMiddleware');
  return s3;
}

