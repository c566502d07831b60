// The dead-letter queue operations behind `eventbus dlq` and the console: browse a DLQ without
// consuming it, and move messages back to their source queue (copy, then delete). No printing here:
// callers format what they get.
import {
  CancelMessageMoveTaskCommand,
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  ListMessageMoveTasksCommand,
  ReceiveMessageCommand,
  StartMessageMoveTaskCommand,
  SendMessageBatchCommand,
  type Message,
  type MessageAttributeValue,
  type SendMessageBatchRequestEntry,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import { awsErrorName, describeError, toAwsError } from '../errors.js';
import { DEAD_LETTER_REASON_ATTRIBUTE, decodeMessage, findPointer, type PayloadPointer } from '../event/index.js';
import type { CloudEvent } from '../types.js';
import type { PayloadStore } from '../payloads/index.js';

/**
 * Browse hides what it received for this long while it keeps receiving (so the next receive returns
 * other messages), then releases everything with visibility 0. If the caller dies, they come back by
 * themselves after this.
 */
export const BROWSE_HIDE_SEC = 30;
/** Redrive hides a received batch while it is sent and deleted; failed ones stay hidden until the end. */
const REDRIVE_HIDE_SEC = 60;
/**
 * Receives wait up to 1 s: a long poll asks every SQS server, so an empty answer means an empty queue
 * (a short poll samples a subset and may answer empty while messages remain).
 */
const WAIT_SEC = 1;
/** SendMessageBatch: at most 10 entries and 256 KiB in total. */
const BATCH_MAX_ENTRIES = 10;
const BATCH_MAX_BYTES = 256 * 1024;

/** A handler queue and its DLQ, by their full SQS names (a ResolvedHandler is one). */
export interface DlqPair {
  queueName: string;
  dlqName: string;
}

/** An offloaded message's pointer, and its payload read from S3 (or why not). */
export interface Offloaded {
  pointer: PayloadPointer;
  payload?: string;
  error?: string;
}

/** One message of a DLQ, decoded. */
export interface DlqMessage {
  messageId: string;
  /** ApproximateReceiveCount as SQS reported it on this (browsing) receive; null when absent. */
  receiveCount: number | null;
  /** SentTimestamp in ms since the epoch; null when absent. */
  sentTimestampMs: number | null;
  event: CloudEvent;
  /** How the body was encoded (`sns`, `raw`, ...: decodeMessage's form). */
  form: string;
  /** Why the supervisor dead-lettered it at once (`rejected: ...`, `invalid: ...`); null when it got here by its receive count. */
  deadLetterReason: string | null;
  /** Message attributes: strings as they are, binaries as `base64:...`. */
  attributes: Record<string, { type: string; value: string }>;
  /** The claim check's pointer (and payload) for an offloaded event; null for others. */
  offloaded: Offloaded | null;
  /** The raw SQS body. */
  body: string;
  /** The SQS message as received (receipt handle included): for callers that act on it. */
  raw: Message;
}

async function receive(sqs: SQSClient, queueName: string, url: string, max: number, hideSec: number): Promise<Message[]> {
  try {
    const out = await sqs.send(
      new ReceiveMessageCommand({
        QueueUrl: url,
        MaxNumberOfMessages: Math.max(1, Math.min(10, max)),
        VisibilityTimeout: hideSec,
        WaitTimeSeconds: WAIT_SEC,
        MessageAttributeNames: ['All'],
        MessageSystemAttributeNames: ['All'],
      }),
    );
    return (out.Messages ?? []).filter((m) => m.MessageId && m.ReceiptHandle);
  } catch (err) {
    throw toAwsError('ReceiveMessage', queueName, err);
  }
}

/** Makes messages visible again (visibility 0). Returns one line per failed entry; never throws. */
export async function releaseMessages(sqs: SQSClient, queueName: string, url: string, handles: Map<string, string>): Promise<string[]> {
  const problems: string[] = [];
  const entries = [...handles.entries()];
  for (let i = 0; i < entries.length; i += 10) {
    const chunk = entries.slice(i, i + 10);
    try {
      const out = await sqs.send(
        new ChangeMessageVisibilityBatchCommand({
          QueueUrl: url,
          Entries: chunk.map(([, handle], j) => ({ Id: String(j), ReceiptHandle: handle, VisibilityTimeout: 0 })),
        }),
      );
      for (const f of out.Failed ?? []) {
        const id = chunk[Number(f.Id)]?.[0] ?? f.Id;
        problems.push(`could not make message ${id} visible again in ${queueName} (${f.Code}: ${f.Message ?? ''}); it reappears when its visibility timeout ends`);
      }
    } catch (err) {
      problems.push(`could not make ${chunk.length} message(s) visible again in ${queueName} (${describeError(err)}); they reappear when their visibility timeout ends`);
    }
  }
  return problems;
}

export interface BrowseOptions {
  /** At most this many messages. */
  max: number;
  /** Reads an offloaded event's payload (else `offloaded.error` says there is no S3 client). */
  payloads?: PayloadStore;
  /** Called for each message, in order, as it is received. */
  onMessage(m: DlqMessage, n: number): void | Promise<void>;
  /** How long each received message stays hidden while browsing, in seconds (default BROWSE_HIDE_SEC). */
  hideSec?: number;
  /**
   * Called once, after every message was passed to onMessage without error: the ids of the shown
   * messages to delete from the DLQ instead of making them visible again (`dlq dump --delete`, once
   * its file is on disk), or false for none. Not called when browsing or onMessage failed: then
   * everything is released.
   */
  deleteShown?(): Promise<false | ReadonlySet<string>>;
  /** Stops browsing between receives (then nothing is deleted; everything held is released). */
  signal?: AbortSignal;
}

/**
 * Reads up to `max` messages of the DLQ and leaves them there. Each receive keeps what it got hidden
 * (BROWSE_HIDE_SEC) so the next receive returns other messages; a message seen again (an SQS
 * duplicate, or one whose hiding ran out) is skipped by MessageId; browsing stops at `max`, on an
 * empty receive, or on a receive of only already-seen messages. Everything is released (visibility
 * 0) at the end, also on failure. Returns how many were passed to onMessage and the release problems.
 */
export async function browseDlq(
  sqs: SQSClient,
  pair: DlqPair,
  dlqUrl: string,
  o: BrowseOptions,
): Promise<{ shown: number; problems: string[]; deleted: number; aborted: boolean }> {
  const held = new Map<string, string>(); // MessageId -> latest receipt handle
  const shownIds: string[] = [];
  let shown = 0;
  let deleted = 0;
  let aborted = false;
  let problems: string[] = [];
  try {
    while (shown < o.max) {
      if (o.signal?.aborted) {
        aborted = true;
        break;
      }
      const msgs = await receive(sqs, pair.dlqName, dlqUrl, o.max - shown, o.hideSec ?? BROWSE_HIDE_SEC);
      let fresh = 0;
      for (const m of msgs) {
        const seen = held.has(m.MessageId!);
        held.set(m.MessageId!, m.ReceiptHandle!);
        if (seen || shown >= o.max) continue;
        fresh++;
        shown++;
        shownIds.push(m.MessageId!);
        await o.onMessage(decodeDlqMessage(m, pair, await offloaded(m, o.payloads)), shown);
      }
      if (fresh === 0) break;
    }
    const which = !aborted && o.deleteShown && shownIds.length > 0 ? await o.deleteShown() : false;
    if (which) {
      const r = await deleteHandles(sqs, pair.dlqName, dlqUrl, new Map(shownIds.filter((id) => which.has(id)).map((id) => [id, held.get(id)!])));
      for (const id of r.deleted) held.delete(id);
      deleted = r.deleted.length;
      problems.push(...r.problems);
    }
  } finally {
    problems = [...problems, ...(await releaseMessages(sqs, pair.dlqName, dlqUrl, held))];
  }
  return { shown, problems, deleted, aborted };
}

/** Deletes messages by their latest receipt handles; never throws (what failed is described). */
async function deleteHandles(sqs: SQSClient, queueName: string, url: string, handles: Map<string, string>): Promise<{ deleted: string[]; problems: string[] }> {
  const deleted: string[] = [];
  const problems: string[] = [];
  const entries = [...handles.entries()];
  for (let i = 0; i < entries.length; i += 10) {
    const chunk = entries.slice(i, i + 10);
    try {
      const out = await sqs.send(new DeleteMessageBatchCommand({ QueueUrl: url, Entries: chunk.map(([, handle], j) => ({ Id: String(j), ReceiptHandle: handle })) }));
      for (const s of out.Successful ?? []) {
        const id = chunk[Number(s.Id)]?.[0];
        if (id !== undefined) deleted.push(id);
      }
      for (const f of out.Failed ?? []) problems.push(`could not delete message ${chunk[Number(f.Id)]?.[0] ?? f.Id} from ${queueName} (${f.Code}: ${f.Message ?? ''}); it stays there`);
    } catch (err) {
      problems.push(`could not delete ${chunk.length} message(s) from ${queueName} (${describeError(err)}); they stay there`);
    }
  }
  return { deleted, problems };
}

/** Reads the payload of a message that is a pointer (a claim check on S3); null for others. */
async function offloaded(m: Message, payloads: PayloadStore | undefined): Promise<Offloaded | null> {
  const pointer = findPointer({ body: m.Body ?? '', attributes: stringAttributes(m.MessageAttributes) });
  if (!pointer) return null;
  if (!payloads) return { pointer, error: 'no S3 client' };
  try {
    return { pointer, payload: await payloads.get(pointer.bucket, pointer.key) };
  } catch (err) {
    return { pointer, error: describeError(err) };
  }
}

/** A received DLQ message as a DlqMessage (the event decoded as the supervisor would). */
export function decodeDlqMessage(m: Message, pair: DlqPair, off: Offloaded | null = null): DlqMessage {
  const sys = m.Attributes ?? {};
  const sent = sys.SentTimestamp !== undefined ? Number(sys.SentTimestamp) : NaN;
  const { event, form } = decodeMessage({
    messageId: m.MessageId!,
    body: m.Body ?? '',
    attributes: stringAttributes(m.MessageAttributes),
    sentTimestampMs: Number.isFinite(sent) ? sent : undefined,
    queueArn: pair.dlqName,
    payload: off?.payload,
  });
  const count = sys.ApproximateReceiveCount !== undefined ? Number(sys.ApproximateReceiveCount) : NaN;
  const attributes: DlqMessage['attributes'] = {};
  for (const [name, a] of Object.entries(m.MessageAttributes ?? {})) attributes[name] = { type: a.DataType ?? '?', value: attributeText(a) };
  return {
    messageId: m.MessageId!,
    receiveCount: Number.isFinite(count) ? count : null,
    sentTimestampMs: Number.isFinite(sent) ? sent : null,
    event,
    form,
    deadLetterReason: m.MessageAttributes?.[DEAD_LETTER_REASON_ATTRIBUTE]?.StringValue ?? null,
    attributes,
    offloaded: off,
    body: m.Body ?? '',
    raw: m,
  };
}

function stringAttributes(attrs: Record<string, MessageAttributeValue> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, a] of Object.entries(attrs ?? {})) if (typeof a.StringValue === 'string') out[k] = a.StringValue;
  return out;
}

