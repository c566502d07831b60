import type { SNSClient } from '@aws-sdk/client-sns';
import { snsSdk } from './sns-sdk.js';
import { EventBusError, awsErrorName, isNotFound, toAwsError } from '../errors.js';
import type { CloudEvent, EventOptions } from '../types.js';
import { SNS_MAX_BATCH, SNS_MAX_BYTES, buildEvent, deduplicationId, groupIdOf } from '../event/index.js';
import { DEFAULT_PAYLOAD_MAX_BYTES, DEFAULT_PAYLOAD_PREFIX, lazyPayloadStore, prepareEvent, storePayloads, type PayloadSettings, type PayloadStore, type PreparedEvent } from '../payloads/index.js';
import type { S3Client } from '@aws-sdk/client-s3';
import { resolveTopicArn, topicName } from './topic.js';
import { endPublishSpan, startPublishSpan } from '../telemetry/index.js';
import { checkSchemas, validateForPublish, type EventSchemas, type StandardSchemaV1 } from '../schema.js';

export { buildEvent, derivedEventId, encodeEvent, SNS_MAX_BYTES, EVENT_TYPE_ATTRIBUTE } from '../event/index.js';
export { resolveTopicArn, topicName, isTopicArn } from './topic.js';

export interface PublisherOptions<S extends EventSchemas = EventSchemas> {
  sns: SNSClient;
  /** Topic name or ARN; a name is resolved once with ListTopics. */
  topic: string;
  /** Default CloudEvents source. */
  source: string;
  /**
   * The FIFO topic (name or ARN; config `fifoTopic`) that ordered handlers' queues subscribe to. An
   * event with a `groupId` is published to it (MessageGroupId = the group, MessageDeduplicationId =
   * the event id) and to `topic` (MessageGroupId: SQS fair queues). Without it, grouped events go to
   * `topic` only and reach no ordered handler.
   */
  fifoTopic?: string | undefined;
  /** Called after SNS accepted events (metrics). */
  onPublished?: (type: string, count: number) => void;
  /**
   * Event type -> Standard Schema validator (zod, valibot, arktype): an event of a listed type is
   * validated before it is published (ERR_EVENT_INVALID, before any call), and its data is typed.
   * Types not listed are published unchecked.
   */
  schemas?: S;
  /**
   * Large events (README "Large events"): an event over `thresholdBytes` (default: what no longer
   * fits SNS with its attributes) is stored in S3 under `<prefix><event id>` and published as a
   * pointer in the format of AWS's extended clients. Unset: such an event is ERR_EVENT_TOO_LARGE.
   */
  payloads?: PublisherPayloads | null | undefined;
}

/** `createPublisher({ payloads })`: the bucket, and optionally the rest of `payloads.*` and an S3 client. */
export interface PublisherPayloads {
  bucket: string;
  /** Key prefix (default `eventbus/`). */
  prefix?: string;
  /** Default: SNS's limit (262144), counted as SNS does (JSON plus attributes). */
  thresholdBytes?: number;
  /** Default 64 MiB; a larger event is ERR_EVENT_TOO_LARGE before any call. */
  maxBytes?: number;
  /** The S3 client (default: one with the SDK's default settings, made on the first large event). */
  s3?: S3Client;
  /** Internal: where payloads go (a lazily loaded S3 client of the configured endpoint). */
  store?: PayloadStore;
  /** Called after an event's payload was stored (metrics). */
  onOffloaded?: (type: string | null, bytes: number) => void;
}
/** The data of an event of type K: typed by its schema when the publisher has one for K. */
export type DataOf<S extends EventSchemas, K extends string> = K extends keyof S ? StandardSchemaV1.InferInput<S[K]> : unknown;

/** One entry of publishBatch: an event to build, or an already built CloudEvent. */
export type BatchEntry = { type: string; data?: unknown; opts?: EventOptions; /** Same as `opts.groupId`. */ groupId?: string } | CloudEvent;

export interface BatchResult {
  successful: Array<{ id: string; type: string; messageId: string }>;
  failed: Array<{ id: string; type: string | null; code: string; message: string }>;
}

export interface Publisher<S extends EventSchemas = EventSchemas> {
  /** Publishes one event; resolves to the event as sent. */
  createEvent<K extends string>(type: K, data: DataOf<S, K>, opts?: EventOptions): Promise<CloudEvent>;
  /** Publishes many events in PublishBatch calls (10 entries and 256 KiB each); reports per-entry failures. */
  publishBatch(entries: BatchEntry[]): Promise<BatchResult>;
  /** Publishes an already built event as is. */
  publishEvent(event: CloudEvent, attributes?: Record<string, string>): Promise<CloudEvent>;
  topicArn(): Promise<string>;
  /** The FIFO topic's ARN; null without `fifoTopic`. */
  fifoTopicArn(): Promise<string | null>;
}

