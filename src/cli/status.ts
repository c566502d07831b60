// `eventbus status`: depths of every handler's queue and of its DLQ, read with GetQueueAttributes only.
import { builtInHandlers } from '../built-ins.js';
import { GetQueueAttributesCommand, GetQueueUrlCommand, type QueueAttributeName, type SQSClient } from '@aws-sdk/client-sqs';
import type { Command } from 'commander';
import { isNotFound, toAwsError } from '../errors.js';
import { loadHandlers, type ResolvedHandler } from '../handlers.js';
import { commandContext, devHint, type CommonOptions } from './common.js';

/** Depths of one SQS queue. Counts are SQS's Approximate* attributes: eventually consistent, not exact. */
export interface QueueDepth {
  /** SQS name (`<queuePrefix><queue>` or `...-dlq`). */
  queueName: string;
  /** false: the queue does not exist (counts are then null). */
  exists: boolean;
  /** ApproximateNumberOfMessages. */
  visible: number | null;
  /** ApproximateNumberOfMessagesNotVisible (received, not yet deleted or released). */
  inFlight: number | null;
  /** ApproximateNumberOfMessagesDelayed. */
  delayed: number | null;
  /**
   * Age of the oldest message in seconds: always null (unknown). SQS has no queue attribute for it.
   * The real source is CloudWatch's ApproximateAgeOfOldestMessage (AWS/SQS namespace, per queue), which
   * this CLI does not read; on a running supervisor the `eventbus_message_age_seconds` histogram shows
   * the age of messages when their handler starts. Peeking (receiving) would give SentTimestamps, but a
   * receive counts toward maxReceiveCount on a source queue (pushing messages toward the DLQ), and
   * even then ten sampled messages are not the oldest one: `status` never receives.
   */
  oldestAgeSec: number | null;
}

/** One handler's queue (flattened) and its DLQ. `queue` is the logical name. */
export interface QueueStatus extends QueueDepth {
  queue: string;
  dlq: QueueDepth;
}

const DEPTH_ATTRIBUTES: QueueAttributeName[] = [
  'ApproximateNumberOfMessages',
  'ApproximateNumberOfMessagesNotVisible',
  'ApproximateNumberOfMessagesDelayed',
];
/** At most this many GetQueueUrl/GetQueueAttributes calls at once. */
const PARALLEL = 8;

/** The queue's URL, or null when it does not exist. */
export async function queueUrlOrNull(sqs: SQSClient, queueName: string): Promise<string | null> {
  try {
    const out = await sqs.send(new GetQueueUrlCommand({ QueueName: queueName }));
    if (!out.QueueUrl) throw new Error('no QueueUrl in the response');
    return out.QueueUrl;
  } catch (err) {
    if (isNotFound(err)) return null;
    throw toAwsError('GetQueueUrl', queueName, err);
  }
}

/** Reads the depth attributes of one queue; a missing queue is reported, not thrown. */
export async function readDepth(sqs: SQSClient, queueName: string, url?: string | null): Promise<QueueDepth> {
  const missing: QueueDepth = { queueName, exists: false, visible: null, inFlight: null, delayed: null, oldestAgeSec: null };
  const queueUrl = url === undefined ? await queueUrlOrNull(sqs, queueName) : url;
  if (queueUrl === null) return missing;
  let attrs: Partial<Record<string, string>>;
  try {
    attrs = (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: DEPTH_ATTRIBUTES }))).Attributes ?? {};
  } catch (err) {
    if (isNotFound(err)) return missing;
    throw toAwsError('GetQueueAttributes', queueName, err);
  }
  const num = (name: string): number | null => {
    const v = attrs[name];
    const n = v === undefined ? NaN : Number(v);
    return Number.isFinite(n) ? n : null;
  };
  return {
    queueName,
    exists: true,
    visible: num('ApproximateNumberOfMessages'),
    inFlight: num('ApproximateNumberOfMessagesNotVisible'),
    delayed: num('ApproximateNumberOfMessagesDelayed'),
    oldestAgeSec: null,
  };
}

/** Depths of every handler's queue and DLQ, in handler order. */
export async function readStatus(sqs: SQSClient, handlers: ResolvedHandler[]): Promise<QueueStatus[]> {
  return mapLimit(handlers, PARALLEL, async (h) => {
    const [source, dlq] = await Promise.all([readDepth(sqs, h.queueName), readDepth(sqs, h.dlqName)]);
    return { queue: h.queue, ...source, dlq };
  });
}