function attributeText(a: MessageAttributeValue): string {
  if (a.StringValue !== undefined) return a.StringValue;
  if (a.BinaryValue !== undefined) return `base64:${Buffer.from(a.BinaryValue).toString('base64')}`;
  return '';
}

export interface RedriveResult {
  moved: number;
  failed: number;
  /** Copied to the source queue but not deleted from the DLQ (now in both). Counted in `moved` too. */
  notDeleted: number;
  /** Ids of the DLQ messages copied to the source queue. */
  movedIds: string[];
  /** Whether it stopped because `signal` was aborted (what is done is done; run again to go on). */
  aborted: boolean;
  errors: string[];
}

export interface RedriveOptions {
  /** At most this many messages (Infinity: all). */
  max: number;
  /** Move only the messages with these DLQ MessageIds (others received on the way are released untouched). */
  only?: ReadonlySet<string>;
  /** After each batch: the totals so far and this batch's counts. */
  onBatch?(r: RedriveResult, movedNow: number, failedNow: number): void;
  /** Stops between batches (a batch in flight completes: nothing is left half-moved). */
  signal?: AbortSignal;
}

/**
 * Moves up to `max` messages (Infinity: all) from the DLQ back to the source queue: SendMessageBatch with the same body
 * and every message attribute, and only for the entries SQS accepted, DeleteMessageBatch from the DLQ.
 * A message whose send failed stays in the DLQ: it is kept hidden until the end (so it is not received
 * again in this run) and then made visible again. Stops at `max`, when a receive finds nothing new,
 * when every id of `only` is done, or on `signal`.
 *
 * SQS has a native redrive, StartMessageMoveTask (server-side, asynchronous, rate-limited with
 * MaxNumberOfMessagesPerSecond, tracked with ListMessageMoveTasks). It is not used here: fauxqs (the
 * embedded emulator of `npm start` and the tests) does not implement it, it has no "at most N" or
 * "these ids" limit, and its progress cannot be reported per message. Copy-then-delete is
 * at-least-once like the bus: a delete that fails after a successful copy leaves a duplicate, never a loss.
 */
