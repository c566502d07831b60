// `eventbus dlq peek|redrive|purge QUEUE`: look at, move back or delete what ended in `<queuePrefix><queue>-dlq`.
import { builtInHandlers } from '../built-ins.js';
import {
  ChangeMessageVisibilityBatchCommand,
  DeleteMessageBatchCommand,
  PurgeQueueCommand,
  ReceiveMessageCommand,
  SendMessageBatchCommand,
  type Message,
  type MessageAttributeValue,
  type SendMessageBatchRequestEntry,
  type SQSClient,
} from '@aws-sdk/client-sqs';
import cliProgress from 'cli-progress';
import { Option, type Command } from 'commander';
import { createInterface } from 'node:readline/promises';
import { EventBusError, describeError, toAwsError } from '../errors.js';
import { loadHandlers, type ResolvedHandler } from '../handlers.js';
import { DEAD_LETTER_REASON_ATTRIBUTE, decodeMessage, findPointer, pointerUri, type PayloadPointer } from '../event/index.js';
import { lazyPayloadStore, s3SettingsOf, type PayloadStore } from '../payloads/index.js';
import { UsageError, commandContext, devHint, type CommonOptions } from './common.js';
import { queueUrlOrNull, readDepth } from './status.js';
import { openConfiguredArchive } from './events.js';
import { takeRunLock } from '../archive/lock.js';
import type { ArchiveStore } from '../archive/index.js';

/** `--max` default of both subcommands. */
export const DEFAULT_MAX = 10;
/**
 * Peek hides what it received for this long while it keeps receiving (so the next receive returns
 * other messages), then releases everything with visibility 0. If the CLI dies, they come back by
 * themselves after this.
 */
const PEEK_HIDE_SEC = 30;
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

interface DlqOptions extends CommonOptions {
  max?: string;
  all?: boolean;
}

/** Parses --max: a positive integer, else a usage error (exit 2). */
export function parseMax(v: string | undefined): number {
  if (v === undefined) return DEFAULT_MAX;
  if (!/^\d+$/.test(v.trim()) || Number(v) < 1 || !Number.isSafeInteger(Number(v))) {
    throw new UsageError(`--max must be a positive integer, got "${v}"`);
  }
  return Number(v);
}

/** The handler that owns logical queue `name`, or ERR_QUEUE_NOT_FOUND listing the known ones. */
export function findHandler(handlers: ResolvedHandler[], name: string): ResolvedHandler {
  const h = handlers.find((x) => x.queue === name);
  if (h) return h;
  const known = handlers.map((x) => x.queue).sort();
  throw new EventBusError(
    'ERR_QUEUE_NOT_FOUND',
    `unknown queue "${name}": no handler owns it (known queues: ${known.join(', ') || 'none'}; use the logical name, without prefix or -dlq)`,
  );
}