/** Creates a publisher bound to one topic (SPEC: createPublisher(options)). */
export function createPublisher<const S extends EventSchemas = EventSchemas>(options: PublisherOptions<S>): Publisher<S> {
  const { sns, source } = options;
  const schemas: EventSchemas | undefined = options.schemas;
  if (schemas !== undefined) {
    if (typeof schemas !== 'object' || schemas === null || Array.isArray(schemas)) {
      throw new EventBusError('ERR_CONFIG_INVALID', 'createPublisher: schemas must be a map of event type to a Standard Schema validator');
    }
    checkSchemas('createPublisher', 'schemas', schemas, 'ERR_CONFIG_INVALID');
  }
  const pl = options.payloads ?? null;
  const payloads: PayloadSettings | null = pl
    ? { bucket: pl.bucket, prefix: pl.prefix ?? DEFAULT_PAYLOAD_PREFIX, thresholdBytes: Math.min(pl.thresholdBytes ?? SNS_MAX_BYTES, SNS_MAX_BYTES), maxBytes: pl.maxBytes ?? DEFAULT_PAYLOAD_MAX_BYTES }
    : null;
  let store: PayloadStore | undefined;
  const payloadStore = () => (store ??= pl?.store ?? lazyPayloadStore(pl?.s3 ? { client: pl.s3 } : { endpoint: null, region: null }));
  /** Stores the offloaded payloads among `prepared`; the ones that failed, with why. */
  const offload = async (prepared: PreparedEvent[]): Promise<Map<PreparedEvent, unknown>> => {
    if (!prepared.some((p) => p.offload)) return new Map();
    const failed = await storePayloads(payloadStore(), prepared);
    for (const p of prepared) if (p.offload && !failed.has(p)) pl?.onOffloaded?.(p.event.type, p.offload.bytes);
    return failed;
  };
  /** Validates an event of a type with a schema (ERR_EVENT_INVALID), before any call. */
  const check = (type: string | null, data: unknown) =>
    schemas && type !== null && Object.hasOwn(schemas, type) ? validateForPublish(type, schemas[type], data, 'publish') : undefined;
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

  let fifoArn: Promise<string> | undefined;
  const fifoTopicArn = () => {
    if (!options.fifoTopic) return Promise.resolve(null);
    fifoArn ??= resolveTopicArn(sns, options.fifoTopic).catch((err) => {
      fifoArn = undefined;
      throw err;
    });
    return fifoArn;
  };

  /** Publishes one event; resolves to SNS's MessageId (the standard topic's). */
  async function publishOne(event: CloudEvent, extraAttributes?: Record<string, string>): Promise<string | undefined> {
    await check(event.type, event.data);
    const prepared = prepareEvent(event, extraAttributes, payloads);
    const { body, attributes } = prepared;
    const groupId = groupIdOf(event);
    const TopicArn = await topicArn();
    const Fifo = groupId ? await fifoTopicArn() : null;
    let messageId: string | undefined;
    // The payload first: a pointer must never reach a queue before its object exists.
    const failed = (await offload([prepared])).get(prepared);
    if (failed !== undefined) throw failed;
    const { PublishCommand } = await snsSdk();
    // The FIFO topic first: a caller that retries after the second call failed publishes to it
    // again with the same deduplication id (delivered once within 5 minutes), and the standard
    // topic's queues get the event at least once, as always.
    if (Fifo) {
      try {
        await sns.send(new PublishCommand({ TopicArn: Fifo, Message: body, MessageAttributes: attributes, MessageGroupId: groupId, MessageDeduplicationId: deduplicationId(event.id) }));
      } catch (err) {
        throw notFound(err, Fifo);
      }
    }
    try {
      messageId = (await sns.send(new PublishCommand({ TopicArn, Message: body, MessageAttributes: attributes, ...(groupId ? { MessageGroupId: groupId } : {}) }))).MessageId;
    } catch (err) {
      throw notFound(err, TopicArn);
    }
    if (event.type) options.onPublished?.(event.type, 1);
    return messageId;
  }

  async function publishEvent(event: CloudEvent, extraAttributes?: Record<string, string>): Promise<CloudEvent> {
    await publishOne(event, extraAttributes);
    return event;
  }

  return {
    topicArn,
    fifoTopicArn,
    publishEvent,
    async createEvent(type, data, opts = {}) {
      const event = buildEvent(type, data, source, opts);
      // Tracing (issue 15): the event carries the context it continues; a PRODUCER span when an SDK is registered.
      const span = startPublishSpan([event], { name: topicName(options.topic), arn: options.topic.startsWith('arn:') ? options.topic : undefined });
      let messageId: string | undefined;
      try {
        messageId = await publishOne(event, opts.attributes);
      } catch (err) {
        endPublishSpan(span, { error: err });
        throw err;
      }
      endPublishSpan(span, { messageId });
      return event;
    },
    async publishBatch(entries) {
      const result: BatchResult = { successful: [], failed: [] };
      // Built events are copied: the trace context is added to the copy, not to the caller's object.
      const built = entries.map((e) => ('specversion' in e ? { event: { ...(e as CloudEvent) }, extra: undefined } : { event: buildEvent(e.type, e.data, source, e.groupId !== undefined ? { ...e.opts, groupId: e.groupId } : e.opts), extra: e.opts?.attributes }));
      const span = built.length ? startPublishSpan(built.map((b) => b.event), { name: topicName(options.topic), arn: options.topic.startsWith('arn:') ? options.topic : undefined }) : null;
      try {
        await publishChunks(built, result);
      } catch (err) {
        endPublishSpan(span, { error: err });
        throw err;
      }
      endPublishSpan(span, { failed: result.failed.length, total: built.length, messageId: built.length === 1 ? result.successful[0]?.messageId : undefined });
      return result;
    },
  };

  async function publishChunks(built: Array<{ event: CloudEvent; extra: Record<string, string> | undefined }>, result: BatchResult): Promise<void> {
    const all = built.map(({ event, extra }) => prepareEvent(event, extra, payloads));
    // Every entry is checked before the first call: an invalid one fails the batch, nothing sent.
    if (schemas) for (const e of all) await check(e.event.type, e.event.data);
    if (all.length === 0) return;
    const TopicArn = await topicArn();
    // Payloads first; an entry whose payload could not be stored is reported failed and not sent.
    const notStored = await offload(all);
    for (const [e, err] of notStored) result.failed.push({ id: e.event.id, type: e.event.type, code: awsErrorName((err as { cause?: unknown }).cause ?? err) || 'Error', message: (err as Error).message ?? String(err) });
    const encoded = (notStored.size ? all.filter((e) => !notStored.has(e)) : all).map((e) => ({ ...e, groupId: groupIdOf(e.event) }));
    if (encoded.length === 0) return;
    const Fifo = encoded.some((e) => e.groupId) ? await fifoTopicArn() : null;
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
    for (const all of chunks) {
      let chunk = all;
      if (Fifo && chunk.some((e) => e.groupId)) {
        // Grouped entries go to the FIFO topic first (see publishOne); one that fails there is
        // failed, and not sent to the standard topic either, so a retry of it is a retry of both.
        const grouped = chunk.filter((e) => e.groupId);
        const failedFifo = new Set<(typeof chunk)[number]>();
        try {
          const out = await sns.send(
            new (await snsSdk()).PublishBatchCommand({
              TopicArn: Fifo,
              PublishBatchRequestEntries: grouped.map((e, i) => ({
                Id: String(i),
                Message: e.body,
                MessageAttributes: e.attributes,
                MessageGroupId: e.groupId,
                MessageDeduplicationId: deduplicationId(e.event.id),
              })),
            }),
          );
          for (const f of out.Failed ?? []) {
            const e = grouped[Number(f.Id)];
            if (!e) continue;
            failedFifo.add(e);
            result.failed.push({ id: e.event.id, type: e.event.type, code: f.Code ?? 'Unknown', message: `FIFO topic: ${f.Message ?? ''}` });
          }
        } catch (err) {
          const wrapped = notFound(err, Fifo);
          if (wrapped.code === 'ERR_TOPIC_NOT_FOUND') throw wrapped;
          for (const e of grouped) {
            failedFifo.add(e);
            result.failed.push({ id: e.event.id, type: e.event.type, code: awsErrorName(err) || 'Error', message: wrapped.message });
          }
        }
        chunk = chunk.filter((e) => !failedFifo.has(e));
        if (chunk.length === 0) continue;
      }
      const byEntryId = new Map(chunk.map((e, i) => [String(i), e]));
      try {
        const out = await sns.send(
          new (await snsSdk()).PublishBatchCommand({
            TopicArn,
            PublishBatchRequestEntries: chunk.map((e, i) => ({ Id: String(i), Message: e.body, MessageAttributes: e.attributes, ...(e.groupId ? { MessageGroupId: e.groupId } : {}) })),
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
  }
}
