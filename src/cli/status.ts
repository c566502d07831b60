// `eventbus status`: depths of every handler's queue and of its DLQ, read with GetQueueAttributes only;
// the queues from the handlers, `--queues`, or (no compiled handlers) the queues of `queuePrefix`;
// the oldest message's age from CloudWatch (`--cloudwatch`) or a supervisor's /metrics (`--metrics-url`).
import { builtInHandlers } from '../built-ins.js';
import { GetQueueAttributesCommand, GetQueueUrlCommand, ListQueuesCommand, type QueueAttributeName, type SQSClient } from '@aws-sdk/client-sqs';
import { Option, type Command } from 'commander';
import { EventBusError, isNotFound, toAwsError } from '../errors.js';
import { loadHandlers, type ResolvedHandler } from '../handlers.js';
import { QUEUE_NAME_RE } from '../aws.js';
import { commandContext, devHint, UsageError, type CommonOptions } from './common.js';
import { ageFromCloudWatch, ageFromMetrics, type AgeReading } from './status-age.js';

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
   * Age of the oldest message in seconds, null when unknown. SQS has no queue attribute for it: with
   * `--cloudwatch`, CloudWatch's ApproximateAgeOfOldestMessage (AWS/SQS, the latest 1-minute Maximum);
   * with `--metrics-url`, the supervisor's `eventbus_message_age_seconds` histogram: the upper bound
   * of its highest non-empty bucket, i.e. the largest age at receive (SentTimestamp to handler start)
   * since that supervisor started, an approximation. Peeking (receiving) would give SentTimestamps,
   * but a receive counts toward maxReceiveCount: `status` never receives.
   */
  oldestAgeSec: number | null;
  /** Where oldestAgeSec came from; null: not asked, or not available (oldestAgeNote says why). */
  oldestAgeSource: 'cloudwatch' | 'metrics' | null;
  /** What oldestAgeSec means (`Maximum at <time>`, `age at receive <= 15 s ...`), or why it is null. */
  oldestAgeNote: string | null;
}

/** One handler's queue (flattened) and its DLQ. `queue` is the logical name. */
export interface QueueStatus extends QueueDepth {
  queue: string;
  dlq: QueueDepth;
}

/** A DLQ's name: `<queue>-dlq` (before `.fifo`), as the handler loader names it. */
const DLQ_SUFFIX = '-dlq';

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
  const missing: QueueDepth = { queueName, exists: false, visible: null, inFlight: null, delayed: null, oldestAgeSec: null, oldestAgeSource: null, oldestAgeNote: null };
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
    oldestAgeSource: null,
    oldestAgeNote: null,
  };
}

/** A queue to report: its logical name, its SQS name and its DLQ's. */
export type StatusTarget = Pick<ResolvedHandler, 'queue' | 'queueName' | 'dlqName'>;

/** Depths of every queue and DLQ, in the given order. */
export async function readStatus(sqs: SQSClient, handlers: readonly StatusTarget[]): Promise<QueueStatus[]> {
  return mapLimit(handlers, PARALLEL, async (h) => {
    const [source, dlq] = await Promise.all([readDepth(sqs, h.queueName), readDepth(sqs, h.dlqName)]);
    return { queue: h.queue, ...source, dlq };
  });
}

/** Messages a DLQ holds in any state (visible, in flight, delayed). */
export function dlqHeld(s: QueueStatus): number {
  return (s.dlq.visible ?? 0) + (s.dlq.inFlight ?? 0) + (s.dlq.delayed ?? 0);
}

/** `--queues a,b`: logical names with the prefix; `x.fifo` is an ordered handler's queue (DLQ `x-dlq.fifo`). */
export function targetsOfNames(names: string[], queuePrefix: string): StatusTarget[] {
  return names.map((raw) => {
    const fifo = raw.endsWith('.fifo');
    const queue = fifo ? raw.slice(0, -'.fifo'.length) : raw;
    const suffix = fifo ? '.fifo' : '';
    if (!QUEUE_NAME_RE.test(`${queuePrefix}${queue}${DLQ_SUFFIX}`)) throw new UsageError(`--queues: "${raw}" is not a queue name (A-Z a-z 0-9 _ -, at most 80 with the prefix and -dlq)`);
    return { queue: raw, queueName: `${queuePrefix}${queue}${suffix}`, dlqName: `${queuePrefix}${queue}${DLQ_SUFFIX}${suffix}` };
  });
}

/**
 * The provisioned topology: every queue named `<queuePrefix>...` (ListQueues) that has its DLQ
 * (`<q>-dlq`, `<q>-dlq.fifo` for `<q>.fifo`), as provision makes them; queues without one are not
 * eventbus's and are skipped (counted). Sorted by name.
 */