/** Messages a DLQ holds in any state (visible, in flight, delayed). */
export function dlqHeld(s: QueueStatus): number {
  return (s.dlq.visible ?? 0) + (s.dlq.inFlight ?? 0) + (s.dlq.delayed ?? 0);
}

/** The status table: aligned columns, numbers right-aligned; `missing` for a queue that does not exist. */
export function formatStatusTable(rows: QueueStatus[]): string {
  const n = (q: QueueDepth, v: number | null): string => (!q.exists ? 'missing' : v === null ? '?' : String(v));
  const age = (q: QueueDepth): string => (!q.exists ? 'missing' : q.oldestAgeSec === null ? '-' : `${q.oldestAgeSec}s`);
  const header = ['QUEUE', 'VISIBLE', 'IN FLIGHT', 'DELAYED', 'OLDEST', 'DLQ VISIBLE', 'DLQ IN FLIGHT'];
  const body = rows.map((r) => [r.queue, n(r, r.visible), n(r, r.inFlight), n(r, r.delayed), age(r), n(r.dlq, r.dlq.visible), n(r.dlq, r.dlq.inFlight)]);
  const all = [header, ...body];
  const widths = header.map((_, i) => Math.max(...all.map((row) => row[i]!.length)));
  const line = (row: string[]) =>
    row
      .map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  return all.map(line).join('\n');
}

export interface StatusOptions extends CommonOptions {
  json?: boolean;
  failOnDlq?: boolean;
}

/** Registers `status` on the program; `common` adds --config/--dev/--dev-port. */
export function registerStatus(program: Command, common: (cmd: Command) => Command): void {
  common(
    program
      .command('status')
      .description('depths of every handler queue and its DLQ: visible, in flight, delayed (never receives a message)')
      .option('--json', 'print a JSON array, one object per handler queue with its DLQ under `dlq`')
      .option('--fail-on-dlq', 'exit 1 when any DLQ holds messages (for cron jobs and CI checks)')
      .addHelpText(
        'after',
        [
          '',
          'OLDEST (oldestAgeSec in --json) is "-" / null: SQS has no attribute for the age of the oldest',
          'message. Read CloudWatch ApproximateAgeOfOldestMessage (AWS/SQS) for it, or the supervisor\'s',
          'eventbus_message_age_seconds histogram. Counts are SQS approximations. Exit status 1 when a',
          'queue is missing (run `eventbus provision`) or, with --fail-on-dlq, when a DLQ holds messages.',
        ].join('\n'),
      ),
  ).action(async (o: StatusOptions) => {
    await runStatus(o);
  });
}

export async function runStatus(o: StatusOptions): Promise<void> {
  const ctx = commandContext(o);
  const handlers = await loadHandlers(ctx.config, builtInHandlers(ctx.config));
  let rows: QueueStatus[];
  try {
    rows = await readStatus(ctx.clients().sqs, handlers);
  } catch (err) {
    const hint = devHint(err, o.dev);
    if (hint) (err as Error).message += hint;
    throw err;
  }
  if (o.json) {
    process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
  } else if (rows.length === 0) {
    process.stdout.write(`no handlers in ${ctx.config.handlersDir}\n`);
  } else {
    process.stdout.write(`${formatStatusTable(rows)}\n`);
    process.stdout.write('OLDEST "-": not known from SQS (CloudWatch ApproximateAgeOfOldestMessage has it)\n');
  }
  const missing = rows.flatMap((r) => [r, r.dlq].filter((q) => !q.exists).map((q) => q.queueName));
  if (missing.length) {
    process.stderr.write(`eventbus: missing queues: ${missing.join(', ')} (run \`eventbus provision\`)\n`);
    process.exitCode = 1;
  }
  if (o.failOnDlq) {
    const held = rows.filter((r) => dlqHeld(r) > 0);
    if (held.length) {
      process.stderr.write(`eventbus: DLQs hold messages: ${held.map((r) => `${r.dlq.queueName} (${dlqHeld(r)})`).join(', ')}\n`);
      process.exitCode = 1;
    }
  }
}

/** Maps with at most `limit` calls running at once; results in input order. */
async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
