import { randomUUID } from 'node:crypto';
import { buildEvent, decodeMessage, encodeEvent } from '../event/index.js';
import type { CloudEvent, EventOptions } from '../types.js';

/** The CloudEvents `source` of events made or published by the testing kit, unless given. */
export const TEST_SOURCE = 'eventbus-test';

/** What `makeEvent` may set besides type and data. */
export type MakeEventOptions = Pick<EventOptions, 'id' | 'source' | 'subject' | 'time' | 'extensions'>;

// Only used for defaults the decoder takes from the delivery (an event without `source`), which a
// made event never lacks; shaped like the emulator's ARNs.
const TOPIC_ARN = 'arn:aws:sns:us-east-1:000000000000:eventbus-test';
const QUEUE_ARN = 'arn:aws:sqs:us-east-1:000000000000:eventbus-test';

/**
 * A CloudEvent exactly as a handler receives it when `type` and `data` are published: built and
 * encoded by the publisher's code, wrapped in the SNS envelope the topic delivers to its queues, and
 * decoded by the worker's code. So `data` went through JSON (a `Date` arrives as its ISO string,
 * `undefined` properties are gone), and an event the publisher would refuse (an empty type, data
 * that is not JSON, over 256 KiB) throws the publisher's error here too.
 */
export function makeEvent<T = unknown>(type: string, data: T, overrides: MakeEventOptions = {}): CloudEvent<T> {
  const { id, source, subject, time, extensions } = overrides;
  const built = buildEvent(type, data, source ?? TEST_SOURCE, {
    ...(id !== undefined ? { id } : {}),
    ...(subject !== undefined ? { subject } : {}),
    ...(time !== undefined ? { time } : {}),
    ...(extensions !== undefined ? { extensions } : {}),
  });
  const { body, attributes } = encodeEvent(built);
  const sentMs = Date.now();
  const messageId = randomUUID();
  // The envelope of a subscription without raw delivery (what provisioning sets up); the signature
  // fields SNS adds are left out: nothing reads them.
  const envelope = JSON.stringify({
    Type: 'Notification',
    MessageId: messageId,
    TopicArn: TOPIC_ARN,
    Message: body,
    Timestamp: new Date(sentMs).toISOString(),
    MessageAttributes: Object.fromEntries(Object.entries(attributes).map(([k, v]) => [k, { Type: v.DataType, Value: v.StringValue }])),
  });
  return decodeMessage({ messageId, body: envelope, attributes: {}, sentTimestampMs: sentMs, queueArn: QUEUE_ARN }).event as CloudEvent<T>;
}