export async function redriveDlq(sqs: SQSClient, pair: DlqPair, dlqUrl: string, sourceUrl: string, o: RedriveOptions): Promise<RedriveResult> {
  const result: RedriveResult = { moved: 0, failed: 0, notDeleted: 0, movedIds: [], aborted: false, errors: [] };
  const failedHeld = new Map<string, string>(); // MessageId -> latest receipt handle
  const othersHeld = new Map<string, string>(); // not in `only`: released untouched at the end
  const moved = new Set<string>();
  const reasons = new Map<string, number>();
  const target = o.only ? Math.min(o.max, o.only.size) : o.max;
  try {
    while (result.moved + result.failed < target) {
      if (o.signal?.aborted) {
        result.aborted = true;
        break;
      }
      const want = o.only ? 10 : target - result.moved - result.failed;
      const msgs = await receive(sqs, pair.dlqName, dlqUrl, want, REDRIVE_HIDE_SEC);
      const fresh: Message[] = [];
      const again: Message[] = [];
      let seenNew = 0;
      for (const m of msgs) {
        const id = m.MessageId!;
        if (failedHeld.has(id)) failedHeld.set(id, m.ReceiptHandle!);
        else if (moved.has(id)) again.push(m);
        else if (o.only && !o.only.has(id)) {
          if (!othersHeld.has(id)) seenNew++;
          othersHeld.set(id, m.ReceiptHandle!);
        } else if (fresh.length < target - result.moved - result.failed) {
          fresh.push(m);
          seenNew++;
        } else {
          othersHeld.set(id, m.ReceiptHandle!);
        }
      }
      // Already copied in this run (an SQS duplicate, or a delete that failed before): delete, do not copy again.
      if (again.length) await deleteFromDlq(sqs, pair, dlqUrl, again, result.errors);
      if (seenNew === 0) break;
      if (fresh.length === 0) continue;

      const sent = await sendToSource(sqs, pair, sourceUrl, fresh);
      const ok = fresh.filter((m) => sent.ok.has(m.MessageId!));
      for (const m of fresh) {
        const why = sent.failed.get(m.MessageId!);
        if (why === undefined) continue;
        result.failed++;
        failedHeld.set(m.MessageId!, m.ReceiptHandle!);
        reasons.set(why, (reasons.get(why) ?? 0) + 1);
      }
      for (const m of ok) {
        moved.add(m.MessageId!);
        result.movedIds.push(m.MessageId!);
      }
      result.moved += ok.length;
      result.notDeleted += ok.length - (await deleteFromDlq(sqs, pair, dlqUrl, ok, result.errors));
      o.onBatch?.(result, ok.length, fresh.length - ok.length);
    }
  } finally {
    result.errors.push(...(await releaseMessages(sqs, pair.dlqName, dlqUrl, new Map([...othersHeld, ...failedHeld]))));
  }
  for (const [why, n] of reasons) result.errors.unshift(`${n} message(s) could not be sent to ${pair.queueName} and stay in ${pair.dlqName}: ${why}`);
  return result;
}