export async function discoverTargets(sqs: SQSClient, queuePrefix: string): Promise<{ targets: StatusTarget[]; skipped: string[] }> {
  const names: string[] = [];
  let next: string | undefined;
  do {
    let page;
    try {
      page = await sqs.send(new ListQueuesCommand({ ...(queuePrefix ? { QueueNamePrefix: queuePrefix } : {}), MaxResults: 1000, NextToken: next }));
    } catch (err) {
      throw toAwsError('ListQueues', queuePrefix || '(every queue)', err);
    }
    for (const url of page.QueueUrls ?? []) {
      const name = url.slice(url.lastIndexOf('/') + 1);
      // QueueNamePrefix is a prefix filter on AWS; checked again for endpoints that ignore it.
      if (name.startsWith(queuePrefix)) names.push(name);
    }
    next = page.NextToken;
  } while (next);
  const all = new Set(names);
  const dlqOf = (name: string) => (name.endsWith('.fifo') ? `${name.slice(0, -5)}${DLQ_SUFFIX}.fifo` : `${name}${DLQ_SUFFIX}`);
  const isDlq = (name: string) => name.endsWith(DLQ_SUFFIX) || name.endsWith(`${DLQ_SUFFIX}.fifo`);
  const targets: StatusTarget[] = [];
  const skipped: string[] = [];
  for (const name of [...all].sort()) {
    if (isDlq(name) && all.has(name.replace(/-dlq(\.fifo)?$/, '$1'))) continue;
    if (!all.has(dlqOf(name))) {
      skipped.push(name);
      continue;
    }
    targets.push({ queue: name.slice(queuePrefix.length), queueName: name, dlqName: dlqOf(name) });
  }
  return { targets, skipped };
}