/** Registers `dlq peek`, `dlq redrive` and `dlq purge`; `common` adds --config/--dev/--dev-port to each. */
export function registerDlq(program: Command, common: (cmd: Command) => Command): void {
  const dlq = program.command('dlq').description("inspect a handler queue's dead-letter queue (<queue>-dlq) and move its messages back");

  common(
    dlq
      .command('peek')
      .description('print messages of <queue>-dlq without consuming them (each read increments their ApproximateReceiveCount)')
      .argument('<queue>', 'logical handler queue name (without queuePrefix or -dlq)')
      .option('--max <n>', 'print at most n messages', String(DEFAULT_MAX))
      .option('--raw', 'also print each raw SQS message body')
      .addHelpText(
        'after',
        [
          '',
          'Peeking receives the messages (hidden for up to 30 s while the peek runs) and then makes them',
          'visible again at once. A receive increments ApproximateReceiveCount; a DLQ has no redrive',
          'policy, so that is harmless there. Messages being peeked are briefly invisible to a redrive.',
        ].join('\n'),
      ),
  ).action(async (queue: string, o: DlqOptions & { raw?: boolean }) => {
    const max = parseMax(o.max);
    const { sqs, handler, dlqUrl } = await resolve(queue, o);
    const ctx = commandContext(o);
    try {
      const n = await peek(sqs, handler, dlqUrl, max, o.raw === true, lazyPayloadStore(s3SettingsOf(ctx.aws, ctx.config)));
      process.stdout.write(n === 0 ? `${handler.dlqName} is empty\n` : `${n} message${n === 1 ? '' : 's'} shown; still in ${handler.dlqName}\n`);
    } catch (err) {
      throw withHint(err, o.dev);
    }
  });

  common(
    dlq
      .command('redrive')
      .description('move messages from <queue>-dlq back to <queue>: copy (same body and message attributes), then delete from the DLQ')
      .argument('<queue>', 'logical handler queue name (without queuePrefix or -dlq)')
      .option('--max <n>', 'move at most n messages', String(DEFAULT_MAX))
      .addOption(new Option('--all', 'move every message, until a receive finds nothing new (instead of --max)').conflicts('max'))
      .addHelpText(
        'after',
        [
          '',
          'Each message is deleted from the DLQ only after SQS accepted its copy on the source queue; a',
          'message whose send failed stays in the DLQ. A redriven message gets a new SQS MessageId and',
          'its receive count starts again; the event (and its id) in the body is unchanged. Exit 1 when',
          'any message failed.',
          '',
          'One redrive per queue runs at a time when the archive is on (archive.enabled): a second one exits 1',
          'naming the first (a lock in the archive store, freed when the first ends, or 60 s after its last',
          'heartbeat if it died). Without an archive a concurrent redrive is not detected: run one at a time.',
        ].join('\n'),
      ),
  ).action(async (queue: string, o: DlqOptions) => {
    const max = o.all ? Infinity : parseMax(o.max);
    const lock = await redriveLock(queue, o);
    try {
      await redriveCommand(queue, o, max);
    } finally {
      await lock?.release();
    }
  });

  common(
    dlq
      .command('purge')
      .description('delete every message of <queue>-dlq (SQS PurgeQueue on the DLQ only); asks first on a terminal')
      .argument('<queue>', 'logical handler queue name (without queuePrefix or -dlq)')
      .option('--yes', 'do not ask (required when stdin or stderr is not a terminal)')
      .addHelpText(
        'after',
        [
          '',
          'The messages are gone for good: `dlq peek` or the archive (GET /events) first if you may need them.',
          'SQS deletes them within 60 s of the call and allows one purge per queue every 60 s; messages sent',
          'to the DLQ during that minute may be deleted too. Without a terminal and without --yes it',
          'refuses (exit 2). Needs sqs:PurgeQueue on the DLQ (an operator permission, not the worker\'s).',
        ].join('\n'),
      ),
  ).action(async (queue: string, o: CommonOptions & { yes?: boolean }) => {
    const interactive = process.stdin.isTTY === true && process.stderr.isTTY === true;
    if (!o.yes && !interactive) throw new UsageError('dlq purge deletes messages for good and there is no terminal to ask on: add --yes');
    const { sqs, handler, dlqUrl } = await resolve(queue, o);
    const held = await readDepth(sqs, handler.dlqName, dlqUrl).catch((err: unknown) => {
      throw withHint(err, o.dev);
    });
    const count = (held.visible ?? 0) + (held.inFlight ?? 0) + (held.delayed ?? 0);
    if (!o.yes && !(await confirm(`purge ${handler.dlqName}: delete its ~${count} message(s) for good? [y/N] `))) {
      process.stderr.write(`eventbus: not purged; ${handler.dlqName} is unchanged\n`);
      process.exitCode = 1;
      return;
    }
    try {
      await sqs.send(new PurgeQueueCommand({ QueueUrl: dlqUrl }));
    } catch (err) {
      throw withHint(toAwsError('PurgeQueue', handler.dlqName, err), o.dev);
    }
    process.stdout.write(`purged ${handler.dlqName} (~${count} message(s)); SQS deletes them within 60 s\n`);
  });
}