/** The SendMessageBatch entry that recreates a DLQ message on the source queue. */
export function copyEntry(m: Message, id: string): SendMessageBatchRequestEntry {
  const attrs: Record<string, MessageAttributeValue> = {};
  for (const [name, a] of Object.entries(m.MessageAttributes ?? {})) {
    // Why it was dead-lettered belongs to the DLQ copy, not to the message's next run.
    if (name === DEAD_LETTER_REASON_ATTRIBUTE) continue;
    attrs[name] = {
      DataType: a.DataType,
      ...(a.StringValue !== undefined ? { StringValue: a.StringValue } : {}),
      ...(a.BinaryValue !== undefined ? { BinaryValue: a.BinaryValue } : {}),
    };
  }
  const trace = m.Attributes?.AWSTraceHeader;
  // A FIFO DLQ's message (an ordered handler's) goes back with its group, at the end of it. Its
  // deduplication id is the DLQ message's id: the original one (the event id) may still be inside
  // the source queue's 5-minute window, which would drop the copy silently. A standard queue's
  // message keeps its fair-queue group (no deduplication id there).
  const group = m.Attributes?.MessageGroupId;
  const fifo = m.Attributes?.MessageDeduplicationId !== undefined || m.Attributes?.SequenceNumber !== undefined;
  return {
    Id: id,
    MessageBody: m.Body ?? '',
    ...(group ? { MessageGroupId: group } : {}),
    ...(group && fifo ? { MessageDeduplicationId: m.MessageId } : {}),
    ...(Object.keys(attrs).length ? { MessageAttributes: attrs } : {}),
    ...(trace ? { MessageSystemAttributes: { AWSTraceHeader: { DataType: 'String', StringValue: trace } } } : {}),
  };
}

