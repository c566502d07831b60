// `eventbus dlq peek|redrive|purge QUEUE`: look at, move back or delete what ended in `<queuePrefix><queue>-dlq`.
import { builtInHandlers } from '../built-ins.js';
import { PurgeQueueCommand, type SQSClient } from '@aws-sdk/client-sqs';
import cliProgress from 'cli-progress';
import { Option, type Command } from 'commander';
import { createInterface } from 'node:readline/promises';
import { EventBusError, toAwsError } from '../errors.js';
import { loadHandlers, type ResolvedHandler } from '../handlers.js';
import { pointerUri } from '../event/index.js';
import { lazyPayloadStore, s3SettingsOf, type PayloadStore } from '../payloads/index.js';
import { UsageError, commandContext, devHint, type CommonOptions } from './common.js';
import { queueUrlOrNull, readDepth } from './status.js';
import { openConfiguredArchive } from './events.js';
import { takeRunLock } from '../archive/lock.js';
import { browseDlq, redriveDlq, type DlqMessage, type RedriveResult } from '../dlq/ops.js';
import type { ArchiveStore } from '../archive/index.js';

/** `--max` default of both subcommands. */
export const DEFAULT_MAX = 10;
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

/** Prints up to `max` messages of the DLQ and leaves them there (dlq/ops.ts browseDlq). */
export async function peek(sqs: SQSClient, h: ResolvedHandler, dlqUrl: string, max: number, raw: boolean, payloads?: PayloadStore): Promise<number> {
  const { shown, problems } = await browseDlq(sqs, h, dlqUrl, {
    max,
    payloads,
    onMessage: (m, n) => void process.stdout.write(formatMessage(m, n, raw)),
  });
  for (const p of problems) process.stderr.write(`eventbus: ${p}\n`);
  return shown;
}

/** One peeked message as readable text: header, decoded event, message attributes, optionally the raw body. */
export function formatMessage(m: DlqMessage, n: number, raw: boolean): string {
  const sentMs = m.sentTimestampMs;
  const off = m.offloaded;
  const lines = [
    `--- #${n} message ${m.messageId}`,
    `  receive count: ${m.receiveCount ?? '?'}`,
    `  sent:          ${sentMs !== null ? `${new Date(sentMs).toISOString()} (SentTimestamp ${sentMs})` : '?'}`,
    `  event type:    ${m.event.type ?? '(none)'}`,
    `  event id:      ${m.event.id}`,
    `  body form:     ${m.form}`,
    ...(off
      ? [`  offloaded:     ${pointerUri(off.pointer)}${off.pointer.bytes !== null ? ` (${off.pointer.bytes} bytes)` : ''}${off.error !== undefined ? `, not read: ${off.error}` : ''}`]
      : []),
    `  data:          ${shorten(safeJson(m.event.data))}`,
  ];
  if (m.deadLetterReason !== null) lines.push(`  dead-lettered: at once, ${m.deadLetterReason}`);
  const attrs = Object.entries(m.attributes);
  lines.push(`  attributes:    ${attrs.length === 0 ? '(none)' : ''}`.trimEnd());
  for (const [name, a] of attrs) lines.push(`    ${name} (${a.type}): ${a.value}`);
  if (raw) lines.push(`  raw body:      ${m.body}`);
  return `${lines.join('\n')}\n`;
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

/** Moves up to `max` messages (Infinity: all) back to the source queue with a progress bar (dlq/ops.ts redriveDlq). */
export async function redrive(sqs: SQSClient, h: ResolvedHandler, dlqUrl: string, sourceUrl: string, max: number): Promise<RedriveResult> {
  // With no limit (--all) and no count from SQS the bar starts at 1 and grows with what is done.
  const progress = createProgress(h, await readDepth(sqs, h.dlqName, dlqUrl).then((d) => Math.min(max, d.visible ?? (Number.isFinite(max) ? max : 0))));
  try {
    return await redriveDlq(sqs, h, dlqUrl, sourceUrl, {
      max,
      onBatch: (r, movedNow, failedNow) => progress.update(r.moved + r.failed, r, movedNow, failedNow),
    });
  } finally {
    progress.stop();
  }
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