/** Asks a yes/no question on the terminal (stderr, so stdout stays data); only "y" or "yes" is a yes. */
async function confirm(question: string): Promise<boolean> {
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return /^y(es)?$/i.test((await rl.question(question)).trim());
  } finally {
    rl.close();
  }
}

/**
 * The redrive lock of a queue in the archive store, or null (with an advisory on stderr) when
 * there is no archive to hold it. Two redrives of one DLQ could each copy a message the other has
 * not deleted yet: a duplicate.
 */
async function redriveLock(queue: string, o: DlqOptions): Promise<{ release(): Promise<void> } | null> {
  const ctx = commandContext(o);
  const h = findHandler(await loadHandlers(ctx.config, builtInHandlers(ctx.config)), queue);
  const advisory = (why: string) => {
    process.stderr.write(`eventbus: note: ${why}, so a second redrive of ${h.dlqName} running at the same time is not detected: run one at a time\n`);
    return null;
  };
  if (!ctx.config.archive.enabled) return advisory('no archive store holds a redrive lock (archive.enabled is off)');
  let store: ArchiveStore;
  try {
    store = await openConfiguredArchive(o);
  } catch (err) {
    return advisory(`the archive store cannot hold a redrive lock (${(err as Error).message})`);
  }
  try {
    const held = await takeRunLock(store, `redrive:${h.dlqName}`, `redrive of ${h.dlqName}`);
    return { release: () => held.release().finally(() => store.close()) };
  } catch (err) {
    await store.close();
    throw err;
  }
}

async function redriveCommand(queue: string, o: DlqOptions, max: number): Promise<void> {
  const { sqs, handler, dlqUrl } = await resolve(queue, o);
  const sourceUrl = await queueUrlOrNull(sqs, handler.queueName).catch((err: unknown) => {
    throw withHint(err, o.dev);
  });
  if (sourceUrl === null) {
    throw new EventBusError('ERR_QUEUE_NOT_FOUND', `queue ${handler.queueName} does not exist (run \`eventbus provision\`)`);
  }
  let r: RedriveResult;
  try {
    r = await redrive(sqs, handler, dlqUrl, sourceUrl, max);
  } catch (err) {
    throw withHint(err, o.dev);
  }
  for (const e of r.errors) process.stderr.write(`eventbus: ${e}\n`);
  if (r.notDeleted > 0) {
    process.stderr.write(
      `eventbus: ${r.notDeleted} message(s) were copied to ${handler.queueName} but could not be deleted from ${handler.dlqName}: ` +
        'they are now in both queues (a later redrive moves them again; handlers are idempotent)\n',
    );
  }
  process.stdout.write(`moved ${r.moved}, failed ${r.failed}\n`);
  if (r.failed > 0 || r.notDeleted > 0) process.exitCode = 1;
}

async function resolve(queue: string, o: CommonOptions): Promise<{ sqs: SQSClient; handler: ResolvedHandler; dlqUrl: string }> {
  const ctx = commandContext(o);
  const handler = findHandler(await loadHandlers(ctx.config, builtInHandlers(ctx.config)), queue);
  const sqs = ctx.clients().sqs;
  let dlqUrl: string | null;
  try {
    dlqUrl = await queueUrlOrNull(sqs, handler.dlqName);
  } catch (err) {
    throw withHint(err, o.dev);
  }
  if (dlqUrl === null) throw new EventBusError('ERR_QUEUE_NOT_FOUND', `queue ${handler.dlqName} does not exist (run \`eventbus provision\`)`);
  return { sqs, handler, dlqUrl };
}

