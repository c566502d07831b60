// The bus's wire format, in one place: the CloudEvent we publish (encode) and what a queue may
// deliver (decode: the SNS envelope, raw delivery, bare data). The publisher, the worker threads,
// the supervisor and the CLI import it; it imports none of them.
export { GROUP_ID_EXTENSION, MESSAGE_GROUP_ID_RE, checkGroupId, deduplicationId, groupIdOf } from './encode.js';
export { DEAD_LETTER_REASON_ATTRIBUTE, EVENT_TYPE_ATTRIBUTE, SNS_MAX_BATCH, SNS_MAX_BYTES, buildEvent, derivedEventId, encodeEvent, eventAttributes, publishedSize, serializeEvent, tooLarge, OFFLOAD_HINT, type EncodedEvent, type MessageAttributes } from './encode.js';
export { decodeMessage, findPointer, type DecodedMessage, type RawMessage } from './decode.js';
export {
  EXTENDED_PAYLOAD_SIZE_ATTRIBUTE,
  LEGACY_PAYLOAD_SIZE_ATTRIBUTE,
  LEGACY_POINTER_CLASS,
  POINTER_CLASS,
  encodePointer,
  parsePointer,
  parsePointerUri,
  pointerUri,
  type PayloadPointer,
} from './pointer.js';
