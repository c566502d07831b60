// The S3 calls of the claim check. Loaded only when a payload is offloaded or a pointer arrives
// (index.ts imports it lazily): the S3 SDK costs a thread ~100 ms to load, and most never need it.
import { GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { toAwsError } from '../errors.js';
export { createS3Client } from './client.js';

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