function withHint(err: unknown, dev: boolean | undefined): unknown {
  const hint = devHint(err, dev);
  if (hint && err instanceof Error && !err.message.endsWith(hint)) err.message += hint;
  return err;
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
async function release(sqs: SQSClient, queueName: string, url: string, handles: Map<string, string>): Promise<string[]> {
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

/**
 * Prints up to `max` messages of the DLQ and leaves them there. Each receive keeps what it got hidden
 * (PEEK_HIDE_SEC) so the next receive returns other messages; a message seen again (an SQS duplicate,
 * or one whose hiding ran out) is skipped by MessageId; the peek stops at `max`, on an empty receive, or
 * on a receive of only already-seen messages. Everything is released (visibility 0) at the end, also
 * on failure.
 */
export async function peek(sqs: SQSClient, h: ResolvedHandler, dlqUrl: string, max: number, raw: boolean, payloads?: PayloadStore): Promise<number> {
  const held = new Map<string, string>(); // MessageId -> latest receipt handle
  let shown = 0;
  try {
    while (shown < max) {
      const msgs = await receive(sqs, h.dlqName, dlqUrl, max - shown, PEEK_HIDE_SEC);
      let fresh = 0;
      for (const m of msgs) {
        const seen = held.has(m.MessageId!);
        held.set(m.MessageId!, m.ReceiptHandle!);
        if (seen || shown >= max) continue;
        fresh++;
        shown++;
        process.stdout.write(formatMessage(m, shown, h, raw, await offloaded(m, payloads)));
      }
      if (fresh === 0) break;
    }
  } finally {
    for (const p of await release(sqs, h.dlqName, dlqUrl, held)) process.stderr.write(`eventbus: ${p}\n`);
  }
  return shown;
}

/** An offloaded message's pointer, and its payload read from S3 (or why not); null for others. */
export interface Offloaded {
  pointer: PayloadPointer;
  payload?: string;
  error?: string;
}

/** Reads the payload of a peeked message that is a pointer (a claim check on S3). */
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

/** One peeked message as readable text: header, decoded event, message attributes, optionally the raw body. */
export function formatMessage(m: Message, n: number, h: ResolvedHandler, raw: boolean, off: Offloaded | null = null): string {
  const sys = m.Attributes ?? {};
  const sentMs = sys.SentTimestamp !== undefined ? Number(sys.SentTimestamp) : undefined;
  const { event, form } = decodeMessage({
    messageId: m.MessageId!,
    body: m.Body ?? '',
    attributes: stringAttributes(m.MessageAttributes),
    sentTimestampMs: sentMs,
    queueArn: h.dlqName,
    payload: off?.payload,
  });
  const lines = [
    `--- #${n} message ${m.MessageId}`,
    `  receive count: ${sys.ApproximateReceiveCount ?? '?'}`,
    `  sent:          ${sentMs !== undefined && Number.isFinite(sentMs) ? `${new Date(sentMs).toISOString()} (SentTimestamp ${sentMs})` : '?'}`,
    `  event type:    ${event.type ?? '(none)'}`,
    `  event id:      ${event.id}`,
    `  body form:     ${form}`,
    ...(off
      ? [`  offloaded:     ${pointerUri(off.pointer)}${off.pointer.bytes !== null ? ` (${off.pointer.bytes} bytes)` : ''}${off.error !== undefined ? `, not read: ${off.error}` : ''}`]
      : []),
    `  data:          ${shorten(safeJson(event.data))}`,
  ];
  const reason = m.MessageAttributes?.[DEAD_LETTER_REASON_ATTRIBUTE]?.StringValue;
  if (reason !== undefined) lines.push(`  dead-lettered: at once, ${reason}`);
  const attrs = Object.entries(m.MessageAttributes ?? {});
  lines.push(`  attributes:    ${attrs.length === 0 ? '(none)' : ''}`.trimEnd());
  for (const [name, a] of attrs) lines.push(`    ${name} (${a.DataType ?? '?'}): ${attributeText(a)}`);
  if (raw) lines.push(`  raw body:      ${m.Body ?? ''}`);
  return `${lines.join('\n')}\n`;
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

/** Data of a peeked message, at most this many characters (an offloaded event's data can be megabytes). */
const PEEK_DATA_CHARS = 2_000;

function shorten(s: string): string {
  return s.length > PEEK_DATA_CHARS ? `${s.slice(0, PEEK_DATA_CHARS)}… (${s.length} characters)` : s;
}

function safeJson(v: unknown): string {
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

export interface RedriveResult {
  moved: number;
  failed: number;
  /** Copied to the source queue but not deleted from the DLQ (now in both). Counted in `moved` too. */
  notDeleted: number;
  errors: string[];
}

/**
 * Moves up to `max` messages (Infinity: all) from the DLQ back to the source queue: SendMessageBatch with the same body
 * and every message attribute, and only for the entries SQS accepted, DeleteMessageBatch from the DLQ.
 * A message whose send failed stays in the DLQ: it is kept hidden until the end (so it is not received
 * again in this run) and then made visible again. Stops at `max` or when a receive finds nothing new.
 *
 * SQS has a native redrive, StartMessageMoveTask (server-side, asynchronous, rate-limited with
 * MaxNumberOfMessagesPerSecond, tracked with ListMessageMoveTasks). It is not used: fauxqs 1.9.2 (the
 * embedded emulator of `npm start` and the tests) does not implement it, it has no "at most N"
 * limit, and its progress cannot be reported per message. Copy-then-delete is at-least-once like the
 * bus: a delete that fails after a successful copy leaves a duplicate, never a loss.
 */
export async function redrive(sqs: SQSClient, h: ResolvedHandler, dlqUrl: string, sourceUrl: string, max: number): Promise<RedriveResult> {
  const result: RedriveResult = { moved: 0, failed: 0, notDeleted: 0, errors: [] };
  const failedHeld = new Map<string, string>(); // MessageId -> latest receipt handle
  const moved = new Set<string>();
  const reasons = new Map<string, number>();
  // With no limit (--all) and no count from SQS the bar starts at 1 and grows with what is done.
  const progress = createProgress(h, await readDepth(sqs, h.dlqName, dlqUrl).then((d) => Math.min(max, d.visible ?? (Number.isFinite(max) ? max : 0))));
  try {
    while (result.moved + result.failed < max) {
      const msgs = await receive(sqs, h.dlqName, dlqUrl, max - result.moved - result.failed, REDRIVE_HIDE_SEC);
      const fresh: Message[] = [];
      const again: Message[] = [];
      for (const m of msgs) {
        const id = m.MessageId!;
        if (failedHeld.has(id)) failedHeld.set(id, m.ReceiptHandle!);
        else if (moved.has(id)) again.push(m);
        else fresh.push(m);
      }
      // Already copied in this run (an SQS duplicate, or a delete that failed before): delete, do not copy again.
      if (again.length) await deleteFromDlq(sqs, h, dlqUrl, again);
      if (fresh.length === 0) break;

      const sent = await sendToSource(sqs, h, sourceUrl, fresh);
      const ok = fresh.filter((m) => sent.ok.has(m.MessageId!));
      for (const m of fresh) {
        const why = sent.failed.get(m.MessageId!);
        if (why === undefined) continue;
        result.failed++;
        failedHeld.set(m.MessageId!, m.ReceiptHandle!);
        reasons.set(why, (reasons.get(why) ?? 0) + 1);
      }
      for (const m of ok) moved.add(m.MessageId!);
      result.moved += ok.length;
      result.notDeleted += ok.length - (await deleteFromDlq(sqs, h, dlqUrl, ok));
      progress.update(result.moved + result.failed, result, ok.length, fresh.length - ok.length);
    }
  } finally {
    progress.stop();
    result.errors.push(...(await release(sqs, h.dlqName, dlqUrl, failedHeld)));
  }
  for (const [why, n] of reasons) result.errors.unshift(`${n} message(s) could not be sent to ${h.queueName} and stay in ${h.dlqName}: ${why}`);
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

/** Sends copies in batches of at most 10 entries and 256 KiB; per message: accepted, or the reason it was not. */
async function sendToSource(
  sqs: SQSClient,
  h: ResolvedHandler,
  sourceUrl: string,
  msgs: Message[],
): Promise<{ ok: Set<string>; failed: Map<string, string> }> {
  const ok = new Set<string>();
  const failed = new Map<string, string>();
  const entries = msgs.map((m, i) => ({ m, e: copyEntry(m, String(i)) }));
  const chunks: Array<typeof entries> = [];
  let cur: typeof entries = [];
  let bytes = 0;
  for (const x of entries) {
    const b = entryBytes(x.e);
    if (cur.length && (cur.length >= BATCH_MAX_ENTRIES || bytes + b > BATCH_MAX_BYTES)) {
      chunks.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(x);
    bytes += b;
  }
  if (cur.length) chunks.push(cur);
  for (const chunk of chunks) {
    const byId = new Map(chunk.map((x) => [x.e.Id!, x.m.MessageId!]));
    try {
      const out = await sqs.send(new SendMessageBatchCommand({ QueueUrl: sourceUrl, Entries: chunk.map((x) => x.e) }));
      for (const s of out.Successful ?? []) {
        const id = byId.get(s.Id ?? '');
        if (id !== undefined) ok.add(id);
      }
      for (const f of out.Failed ?? []) {
        const id = byId.get(f.Id ?? '');
        if (id !== undefined) failed.set(id, `${f.Code ?? 'Failed'}: ${f.Message ?? ''}`.trim());
      }
    } catch (err) {
      const why = toAwsError('SendMessageBatch', h.queueName, err).message;
      for (const id of byId.values()) failed.set(id, why);
    }
    // An entry SQS reported neither way is not known to be sent: treat it as failed (it stays in the DLQ).
    for (const id of byId.values()) if (!ok.has(id) && !failed.has(id)) failed.set(id, 'no result for the entry in the SendMessageBatch response');
  }
  return { ok, failed };
}

/** Deletes messages from the DLQ; returns how many were deleted. */
async function deleteFromDlq(sqs: SQSClient, h: ResolvedHandler, dlqUrl: string, msgs: Message[]): Promise<number> {
  let deleted = 0;
  for (let i = 0; i < msgs.length; i += 10) {
    const chunk = msgs.slice(i, i + 10);
    try {
      const out = await sqs.send(
        new DeleteMessageBatchCommand({ QueueUrl: dlqUrl, Entries: chunk.map((m, j) => ({ Id: String(j), ReceiptHandle: m.ReceiptHandle! })) }),
      );
      deleted += out.Successful?.length ?? 0;
    } catch (err) {
      process.stderr.write(`eventbus: ${toAwsError('DeleteMessageBatch', h.dlqName, err).message}\n`);
    }
  }
  return deleted;
}

interface Progress {
  update(done: number, r: RedriveResult, movedNow: number, failedNow: number): void;
  stop(): void;
}

/** A cli-progress bar on a terminal; plain lines (one per batch) otherwise. */
function createProgress(h: ResolvedHandler, estimate: number): Progress {
  if (!process.stdout.isTTY) {
    return {
      update(done, r, movedNow, failedNow) {
        process.stdout.write(`${h.dlqName} -> ${h.queueName}: batch +${movedNow} moved, +${failedNow} failed (${done} done)\n`);
      },
      stop() {},
    };
  }
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stdout,
      format: `${h.dlqName} -> ${h.queueName} [{bar}] {value}/{total} | moved {moved}, failed {failed}`,
      hideCursor: true,
    },
    cliProgress.Presets.shades_classic,
  );
  let total = Math.max(estimate, 1);
  let last = 0;
  bar.start(total, 0, { moved: 0, failed: 0 });
  return {
    update(done, r) {
      if (done > total) bar.setTotal((total = done));
      last = done;
      bar.update(done, { moved: r.moved, failed: r.failed });
    },
    stop() {
      // The estimate was SQS's approximate count: end the bar at what was actually done.
      if (last > 0 && last !== total) bar.setTotal(last);
      bar.stop();
    },
  };
}
