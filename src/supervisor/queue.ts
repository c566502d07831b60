import type { MessageAttributeValue } from '@aws-sdk/client-sqs';
import type { ResolvedHandler } from '../handlers.js';

/** What every stage needs of a queue: its logical name (logs, metrics) and its URL (SQS calls). */
export interface QueueRef {
  queue: string;
  url: string;
}

/** A queue as the running supervisor knows it: its handler plus resolved URL and ARN. */
export interface QueueRuntime extends QueueRef {
  handler: ResolvedHandler;
  arn: string;
  dlqUrl: string | null;
}

/** A received SQS message in domain names (SDK spellings stay in the poller). */
export interface ReceivedMessage {
  messageId: string;
  receiptHandle: string;
  body: string;
  /** SQS message attributes (raw delivery), String values; undefined when there are none. */
  attributes: Record<string, string> | undefined;
  /** The message attributes as SQS gave them (every data type), to dead-letter the message as it came. */
  sqsAttributes: Record<string, MessageAttributeValue> | undefined;
  receiveCount: number;
  sentTimestampMs: number | undefined;
  /** SQS's AWSTraceHeader system attribute (X-Ray), when the message has one. */
  awsTraceHeader?: string | undefined;
  /** The SQS MessageGroupId (FIFO queues; standard queues when the message came with one: fair queues). */
  groupId?: string | undefined;
}
