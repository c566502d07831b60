import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  SendMessageCommand,
  type BatchResultErrorEntry,
  type MessageAttributeValue,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { isRetryableAwsError } from '../../retryable.js';
import type { Logger } from '../../log.js';
import { Batcher, type EntryFailure } from './batcher.js';
import { callRetryDelayMs } from '../../backoff.js';
import type { SqsHealth } from '../serve/health.js';
import type { QueueRef } from '../queue.js';

/** SQS limit: entries per DeleteMessageBatch / ChangeMessageVisibilityBatch. */
export const SQS_MAX_BATCH = 10;


interface CmvEntry {
  receiptHandle: string;
  visibilityTimeoutSec: number;
}

/** A message to send to a DLQ as is: its body and its message attributes. */
export interface DeadLetterEntry {
  body: string;
  attributes: Record<string, MessageAttributeValue>;
  /** A FIFO DLQ's MessageGroupId and MessageDeduplicationId (an ordered handler's). */
  groupId?: string;
  deduplicationId?: string;
}

export interface AckerOptions {
  sqs: SQSClient;
  log: Logger;
  health: SqsHealth;
  onError(queue: string, operation: string, count: number): void;
  /** How long a delete waits for others to share its call. */
  lingerMs?: number;
  /** Whether a queue's part batch of deletes should wait for more (bounded by MAX_DELETE_LINGER_MS). */
  holdDeletes?: (queue: string) => boolean;
}

/** The longest a delete waits for company while `holdDeletes` says more are coming. */
export const MAX_DELETE_LINGER_MS = 20;

/**
 * Deletes and visibility changes, batched per queue across completions. Failed entries are
 * retried; entries that keep failing reject their caller's promise (the message then comes back
 * by itself, which is safe under at-least-once).
 */
export class Acker {
  readonly #o: AckerOptions;
  readonly #deletes = new Map<string, Batcher<string>>();
  readonly #changes = new Map<string, Batcher<CmvEntry>>();
  readonly #dlqSends = new Map<string, Batcher<DeadLetterEntry>>();

  constructor(options: AckerOptions) {
    this.#o = options;
  }

  delete(q: QueueRef, receiptHandle: string): Promise<void> {
    let b = this.#deletes.get(q.url);
    if (!b) {
      b = this.#batcher<string>(q, 'DeleteMessageBatch', async (handles) => {
        const out = await this.#o.sqs.send(
          new DeleteMessageBatchCommand({ QueueUrl: q.url, Entries: handles.map((h, i) => ({ Id: String(i), ReceiptHandle: h })) }),
        );
        return perEntry(handles.length, out.Failed);
      }, this.#o.holdDeletes && (() => this.#o.holdDeletes!(q.queue)));
      this.#deletes.set(q.url, b);
    }
    return b.add(receiptHandle);
  }

  /** Sets a message's visibility: 0 releases it now; the backoff delay after a failure; an extension. */
  changeVisibility(q: QueueRef, receiptHandle: string, visibilityTimeoutSec: number): Promise<void> {
    let b = this.#changes.get(q.url);
    if (!b) {
      b = this.#batcher<CmvEntry>(q, 'ChangeMessageVisibilityBatch', async (entries) => {
        const out = await this.#o.sqs.send(
          new ChangeMessageVisibilityBatchCommand({
            QueueUrl: q.url,
            Entries: entries.map((e, i) => ({ Id: String(i), ReceiptHandle: e.receiptHandle, VisibilityTimeout: e.visibilityTimeoutSec })),
          }),
        );
        return perEntry(entries.length, out.Failed);
      });
      this.#changes.set(q.url, b);
    }
    return b.add({ receiptHandle, visibilityTimeoutSec: Math.max(0, Math.round(visibilityTimeoutSec)) });
  }

  /**
   * Sends a message to a dead-letter queue (dead-lettered at once). One SendMessage per message, not
   * a batch: a batch's 10 bodies could pass SQS's per-call size limit, and this path is rare.
   */
  sendToDlq(dlq: QueueRef, entry: DeadLetterEntry): Promise<void> {
    let b = this.#dlqSends.get(dlq.url);
    if (!b) {
      b = this.#batcher<DeadLetterEntry>(
        dlq,
        'SendMessage',
        async ([e]) => {
          const fifo = e!.groupId ? { MessageGroupId: e!.groupId, MessageDeduplicationId: e!.deduplicationId } : {};
          await this.#o.sqs.send(new SendMessageCommand({ QueueUrl: dlq.url, MessageBody: e!.body, MessageAttributes: e!.attributes, ...fifo }));
          return [null];
        },
        undefined,
        1,
      );
      this.#dlqSends.set(dlq.url, b);
    }
    return b.add(entry);
  }

  /** Sends whatever is pending and waits for every call in progress. */
  async flush(): Promise<void> {
    await Promise.all([...this.#deletes.values(), ...this.#changes.values(), ...this.#dlqSends.values()].map((b) => b.flush()));
  }

  #batcher<T>(
    q: QueueRef,
    operation: string,
    send: (items: T[]) => Promise<Array<EntryFailure | null>>,
    hold?: (pending: number) => boolean,
    maxBatch = SQS_MAX_BATCH,
  ): Batcher<T> {
    const { health, log, onError } = this.#o;
    return new Batcher<T>({
      maxBatch,
      lingerMs: this.#o.lingerMs ?? 5,
      ...(hold ? { hold, maxLingerMs: MAX_DELETE_LINGER_MS } : {}),
      maxAttempts: 4,
      retryDelayMs: (n) => callRetryDelayMs(n, 2_000),
      isRetryable: isRetryableAwsError,
      async send(items) {
        const sentAt = Date.now();
        let results: Array<EntryFailure | null>;
        try {
          results = await send(items);
        } catch (err) {
          // Failed entries are not a failing endpoint; a failed call is, since it was sent.
          health.failed(`${q.queue} ${operation}`, sentAt);
          throw err;
        }
        health.ok(`${q.queue} ${operation}`);
        return results;
      },
      onError(err, items) {
        onError(q.queue, operation, items.length);
        log.warn({ queue: q.queue, operation, entries: items.length, err }, 'sqs call failed');
      },
    });
  }
}

function perEntry(n: number, failed: BatchResultErrorEntry[] | undefined): Array<EntryFailure | null> {
  const out: Array<EntryFailure | null> = new Array(n).fill(null);
  for (const f of failed ?? []) {
    const i = Number(f.Id);
    if (!Number.isInteger(i) || i < 0 || i >= n) continue;
    const error = new Error(`${f.Code ?? 'Error'}: ${f.Message ?? 'batch entry failed'}`);
    error.name = f.Code ?? 'BatchEntryError';
    // SenderFault = the request was wrong (an invalid receipt handle); sending it again cannot help.
    out[i] = { error, retryable: f.SenderFault !== true };
  }
  return out;
}
