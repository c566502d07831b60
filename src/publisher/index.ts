import { PublishBatchCommand, PublishCommand, type SNSClient } from '@aws-sdk/client-sns';
import { EventBusError, awsErrorName, isNotFound, toAwsError } from '../errors.js';
import type { CloudEvent, EventOptions } from '../types.js';
import { SNS_MAX_BATCH, SNS_MAX_BYTES, buildEvent, encodeEvent } from '../event/index.js';
import { resolveTopicArn } from './topic.js';

export { buildEvent, derivedEventId, encodeEvent, SNS_MAX_BYTES, EVENT_TYPE_ATTRIBUTE } from '../event/index.js';
export { resolveTopicArn, topicName, isTopicArn } from './topic.js';

export interface PublisherOptions {
  sns: SNSClient;
  /** Topic name or ARN; a name is resolved once with ListTopics. */
  topic: string;
  /** Default CloudEvents source. */
  source: string;
  /** Called after SNS accepted events (metrics). */
  onPublished?: (type: string, count: number) => void;
}

/** One entry of publishBatch: an event to build, or an already built CloudEvent. */
export type BatchEntry = { type: string; data?: unknown; opts?: EventOptions } | CloudEvent;

export interface BatchResult {
  successful: Array<{ id: string; type: string; messageId: string }>;
  failed: Array<{ id: string; type: string | null; code: string; message: string }>;
}

export interface Publisher {
  /** Publishes one event; resolves to the event as sent. */
  createEvent(type: string, data: unknown, opts?: EventOptions): Promise<CloudEvent>;
  /** Publishes many events in PublishBatch calls (10 entries and 256 KiB each); reports per-entry failures. */
  publishBatch(entries: BatchEntry[]): Promise<BatchResult>;
  /** Publishes an already built event as is. */
  publishEvent(event: CloudEvent, attributes?: Record<string, string>): Promise<CloudEvent>;
  topicArn(): Promise<string>;
}

/** Creates a publisher bound to one topic (SPEC: createPublisher(options)). */
export function createPublisher(options: PublisherOptions): Publisher {
  const { sns, source } = options;
  let arn: Promise<string> | undefined;
  const topicArn = () => {
    arn ??= resolveTopicArn(sns, options.topic).catch((err) => {
      arn = undefined;
      throw err;
    });
    return arn;
  };
  const notFound = (err: unknown, t: string) =>
    isNotFound(err) || awsErrorName(err) === 'NotFound'
      ? new EventBusError('ERR_TOPIC_NOT_FOUND', `SNS topic ${t} does not exist (run: eventbus provision)`, { cause: err })
      : toAwsError('Publish', t, err);

  async function publishEvent(event: CloudEvent, extraAttributes?: Record<string, string>): Promise<CloudEvent> {
    const { body, attributes } = encodeEvent(event, extraAttributes);
    const TopicArn = await topicArn();
    try {
      await sns.send(new PublishCommand({ TopicArn, Message: body, MessageAttributes: attributes }));
    } catch (err) {
      throw notFound(err, TopicArn);
    }
    if (event.type) options.onPublished?.(event.type, 1);
    return event;
  }

  return {
    topicArn,
    publishEvent,
    async createEvent(type, data, opts = {}) {
      return publishEvent(buildEvent(type, data, source, opts), opts.attributes);
    },
    async publishBatch(entries) {
      const result: BatchResult = { successful: [], failed: [] };
      const encoded = entries.map((e) => {
        const event = 'specversion' in e ? (e as CloudEvent) : buildEvent(e.type, e.data, source, e.opts);
        const extra = 'specversion' in e ? undefined : e.opts?.attributes;
        return { event, ...encodeEvent(event, extra) };
      });
      if (encoded.length === 0) return result;
      const TopicArn = await topicArn();
      // Chunks respect both PublishBatch limits: 10 entries and 256 KiB in total.
      const chunks: (typeof encoded)[] = [];
      let cur: typeof encoded = [];
      let bytes = 0;
      for (const e of encoded) {
        if (cur.length === SNS_MAX_BATCH || (cur.length > 0 && bytes + e.size > SNS_MAX_BYTES)) {
          chunks.push(cur);
          cur = [];
          bytes = 0;
        }
        cur.push(e);
        bytes += e.size;
      }
      chunks.push(cur);
      for (const chunk of chunks) {
        const byEntryId = new Map(chunk.map((e, i) => [String(i), e]));
        try {
          const out = await sns.send(
            new PublishBatchCommand({
              TopicArn,
              PublishBatchRequestEntries: chunk.map((e, i) => ({ Id: String(i), Message: e.body, MessageAttributes: e.attributes })),
            }),
          );
          for (const s of out.Successful ?? []) {
            const e = byEntryId.get(s.Id ?? '');
            if (!e) continue;
            result.successful.push({ id: e.event.id, type: e.event.type ?? '', messageId: s.MessageId ?? '' });
            if (e.event.type) options.onPublished?.(e.event.type, 1);
          }
          for (const f of out.Failed ?? []) {
            const e = byEntryId.get(f.Id ?? '');
            if (!e) continue;
            result.failed.push({ id: e.event.id, type: e.event.type, code: f.Code ?? 'Unknown', message: f.Message ?? '' });
          }
        } catch (err) {
          const wrapped = notFound(err, TopicArn);
          if (wrapped.code === 'ERR_TOPIC_NOT_FOUND') throw wrapped;
          for (const e of chunk) result.failed.push({ id: e.event.id, type: e.event.type, code: awsErrorName(err) || 'Error', message: wrapped.message });
        }
      }
      return result;
    },
  };
}
