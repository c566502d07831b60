import type { ResolvedHandler } from '../handlers.js';
import type { QueueRef } from './acker.js';

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
  attributes: Record<string, string>;
  receiveCount: number;
  sentTimestampMs: number | undefined;
}