/** The status table: aligned columns, numbers right-aligned; `missing` for a queue that does not exist. */
export function formatStatusTable(rows: QueueStatus[]): string {
  const n = (q: QueueDepth, v: number | null): string => (!q.exists ? 'missing' : v === null ? '?' : String(v));
  // From the metrics histogram the age is a bucket's upper bound: "<=".
  const age = (q: QueueDepth): string =>
    !q.exists ? 'missing' : q.oldestAgeSec === null ? (q.oldestAgeNote ? 'n/a' : '-') : `${q.oldestAgeSource === 'metrics' ? '<=' : ''}${formatSeconds(q.oldestAgeSec)}`;
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

/** `90` -> `90s`, `5400` -> `1h30m`: whole seconds, the two largest units. */
function formatSeconds(sec: number): string {
  const s = Math.round(sec);
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m${s % 60 ? `${s % 60}s` : ''}`;
  if (s < 172_800) return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60) ? `${Math.floor((s % 3600) / 60)}m` : ''}`;
  return `${Math.floor(s / 86_400)}d${Math.floor((s % 86_400) / 3600) ? `${Math.floor((s % 86_400) / 3600)}h` : ''}`;
}

export interface StatusOptions extends CommonOptions {
  json?: boolean;
  failOnDlq?: boolean;
  queues?: string;
  cloudwatch?: boolean;
  metricsUrl?: string;
}

/** Registers `status` on the program; `common` adds --config/--dev/--dev-port. */
export function registerStatus(program: Command, common: (cmd: Command) => Command): void {
  common(
    program
      .command('status')
      .description('depths of every handler queue and its DLQ: visible, in flight, delayed (never receives a message)')
      .option('--json', 'print a JSON array, one object per handler queue with its DLQ under `dlq`')
      .option('--fail-on-dlq', 'exit 1 when any DLQ holds messages (for cron jobs and CI checks)')
      .option('--queues <names>', 'these queues (comma-separated handler queue names, without queuePrefix) instead of the handlers\'')
      .option('--cloudwatch', 'OLDEST from CloudWatch ApproximateAgeOfOldestMessage (needs cloudwatch:GetMetricData)')
      .addOption(new Option('--metrics-url <url>', "OLDEST from a running supervisor's /metrics (eventbus_message_age_seconds), e.g. http://10.0.0.5:9464/metrics"))
      .addHelpText(
        'after',
        [
          '',
          'Queues: the handlers\' (handlersDir). Without compiled handlers (the folder missing or empty, e.g. on',
          'an operator\'s machine) the provisioned topology: every queue named <queuePrefix>... that has its',
          '<name>-dlq (ListQueues, needs sqs:ListQueues). --queues names them instead.',
          '',
          'OLDEST (oldestAgeSec in --json) is the age of the oldest message, which SQS does not report with',
          'the depths. It is "-" unless asked for:',
          '  --cloudwatch       CloudWatch ApproximateAgeOfOldestMessage (AWS/SQS): the latest 1-minute',
          '                     Maximum of the last 15 minutes; "n/a" with the reason when CloudWatch has',
          '                     none or cannot be reached (an emulator has none): still exit 0.',
          '  --metrics-url URL  the supervisor\'s eventbus_message_age_seconds histogram: its age AT RECEIVE',
          '                     (SentTimestamp to handler start), the upper bound of the highest bucket',
          '                     with a message ("<=15s"), the largest since that supervisor started; not the',
          '                     age of what waits now. An approximation; DLQs have none (not consumed).',
          'Counts are SQS approximations. Exit status 1 when a queue is missing (run `eventbus provision`) or,',
          'with --fail-on-dlq, when a DLQ holds messages.',
        ].join('\n'),
      ),
  ).action(async (o: StatusOptions) => {
    await runStatus(o);
  });
}

export async function runStatus(o: StatusOptions): Promise<void> {
  let metricsUrl: URL | null = null;
  if (o.metricsUrl !== undefined) {
    try {
      metricsUrl = new URL(o.metricsUrl);
    } catch {
      throw new UsageError(`--metrics-url: "${o.metricsUrl}" is not a URL (e.g. http://127.0.0.1:9464/metrics)`);
    }
    if (metricsUrl.protocol !== 'http:' && metricsUrl.protocol !== 'https:') throw new UsageError(`--metrics-url must be http:// or https://, got ${metricsUrl.protocol}`);
  }
  const names = o.queues?.split(',').map((q) => q.trim()).filter(Boolean);
  if (names !== undefined && names.length === 0) throw new UsageError('--queues needs at least one queue name');
  const ctx = commandContext(o);
  let rows: QueueStatus[];
  let where: string | null = null;
  try {
    const sqs = ctx.clients().sqs;
    let targets: readonly StatusTarget[];
    if (names) targets = targetsOfNames(names, ctx.config.queuePrefix);
    else {
      const handlers = await handlersOrNull(ctx.config);
      if (handlers) targets = handlers;
      else {
        const found = await discoverTargets(sqs, ctx.config.queuePrefix);
        targets = found.targets;
        where = `no compiled handlers in ${ctx.config.handlersDir}: the queues provisioned with prefix "${ctx.config.queuePrefix}" (ListQueues)`;
        if (found.skipped.length) where += `; skipped ${found.skipped.length} without a -dlq: ${found.skipped.slice(0, 5).join(', ')}${found.skipped.length > 5 ? ', ...' : ''}`;
      }
    }
    rows = await readStatus(sqs, targets);
  } catch (err) {
    const hint = devHint(err, o.dev);
    if (hint) (err as Error).message += hint;
    throw err;
  }
  if (where) process.stderr.write(`eventbus: ${where}\n`);
  const notes = new Map<string, string[]>();
  if (o.cloudwatch) applyAges(rows, await ageFromCloudWatch(ctx.aws, rows.flatMap((r) => [r, r.dlq]).filter((q) => q.exists).map((q) => q.queueName)), 'cloudwatch', notes);
  if (metricsUrl) applyAges(rows, await ageFromMetrics(metricsUrl, rows.map((r) => r.queue)), 'metrics', notes);
  if (o.json) {
    process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
  } else if (rows.length === 0) {
    process.stdout.write(where ? `no queues with prefix "${ctx.config.queuePrefix}" (and a -dlq)\n` : `no handlers in ${ctx.config.handlersDir}\n`);
  } else {
    process.stdout.write(`${formatStatusTable(rows)}\n`);
    if (!o.cloudwatch && !metricsUrl) process.stdout.write('OLDEST "-": not known from SQS; --cloudwatch or --metrics-url URL reads it (see --help)\n');
    for (const [note, queues] of notes) process.stdout.write(`OLDEST n/a for ${queues.length > 4 ? `${queues.length} queues` : queues.join(', ')}: ${note}\n`);
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

/** The handlers of the folder (with the built-ins), or null when it is missing, uncompiled or empty. */
async function handlersOrNull(config: Parameters<typeof loadHandlers>[0] & Parameters<typeof builtInHandlers>[0]): Promise<ResolvedHandler[] | null> {
  try {
    const handlers = await loadHandlers(config, builtInHandlers(config));
    const own = handlers.filter((h) => !builtInHandlers(config).some((b) => b.file === h.file));
    return own.length ? handlers : null;
  } catch (err) {
    if (err instanceof EventBusError && err.code === 'ERR_HANDLERS_DIR') return null;
    throw err;
  }
}

/**
 * Sets oldestAge* from one source where it has a reading and none was set before (CloudWatch, then
 * the metrics for what it did not answer); `notes` collects, per reason, the queues without a value.
 */
function applyAges(rows: QueueStatus[], ages: Map<string, AgeReading>, source: 'cloudwatch' | 'metrics', notes: Map<string, string[]>): void {
  for (const r of rows) {
    for (const q of [r, r.dlq]) {
      if (!q.exists || q.oldestAgeSec !== null) continue;
      // The metrics are by handler queue (logical name); a DLQ is not consumed, so it has none.
      const reading: AgeReading | undefined =
        source === 'metrics' ? (q === r ? ages.get(r.queue) : { seconds: null, note: 'a DLQ is not consumed: no eventbus_message_age_seconds' }) : ages.get(q.queueName);
      if (!reading) continue;
      if (reading.seconds !== null) {
        q.oldestAgeSec = reading.seconds;
        q.oldestAgeSource = source;
        q.oldestAgeNote = reading.note;
        continue;
      }
      q.oldestAgeNote = reading.note;
      if (q === r.dlq && source === 'metrics') continue; // said once in --help, not per row
      notes.set(reading.note, [...(notes.get(reading.note) ?? []), q.queueName]);
    }
  }
}

/** Maps with at most `limit` calls running at once; results in input order. */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
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