/** Bytes an entry counts toward the batch limit: body plus attribute names, types and values. */
function entryBytes(e: SendMessageBatchRequestEntry): number {
  let n = Buffer.byteLength(e.MessageBody ?? '', 'utf8');
  for (const [name, a] of Object.entries(e.MessageAttributes ?? {})) {
    n += Buffer.byteLength(name, 'utf8') + Buffer.byteLength(a.DataType ?? '', 'utf8');
    n += a.StringValue !== undefined ? Buffer.byteLength(a.StringValue, 'utf8') : a.BinaryValue?.byteLength ?? 0;
  }
  return n;
}

/** Sends copies (sendEntries' batches); per DLQ MessageId: accepted, or the reason it was not. */
async function sendToSource(sqs: SQSClient, pair: DlqPair, sourceUrl: string, msgs: Message[]): Promise<{ ok: Set<string>; failed: Map<string, string> }> {
  const sent = await sendEntries(sqs, pair.queueName, sourceUrl, msgs.map((m, i) => copyEntry(m, String(i))));
  const ok = new Set<string>();
  const failed = new Map<string, string>();
  msgs.forEach((m, i) => {
    // sendEntries reports every entry one way or the other (an unreported one as failed).
    if (sent.ok.has(String(i))) ok.add(m.MessageId!);
    else failed.set(m.MessageId!, sent.failed.get(String(i))!);
  });
  return { ok, failed };
}

/** Deletes messages from the DLQ; returns how many were deleted (failures go to `errors`). */
async function deleteFromDlq(sqs: SQSClient, pair: DlqPair, dlqUrl: string, msgs: Message[], errors: string[]): Promise<number> {
  let deleted = 0;
  for (let i = 0; i < msgs.length; i += 10) {
    const chunk = msgs.slice(i, i + 10);
    try {
      const out = await sqs.send(
        new DeleteMessageBatchCommand({ QueueUrl: dlqUrl, Entries: chunk.map((m, j) => ({ Id: String(j), ReceiptHandle: m.ReceiptHandle! })) }),
      );
      deleted += out.Successful?.length ?? 0;
    } catch (err) {
      errors.push(toAwsError('DeleteMessageBatch', pair.dlqName, err).message);
    }
  }
  return deleted;
}

