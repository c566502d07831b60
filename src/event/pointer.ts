// The claim check on the wire: an event too large for SNS is stored in S3 and published as a
// pointer, in the format of AWS's extended clients (amazon-sqs-java-extended-client-lib,
// amazon-sns-java-extended-client-lib, payload-offloading-java-common-lib-for-aws, and the Python
// port), so that their messages and ours are readable by either side:
//
//   body:      ["software.amazon.payloadoffloading.PayloadS3Pointer",{"s3BucketName":"<bucket>","s3Key":"<key>"}]
//              (Jackson's default typing of the PayloadS3Pointer class: a two-element array, class name first)
//   attribute: ExtendedPayloadSize (Number) = the stored payload's length in UTF-8 bytes
//   object:    the original message body, as is (for us: the CloudEvent's JSON)
//
// Older writers (the SQS Java client before 2.0, or with the legacy option) name the class
// `com.amazon.sqs.javamessaging.MessageS3Pointer` and the attribute `SQSLargePayloadSize`: both
// are read. Their readers recognise a pointer by the size attribute and then parse the body; we
// recognise it by the body's shape (one of the two class names, both fields strings), so a
// pointer whose attribute was lost on the way is still resolved, and the attribute only gives the size.

/** The size attribute every current extended client writes (SQSExtendedClientConstants.RESERVED_ATTRIBUTE_NAME). */
export const EXTENDED_PAYLOAD_SIZE_ATTRIBUTE = 'ExtendedPayloadSize';
/** The size attribute of older writers (AmazonSQSExtendedClientUtil.LEGACY_RESERVED_ATTRIBUTE_NAME). */
export const LEGACY_PAYLOAD_SIZE_ATTRIBUTE = 'SQSLargePayloadSize';
/** The class name in the pointer body. */
export const POINTER_CLASS = 'software.amazon.payloadoffloading.PayloadS3Pointer';
export const LEGACY_POINTER_CLASS = 'com.amazon.sqs.javamessaging.MessageS3Pointer';

/** A pointer body is short: a bucket name (<= 63) and a key (<= 1024 bytes) plus ~100 bytes of JSON. */
const MAX_POINTER_BODY_CHARS = 4_096;

export interface PayloadPointer {
  bucket: string;
  key: string;
  /** From the size attribute; null when the message carried none. */
  bytes: number | null;
}

/** The pointer body for an object, exactly as the extended clients write it. */
export function encodePointer(bucket: string, key: string): string {
  return JSON.stringify([POINTER_CLASS, { s3BucketName: bucket, s3Key: key }]);
}

/**
 * The pointer a payload (an SQS body, or an SNS envelope's Message) carries, or null when it is not
 * one. `attributes` are the message's (String and Number values as strings). Never throws.
 */
export function parsePointer(payload: string, attributes: Readonly<Record<string, string>>): PayloadPointer | null {
  if (payload.length > MAX_POINTER_BODY_CHARS || payload.charCodeAt(0) !== 0x5b /* [ */) return null;
  if (!payload.includes(POINTER_CLASS) && !payload.includes(LEGACY_POINTER_CLASS)) return null;
  let v: unknown;
  try {
    v = JSON.parse(payload);
  } catch {
    return null;
  }
  if (!Array.isArray(v) || v.length !== 2 || (v[0] !== POINTER_CLASS && v[0] !== LEGACY_POINTER_CLASS)) return null;
  const o = v[1] as { s3BucketName?: unknown; s3Key?: unknown } | null;
  if (typeof o !== 'object' || o === null || typeof o.s3BucketName !== 'string' || typeof o.s3Key !== 'string') return null;
  if (o.s3BucketName === '' || o.s3Key === '') return null;
  const size = attributes[EXTENDED_PAYLOAD_SIZE_ATTRIBUTE] ?? attributes[LEGACY_PAYLOAD_SIZE_ATTRIBUTE];
  const bytes = size !== undefined && /^\d+$/.test(size) ? Number(size) : null;
  return { bucket: o.s3BucketName, key: o.s3Key, bytes };
}

/** `s3://bucket/key`, for logs, reasons and the archive's `dataref`. */
export function pointerUri(p: { bucket: string; key: string }): string {
  return `s3://${p.bucket}/${p.key}`;
}

/** The bucket and key of an `s3://bucket/key` URI, or null. */
export function parsePointerUri(uri: string): { bucket: string; key: string } | null {
  const m = /^s3:\/\/([^/]+)\/(.+)$/.exec(uri);
  return m ? { bucket: m[1]!, key: m[2]! } : null;
}
