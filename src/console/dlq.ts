// The console's dead-letter operations: src/dlq/ops.ts (the same code as `eventbus dlq peek` and
// `redrive`), with the redrive run lock of the archive store when there is one.
import { GetQueueUrlCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { isNotFound, toAwsError } from '../errors.js';
import { takeRunLock } from '../archive/lock.js';
import type { ArchiveStore } from '../archive/store.js';
import { browseDlq, redriveDlq, type DlqMessage } from '../dlq/ops.js';
import type { Logger } from '../log.js';
import type { ConsoleDlq } from './routes.js';

export interface DlqQueueRef {
  queue: string;
  queueName: string;
  dlqName: string;
  url: string;
  dlqUrl: string | null;
}

export interface ConsoleDlqOptions {
  /** null until the supervisor's clients exist. */
  sqs(): SQSClient | null;
  /** The handler queues with their URLs (looked up or provisioned by the supervisor). */
  queues(): DlqQueueRef[] | Promise<DlqQueueRef[]>;
  log: Logger;
}

/** A browsed message as the API returns it: without the receipt handle and the raw SQS message. */
export type ConsoleDlqMessage = Omit<DlqMessage, 'raw' | 'body'>;

/**
 * Most messages one "redrive all" request moves: it runs inside the HTTP request, which must end
 * well within the server's 30 s idle timeout; the answer says when more remain (`more`).
 */
export const MAX_REDRIVE_PER_REQUEST = 500;

/** What an offloaded message's listing says instead of its payload (read from S3, it can be up to payloads.maxBytes). */
const PAYLOAD_NOT_READ = 'payload not read by the console (it can be up to payloads.maxBytes): `eventbus dlq peek` reads it';

export function consoleDlq(o: ConsoleDlqOptions): ConsoleDlq {
  // DLQs being redriven from this process: without an archive store to hold the lock, one at a time here.
  const busy = new Set<string>();
  const find = async (queue: string) => {
    const sqs = o.sqs();
    const ref = (await o.queues()).find((q) => q.queue === queue);
    if (!sqs || !ref) throw new Error(`queue ${queue} is not resolved yet (the supervisor is starting)`);
    if (!ref.dlqUrl) throw new Error(`queue ${queue} has no DLQ`);
    return { sqs, ref, dlqUrl: ref.dlqUrl };
  };
  return {
    async browse(queue, max) {
      const { sqs, ref, dlqUrl } = await find(queue);
      const messages: ConsoleDlqMessage[] = [];
      // Released (visibility 0) as soon as the browse ends, as `dlq peek` does.
      // Payloads of offloaded messages are not read: a page of 100 could otherwise hold gigabytes.
      const r = await browseDlq(sqs, ref, dlqUrl, {
        max,
        onMessage: (m) => {
          const { raw, body, ...rest } = m;
          void raw;
          void body;
          messages.push(rest.offloaded ? { ...rest, offloaded: { pointer: rest.offloaded.pointer, error: PAYLOAD_NOT_READ } } : rest);
        },
      });
      return { messages, problems: r.problems };
    },
    async redrive(queue, ids, store) {
      const { sqs, ref, dlqUrl } = await find(queue);
      if (busy.has(ref.dlqName)) throw Object.assign(new Error(`a redrive of ${ref.dlqName} from this console is running`), { code: 'ERR_LOCKED' });
      busy.add(ref.dlqName);
      try {
        // One redrive per DLQ at a time, with the CLI's too, where an archive store can hold the lock.
        const lock = store ? await takeRunLock(await store(), `redrive:${ref.dlqName}`, `redrive of ${ref.dlqName} from the console`) : null;
        try {
          const max = ids === 'all' ? MAX_REDRIVE_PER_REQUEST : ids.length;
          const r = await redriveDlq(sqs, ref, dlqUrl, ref.url, {
            max,
            ...(ids === 'all' ? {} : { only: new Set(ids) }),
            ...(lock ? { signal: lock.signal } : {}),
          });
          const more = ids === 'all' && r.moved + r.failed >= max;
          return { moved: r.moved, failed: r.failed, notDeleted: r.notDeleted, movedIds: r.movedIds, errors: r.errors, aborted: r.aborted, more };
        } finally {
          await lock?.release();
        }
      } finally {
        busy.delete(ref.dlqName);
      }
    },
  };
}

/**
 * Looks up the queues' URLs once for a process that did not resolve them itself (the cluster
 * primary, `eventbus ingress`); a failed lookup is tried again at the next call.
 */
export function lazyDlqRefs(sqs: () => SQSClient, handlers: () => ReadonlyArray<{ queue: string; queueName: string; dlqName: string }>): () => Promise<DlqQueueRef[]> {
  let refs: Promise<DlqQueueRef[]> | undefined;
  const url = async (name: string) => {
    try {
      return (await sqs().send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl ?? null;
    } catch (err) {
      if (isNotFound(err)) return null;
      throw toAwsError('GetQueueUrl', name, err);
    }
  };
  return () => {
    refs ??= Promise.all(handlers().map(async (h) => ({ queue: h.queue, queueName: h.queueName, dlqName: h.dlqName, url: (await url(h.queueName)) ?? '', dlqUrl: await url(h.dlqName) }))).catch(
      (err: unknown) => {
        refs = undefined;
        throw err;
      },
    );
    return refs;
  };
}