// ---------------------------------------------------------------------------------------------
// Dump files (`dlq dump`, `dlq requeue`): one JSON object per line, enough to recreate the message.

/** The version of a dump line's shape; a reader refuses lines of another version. */
export const DUMP_VERSION = 1;

/** A message attribute in a dump line: a string value, or a binary one in base64. */
export type DumpAttribute = { dataType: string; stringValue: string } | { dataType: string; binaryBase64: string };

/** One line of a dump file. `event` and `form` are for people reading it; requeue uses the rest. */
export interface DumpRecord {
  v: typeof DUMP_VERSION;
  /** The logical handler queue and the DLQ it was dumped from. */
  queue: string;
  dlqName: string;
  /** The DLQ message's SQS MessageId (a FIFO copy's deduplication id). */
  messageId: string;
  body: string;
  messageAttributes: Record<string, DumpAttribute>;
  /** MessageGroupId (FIFO or fair queue), MessageDeduplicationId (FIFO), AWSTraceHeader; null when absent. */
  groupId: string | null;
  deduplicationId: string | null;
  traceHeader: string | null;
  sentTimestampMs: number | null;
  receiveCount: number | null;
  deadLetterReason: string | null;
  /** The decoded event (as the supervisor would see it) and the body's form. */
  event: CloudEvent;
  form: string;
}

/** A DLQ message as a dump line (without the newline). */
export function toDumpRecord(m: DlqMessage, queue: string, dlqName: string): DumpRecord {
  const attrs: Record<string, DumpAttribute> = {};
  for (const [name, a] of Object.entries(m.raw.MessageAttributes ?? {})) {
    attrs[name] =
      a.BinaryValue !== undefined
        ? { dataType: a.DataType ?? 'Binary', binaryBase64: Buffer.from(a.BinaryValue).toString('base64') }
        : { dataType: a.DataType ?? 'String', stringValue: a.StringValue ?? '' };
  }
  const sys = m.raw.Attributes ?? {};
  return {
    v: DUMP_VERSION,
    queue,
    dlqName,
    messageId: m.messageId,
    body: m.body,
    messageAttributes: attrs,
    groupId: sys.MessageGroupId ?? null,
    deduplicationId: sys.MessageDeduplicationId ?? null,
    traceHeader: sys.AWSTraceHeader ?? null,
    sentTimestampMs: m.sentTimestampMs,
    receiveCount: m.receiveCount,
    deadLetterReason: m.deadLetterReason,
    event: m.event,
    form: m.form,
  };
}

