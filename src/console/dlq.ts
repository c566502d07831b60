// The console's dead-letter operations, on src/dlq/ops.ts (the same code as `eventbus dlq`).
import type { SQSClient } from '@aws-sdk/client-sqs';
import type { Logger } from '../log.js';
import type { ConsoleDlq } from './routes.js';

export interface DlqQueueRef {
  queue: string;
  queueName: string;
  dlqName: string;
  url: string;
  dlqUrl: string | null;
}

export function consoleDlq(o: { sqs: () => SQSClient | null; queues: () => DlqQueueRef[]; log: Logger }): ConsoleDlq {
  void o;
  return {
    async browse() {
      throw new Error('not yet');
    },
    async redrive() {
      throw new Error('not yet');
    },
  };
}