/** Parses and checks one dump line; throws an Error saying what is wrong (the caller adds the line number). */
export function parseDumpRecord(text: string): DumpRecord {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw new Error(`not JSON (${(err as Error).message})`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new Error('not a JSON object');
  const r = v as Record<string, unknown>;
  if (r.v !== DUMP_VERSION) throw new Error(`"v" must be ${DUMP_VERSION} (a dump of this eventbus version), got ${JSON.stringify(r.v)}`);
  if (typeof r.messageId !== 'string' || r.messageId === '') throw new Error('"messageId" must be a non-empty string');
  if (typeof r.body !== 'string' || r.body === '') throw new Error('"body" must be a non-empty string (SQS rejects an empty body)');
  for (const key of ['groupId', 'deduplicationId', 'traceHeader', 'deadLetterReason'] as const) {
    if (r[key] !== undefined && r[key] !== null && typeof r[key] !== 'string') throw new Error(`"${key}" must be a string or null`);
  }
  const attrs = r.messageAttributes ?? {};
  if (typeof attrs !== 'object' || attrs === null || Array.isArray(attrs)) throw new Error('"messageAttributes" must be an object');
  for (const [name, a] of Object.entries(attrs as Record<string, unknown>)) {
    const x = a as Record<string, unknown> | null;
    const ok =
      typeof x === 'object' && x !== null && typeof x.dataType === 'string' && (typeof x.stringValue === 'string' || typeof x.binaryBase64 === 'string');
    if (!ok) throw new Error(`message attribute "${name}" must be {"dataType", "stringValue"} or {"dataType", "binaryBase64"}`);
  }
  return r as unknown as DumpRecord;
}

/**
 * The SendMessageBatch entry that recreates a dumped message, on its handler queue or (`toDlq`) back
 * on its DLQ, as a redrive's copy would be (dlq/ops.ts copyEntry): same body and attributes, its
 * group, a FIFO copy deduplicated by the DLQ message's id (a re-run within SQS's 5-minute window sends
 * nothing twice), the dead-letter reason kept only on the way back to the DLQ.
 */
export function requeueEntry(r: DumpRecord, id: string, o: { toDlq: boolean; fifo: boolean }): SendMessageBatchRequestEntry {
  const attrs: Record<string, MessageAttributeValue> = {};
  for (const [name, a] of Object.entries(r.messageAttributes ?? {})) {
    attrs[name] = 'binaryBase64' in a ? { DataType: a.dataType, BinaryValue: Buffer.from(a.binaryBase64, 'base64') } : { DataType: a.dataType, StringValue: a.stringValue };
  }
  const m: Message = {
    MessageId: r.messageId,
    Body: r.body,
    MessageAttributes: attrs,
    Attributes: {
      ...(r.groupId ? { MessageGroupId: r.groupId } : {}),
      ...(r.deduplicationId ? { MessageDeduplicationId: r.deduplicationId } : {}),
      ...(r.traceHeader ? { AWSTraceHeader: r.traceHeader } : {}),
    },
  };
  const e = copyEntry(m, id);
  if (o.toDlq && attrs[DEAD_LETTER_REASON_ATTRIBUTE]) e.MessageAttributes = { ...(e.MessageAttributes ?? {}), [DEAD_LETTER_REASON_ATTRIBUTE]: attrs[DEAD_LETTER_REASON_ATTRIBUTE] };
  if (o.fifo) {
    e.MessageDeduplicationId ??= r.messageId;
    // A FIFO queue needs a group; a message dumped from a standard DLQ has none.
    e.MessageGroupId ??= r.event?.id ?? r.messageId;
  }
  return e;
}

/** Sends entries (at most 10 and 256 KiB a call); per entry Id: accepted, or why not. Never throws. */
export async function sendEntries(sqs: SQSClient, queueName: string, url: string, entries: SendMessageBatchRequestEntry[]): Promise<{ ok: Set<string>; failed: Map<string, string> }> {
  const ok = new Set<string>();
  const failed = new Map<string, string>();
  const chunks: SendMessageBatchRequestEntry[][] = [];
  let cur: SendMessageBatchRequestEntry[] = [];
  let bytes = 0;
  for (const e of entries) {
    const b = entryBytes(e);
    if (cur.length && (cur.length >= BATCH_MAX_ENTRIES || bytes + b > BATCH_MAX_BYTES)) {
      chunks.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(e);
    bytes += b;
  }
  if (cur.length) chunks.push(cur);
  for (const chunk of chunks) {
    try {
      const out = await sqs.send(new SendMessageBatchCommand({ QueueUrl: url, Entries: chunk }));
      for (const s of out.Successful ?? []) if (s.Id !== undefined) ok.add(s.Id);
      for (const f of out.Failed ?? []) if (f.Id !== undefined) failed.set(f.Id, `${f.Code ?? 'Failed'}: ${f.Message ?? ''}`.trim());
    } catch (err) {
      const why = toAwsError('SendMessageBatch', queueName, err).message;
      for (const e of chunk) failed.set(e.Id!, why);
    }
    for (const e of chunk) if (!ok.has(e.Id!) && !failed.has(e.Id!)) failed.set(e.Id!, 'no result for the entry in the SendMessageBatch response');
  }
  return { ok, failed };
}

// ---------------------------------------------------------------------------------------------
// Native redrive: SQS StartMessageMoveTask, a server-side move from a DLQ to a queue.

/** Status of a message move task, as ListMessageMoveTasks reports it. */
export interface MoveTaskStatus {
  /** RUNNING, COMPLETED, CANCELLING, CANCELLED or FAILED. */
  status: string;
  moved: number;
  /** The DLQ's approximate message count when the task started; null when not reported. */
  toMove: number | null;
  failureReason: string | null;
}

/** Error names of a backend that has no StartMessageMoveTask (fauxqs answers InvalidAction "Unknown action"). */
const UNSUPPORTED = new Set(['InvalidAction', 'UnsupportedOperation', 'UnknownOperationException', 'NotImplemented']);

/** Thrown by startMoveTask when the endpoint does not implement the message move task API. */
export class MoveTaskUnsupportedError extends Error {}

/** The queue's ARN (GetQueueAttributes QueueArn). */
export async function queueArnOf(sqs: SQSClient, queueName: string, url: string): Promise<string> {
  try {
    const out = await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }));
    const arn = out.Attributes?.QueueArn;
    if (!arn) throw new Error('no QueueArn in the response');
    return arn;
  } catch (err) {
    throw toAwsError('GetQueueAttributes', queueName, err);
  }
}

/**
 * Starts a server-side move of every message of the DLQ to the source queue (StartMessageMoveTask;
 * `ratePerSec` → MaxNumberOfMessagesPerSecond, else SQS's own rate). Returns the task handle;
 * MoveTaskUnsupportedError when the endpoint has no such operation.
 */
export async function startMoveTask(sqs: SQSClient, pair: DlqPair, dlqArn: string, sourceArn: string, ratePerSec?: number): Promise<string> {
  try {
    const out = await sqs.send(
      new StartMessageMoveTaskCommand({ SourceArn: dlqArn, DestinationArn: sourceArn, ...(ratePerSec !== undefined ? { MaxNumberOfMessagesPerSecond: ratePerSec } : {}) }),
    );
    if (!out.TaskHandle) throw new Error('no TaskHandle in the response');
    return out.TaskHandle;
  } catch (err) {
    const name = awsErrorName(err);
    if (UNSUPPORTED.has(name) || /unknown (action|operation)/i.test((err as Error)?.message ?? '')) {
      throw new MoveTaskUnsupportedError(`${name}: ${(err as Error).message}`);
    }
    throw toAwsError('StartMessageMoveTask', pair.dlqName, err);
  }
}

/**
 * The status of the task started at `startedMs` (or with this handle) on the DLQ: ListMessageMoveTasks
 * reports the most recent tasks first, and a task's handle only while it runs, so a finished one is
 * recognised by its start time. Null when the list does not show it (yet).
 */
export async function moveTaskStatus(sqs: SQSClient, pair: DlqPair, dlqArn: string, handle: string, startedMs: number): Promise<MoveTaskStatus | null> {
  let results;
  try {
    results = (await sqs.send(new ListMessageMoveTasksCommand({ SourceArn: dlqArn, MaxResults: 10 }))).Results ?? [];
  } catch (err) {
    throw toAwsError('ListMessageMoveTasks', pair.dlqName, err);
  }
  // A finished task has no handle: ours is then the most recent one (one task runs per queue at a
  // time, and SQS lists the newest first), if it started at most a minute (clocks differ) before we
  // asked. An older finished task is never taken for ours.
  const newest = results[0];
  const r = results.find((x) => x.TaskHandle === handle) ?? (newest && !newest.TaskHandle && (newest.StartedTimestamp ?? 0) >= startedMs - 60_000 ? newest : undefined);
  if (!r) return null;
  return {
    status: r.Status ?? 'UNKNOWN',
    moved: r.ApproximateNumberOfMessagesMoved ?? 0,
    toMove: r.ApproximateNumberOfMessagesToMove ?? null,
    failureReason: r.FailureReason ?? null,
  };
}

/** Cancels a running move task (messages moved so far stay moved). */
export async function cancelMoveTask(sqs: SQSClient, pair: DlqPair, handle: string): Promise<number | null> {
  try {
    return (await sqs.send(new CancelMessageMoveTaskCommand({ TaskHandle: handle }))).ApproximateNumberOfMessagesMoved ?? null;
  } catch (err) {
    throw toAwsError('CancelMessageMoveTask', pair.dlqName, err);
  }
}
