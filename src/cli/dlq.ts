// `eventbus dlq peek|redrive|purge|dump|requeue QUEUE`: look at, move back, delete, save or restore
// what ended in `<queuePrefix><queue>-dlq`.
import { builtInHandlers } from '../built-ins.js';
import { PurgeQueueCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { Option, type Command } from 'commander';
import { closeSync, createReadStream, fsyncSync, openSync, statSync, writeSync } from 'node:fs';
import { dirname, resolve as resolvePath } from 'node:path';
import { createInterface as createLineReader } from 'node:readline';
import { createInterface } from 'node:readline/promises';
import { EventBusError, describeError, toAwsError } from '../errors.js';
import { loadHandlers, type ResolvedHandler } from '../handlers.js';
import { pointerUri } from '../event/index.js';
import { lazyPayloadStore, s3SettingsOf, type PayloadStore } from '../payloads/index.js';
import { UsageError, commandContext, devHint, type CommonOptions } from './common.js';
import { queueUrlOrNull, readDepth } from './status.js';
import { openConfiguredArchive } from './events.js';
import { takeRunLock } from '../archive/lock.js';
import {
  MoveTaskUnsupportedError,
  browseDlq,
  cancelMoveTask,
  moveTaskStatus,
  parseDumpRecord,
  queueArnOf,
  redriveDlq,
  requeueEntry,
  sendEntries,
  startMoveTask,
  toDumpRecord,
  type DlqMessage,
  type DumpRecord,
  type MoveTaskStatus,
  type RedriveResult,
} from '../dlq/ops.js';
import type { ArchiveStore } from '../archive/index.js';
import { createProgress } from './progress.js';
import { SIGNAL_EXIT, onInterrupt } from './interrupt.js';

/** `--max` default of both subcommands. */
export const DEFAULT_MAX = 10;
interface DlqOptions extends CommonOptions {
  max?: string;
  all?: boolean;
  json?: boolean;
  native?: boolean;
  rate?: string;
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

/** Registers `dlq peek|redrive|purge|dump|requeue`; `common` adds --config/--dev/--dev-port/--region/--profile to each. */
export function registerDlq(program: Command, common: (cmd: Command) => Command): void {
  const dlq = program.command('dlq').description("inspect a handler queue's dead-letter queue (<queue>-dlq), move its messages back, save or restore them");

  common(
    dlq
      .command('peek')
      .description('print messages of <queue>-dlq without consuming them (each read increments their ApproximateReceiveCount)')
      .argument('<queue>', 'logical handler queue name (without queuePrefix or -dlq)')
      .option('--max <n>', 'print at most n messages', String(DEFAULT_MAX))
      .option('--raw', 'also print each raw SQS message body')
      .option('--json', 'print one JSON object per message (JSON lines; docs/CLI.md "JSON output"), nothing else on stdout')
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
      const n = await peek(sqs, handler, dlqUrl, max, o.raw === true, lazyPayloadStore(s3SettingsOf(ctx.aws, ctx.config)), o.json === true);
      const summary = n === 0 ? `${handler.dlqName} is empty` : `${n} message${n === 1 ? '' : 's'} shown; still in ${handler.dlqName}`;
      if (o.json) process.stderr.write(`eventbus: ${summary}\n`);
      else process.stdout.write(`${summary}\n`);
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
      .addOption(new Option('--native', 'let SQS move every message (StartMessageMoveTask; not with --max: it has no limit)').conflicts('max'))
      .option('--rate <n>', 'with --native: at most n messages per second (MaxNumberOfMessagesPerSecond, 1-500; default: SQS decides)')
      .option('--json', 'print the summary as one JSON object on stdout (progress stays on stderr)')
      .addHelpText(
        'after',
        [
          '',
          'Each message is deleted from the DLQ only after SQS accepted its copy on the source queue; a',
          'message whose send failed stays in the DLQ. A redriven message gets a new SQS MessageId and',
          'its receive count starts again; the event (and its id) in the body is unchanged. Exit 1 when',
          'any message failed.',
          '',
          'Progress goes to stderr: a bar on a terminal, else a line every 5 s (and at the end); stdout',
          'gets only the summary. Ctrl-C (SIGINT) or SIGTERM stops after the batch in flight (nothing is',
          'left half-moved), prints what was moved and what is left, and exits 130 (143): run the same',
          'command again and it continues with what is left. A second Ctrl-C stops at once.',
          '',
          '--native asks SQS to move the messages itself (StartMessageMoveTask from the DLQ to <queue>) and',
          'follows the task (ListMessageMoveTasks) until it ends; Ctrl-C cancels it (CancelMessageMoveTask;',
          'what was moved stays moved). It moves everything: --max does not apply. Endpoints without the',
          'API (fauxqs, the emulator of `npm start`, among them) are reported: use the default mode there.',
          '',
          'One redrive per queue runs at a time when the archive is on (archive.enabled): a second one exits 1',
          'naming the first (a lock in the archive store, freed when the first ends, or 60 s after its last',
          'heartbeat if it died). Without an archive a concurrent redrive is not detected: run one at a time.',
        ].join('\n'),
      ),
  ).action(async (queue: string, o: DlqOptions) => {
    const max = o.all || o.native ? Infinity : parseMax(o.max);
    const rate = parseRate(o);
    const lock = await redriveLock(queue, o);
    try {
      if (o.native) await nativeRedriveCommand(queue, o, rate);
      else await redriveCommand(queue, o, max);
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
      .option('--json', 'print {"queue", "dlqName", "purged", "approximateCount"} on stdout')
      .addHelpText(
        'after',
        [
          '',
          'The messages are gone for good: `dlq dump` (or `dlq peek`, or the archive: GET /events) first if you',
          'may need them. SQS deletes them within 60 s of the call and allows one purge per queue every 60 s;',
          'messages sent to the DLQ during that minute may be deleted too. Without a terminal and without',
          '--yes it refuses (exit 2). Needs sqs:PurgeQueue on the DLQ (an operator permission, not the worker\'s).',
        ].join('\n'),
      ),
  ).action(async (queue: string, o: CommonOptions & { yes?: boolean; json?: boolean }) => {
    const interactive = process.stdin.isTTY === true && process.stderr.isTTY === true;
    if (!o.yes && !interactive) throw new UsageError('dlq purge deletes messages for good and there is no terminal to ask on: add --yes');
    const { sqs, handler, dlqUrl } = await resolve(queue, o);
    const held = await readDepth(sqs, handler.dlqName, dlqUrl).catch((err: unknown) => {
      throw withHint(err, o.dev);
    });
    const count = (held.visible ?? 0) + (held.inFlight ?? 0) + (held.delayed ?? 0);
    if (!o.yes && !(await confirm(`purge ${handler.dlqName}: delete its ~${count} message(s) for good? [y/N] `))) {
      process.stderr.write(`eventbus: not purged; ${handler.dlqName} is unchanged\n`);
      if (o.json) process.stdout.write(`${JSON.stringify({ queue, dlqName: handler.dlqName, purged: false, approximateCount: count })}\n`);
      process.exitCode = 1;
      return;
    }
    try {
      await sqs.send(new PurgeQueueCommand({ QueueUrl: dlqUrl }));
    } catch (err) {
      throw withHint(toAwsError('PurgeQueue', handler.dlqName, err), o.dev);
    }
    if (o.json) process.stdout.write(`${JSON.stringify({ queue, dlqName: handler.dlqName, purged: true, approximateCount: count })}\n`);
    else process.stdout.write(`purged ${handler.dlqName} (~${count} message(s)); SQS deletes them within 60 s\n`);
  });

  common(
    dlq
      .command('dump')
      .description('write the messages of <queue>-dlq to a file, one JSON object per line (they stay in the DLQ unless --delete)')
      .argument('<queue>', 'logical handler queue name (without queuePrefix or -dlq)')
      .requiredOption('--to <file>', 'the file to create (it must not exist), or - for stdout')
      .option('--max <n>', 'at most n messages (default: all)')
      .option('--delete', 'delete the dumped messages from the DLQ once the file is written and flushed to disk (fsync)')
      .option('--json', 'print the summary as one JSON object on stdout (not with --to -)')
      .addHelpText(
        'after',
        [
          '',
          'Each line holds what recreates the message: body, message attributes (binary ones in base64),',
          'group and deduplication ids, trace header, and, for reading, the decoded event (docs/CLI.md).',
          '`dlq requeue` sends them back. Without --delete the DLQ is unchanged (a dump is a copy: messages are',
          'hidden for up to 5 min while it runs, then visible again); with --delete a message is deleted',
          'only after the whole file was written and fsynced, so a failed dump deletes nothing. --delete is',
          'refused with --to - (stdout cannot be synced to disk).',
        ].join('\n'),
      ),
  ).action(async (queue: string, o: CommonOptions & { to: string; max?: string; delete?: boolean; json?: boolean }) => {
    if (o.to === '-' && o.delete) throw new UsageError('--delete needs --to <file>: what goes to stdout cannot be synced to disk before the messages are deleted');
    if (o.to === '-' && o.json) throw new UsageError('--json prints a summary on stdout, where --to - writes the messages: give --to <file>');
    const max = o.max === undefined ? Infinity : parseMax(o.max);
    const { sqs, handler, dlqUrl } = await resolve(queue, o);
    await dumpCommand(sqs, handler, dlqUrl, queue, o, max);
  });

  common(
    dlq
      .command('requeue')
      .description('send the messages of a `dlq dump` file to <queue> (or back to <queue>-dlq with --to-dlq), in batches')
      .argument('<queue>', 'logical handler queue name (without queuePrefix or -dlq)')
      .requiredOption('--from <file>', 'a file written by `dlq dump`, or - for stdin')
      .option('--to-dlq', 'send them back to <queue>-dlq instead of <queue>')
      .option('--from-line <n>', 'start at line n (resume after a stop; lines before it are not sent)')
      .option('--json', 'print the summary as one JSON object on stdout')
      .addHelpText(
        'after',
        [
          '',
          'A file is checked whole before anything is sent: a bad line (not JSON, not a dump line, dumped from',
          'another queue) is an error naming the line, and nothing is sent (exit 2). From stdin, lines are',
          'checked as they come: a bad line stops there, and the summary says which lines were sent and',
          'how to resume (--from-line). A line that SQS refuses is reported with its number (exit 1); the',
          'others are sent. A message id seen twice in one run is sent once.',
          'A re-run sends again what was sent before (standard queues have no deduplication): resume with',
          '--from-line, or requeue only the failed lines. On a FIFO queue a re-run within 5 min is',
          'deduplicated by SQS (the deduplication id is the DLQ message\'s id).',
        ].join('\n'),
      ),
  ).action(async (queue: string, o: CommonOptions & { from: string; toDlq?: boolean; fromLine?: string; json?: boolean }) => {
    const fromLine = o.fromLine === undefined ? 1 : parsePositive(o.fromLine, '--from-line');
    const { sqs, handler, dlqUrl } = await resolve(queue, o);
    await requeueCommand(sqs, handler, dlqUrl, queue, o, fromLine);
  });
}

/** Parses --rate of a native redrive: 1..500 messages per second (SQS's MaxNumberOfMessagesPerSecond). */
function parseRate(o: DlqOptions): number | undefined {
  if (o.rate === undefined) return undefined;
  if (!o.native) throw new UsageError('--rate applies to --native only (the default mode moves a batch of 10 at a time)');
  const n = parsePositive(o.rate, '--rate');
  if (n > MAX_NATIVE_RATE) throw new UsageError(`--rate must be at most ${MAX_NATIVE_RATE} (SQS's limit for a message move task), got ${n}`);
  return n;
}

/** SQS: MaxNumberOfMessagesPerSecond of a message move task is at most 500. */
const MAX_NATIVE_RATE = 500;

function parsePositive(v: string, flag: string): number {
  if (!/^\d+$/.test(v.trim()) || Number(v) < 1 || !Number.isSafeInteger(Number(v))) throw new UsageError(`${flag} must be a positive integer, got "${v}"`);
  return Number(v);
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

async function sourceUrlOf(sqs: SQSClient, handler: ResolvedHandler, o: CommonOptions): Promise<string> {
  const sourceUrl = await queueUrlOrNull(sqs, handler.queueName).catch((err: unknown) => {
    throw withHint(err, o.dev);
  });
  if (sourceUrl === null) throw new EventBusError('ERR_QUEUE_NOT_FOUND', `queue ${handler.queueName} does not exist (run \`eventbus provision\`)`);
  return sourceUrl;
}

/** What `dlq redrive --json` prints (docs/CLI.md). */
export interface RedriveSummary {
  queue: string;
  queueName: string;
  dlqName: string;
  mode: 'copy' | 'native';
  moved: number;
  failed: number;
  notDeleted: number;
  /** Stopped by a signal before the end. */
  aborted: boolean;
  signal: 'SIGINT' | 'SIGTERM' | null;
  /** Messages the DLQ still holds (visible, in flight, delayed) after a stop; null when not read. */
  remaining: number | null;
  movedIds: string[];
  /** --native: the task's handle and final status; null in copy mode. */
  task: { handle: string; status: string; failureReason: string | null } | null;
  errors: string[];
}

async function redriveCommand(queue: string, o: DlqOptions, max: number): Promise<void> {
  const { sqs, handler, dlqUrl } = await resolve(queue, o);
  const sourceUrl = await sourceUrlOf(sqs, handler, o);
  const interrupt = onInterrupt(`the redrive of ${handler.dlqName}`);
  let r: RedriveResult;
  try {
    r = await redrive(sqs, handler, dlqUrl, sourceUrl, max, interrupt.signal);
  } catch (err) {
    throw withHint(err, o.dev);
  } finally {
    interrupt.dispose();
  }
  for (const e of r.errors) process.stderr.write(`eventbus: ${e}\n`);
  if (r.notDeleted > 0) {
    process.stderr.write(
      `eventbus: ${r.notDeleted} message(s) were copied to ${handler.queueName} but could not be deleted from ${handler.dlqName}: ` +
        'they are now in both queues (a later redrive moves them again; handlers are idempotent)\n',
    );
  }
  const sig = interrupt.received();
  const remaining = r.aborted ? await heldIn(sqs, handler.dlqName, dlqUrl) : null;
  if (r.aborted) {
    process.stderr.write(
      `eventbus: stopped by ${sig}: moved ${r.moved}, failed ${r.failed}; ${remaining ?? 'an unknown number of'} message(s) still in ${handler.dlqName}. ` +
        'Nothing is half-moved: run the same command again and it continues with what is left.\n',
    );
  }
  const summary: RedriveSummary = {
    queue,
    queueName: handler.queueName,
    dlqName: handler.dlqName,
    mode: 'copy',
    moved: r.moved,
    failed: r.failed,
    notDeleted: r.notDeleted,
    aborted: r.aborted,
    signal: r.aborted ? sig : null,
    remaining,
    movedIds: r.movedIds,
    task: null,
    errors: r.errors,
  };
  process.stdout.write(o.json ? `${JSON.stringify(summary)}\n` : `moved ${r.moved}, failed ${r.failed}\n`);
  if (r.aborted && sig) process.exitCode = SIGNAL_EXIT[sig];
  else if (r.failed > 0 || r.notDeleted > 0) process.exitCode = 1;
}

/** Messages a queue holds in any state, or null when that cannot be read. */
async function heldIn(sqs: SQSClient, name: string, url: string): Promise<number | null> {
  try {
    const d = await readDepth(sqs, name, url);
    return d.visible === null ? null : d.visible + (d.inFlight ?? 0) + (d.delayed ?? 0);
  } catch {
    return null;
  }
}

/** How often a native move task's status is read (ListMessageMoveTasks). */
const NATIVE_POLL_MS = 2_000;
const NATIVE_DONE = new Set(['COMPLETED', 'CANCELLED', 'FAILED']);
/** After a cancel, how long to wait for the task to say CANCELLED before reporting what is known. */
const NATIVE_CANCEL_WAIT_MS = 30_000;
/** How long a started task may be missing from ListMessageMoveTasks before the CLI gives up following it. */
const NATIVE_LIST_WAIT_MS = 60_000;

async function nativeRedriveCommand(queue: string, o: DlqOptions, rate: number | undefined): Promise<void> {
  const { sqs, handler, dlqUrl } = await resolve(queue, o);
  const sourceUrl = await sourceUrlOf(sqs, handler, o);
  let handle: string;
  let dlqArn: string;
  const startedMs = Date.now();
  try {
    dlqArn = await queueArnOf(sqs, handler.dlqName, dlqUrl);
    const sourceArn = await queueArnOf(sqs, handler.queueName, sourceUrl);
    handle = await startMoveTask(sqs, handler, dlqArn, sourceArn, rate);
  } catch (err) {
    if (err instanceof MoveTaskUnsupportedError) {
      const endpoint = commandContext(o).aws.endpoint ?? 'the SQS endpoint';
      throw new EventBusError(
        'ERR_AWS',
        `dlq redrive --native: ${endpoint} does not support SQS message move tasks (StartMessageMoveTask answered ${err.message}); fauxqs, the emulator of \`npm start\`, is one such endpoint. Use the default mode: eventbus dlq redrive ${queue} --all`,
      );
    }
    throw withHint(err, o.dev);
  }
  process.stderr.write(`eventbus: SQS message move task started (${handler.dlqName} -> ${handler.queueName}${rate ? `, at most ${rate}/s` : ''}); Ctrl-C cancels it\n`);
  const interrupt = onInterrupt(`the message move task of ${handler.dlqName}`);
  const progress = createProgress({
    barFormat: `${handler.dlqName} -> ${handler.queueName} (native) [{bar}] {value}/{total}`,
    line: (done, total) => `eventbus: redrive (native) ${handler.dlqName} -> ${handler.queueName}: moved ${done}${total !== null ? ` of ~${total}` : ''}`,
    total: null,
    payload: {},
  });
  let last: MoveTaskStatus | null = null;
  const errors: string[] = [];
  let cancelAt: number | null = null;
  try {
    for (;;) {
      if (interrupt.signal.aborted && cancelAt === null) {
        cancelAt = Date.now();
        try {
          await cancelMoveTask(sqs, handler, handle);
        } catch (err) {
          // It may have just ended (a finished task cannot be cancelled): then that is the outcome.
          last = (await moveTaskStatus(sqs, handler, dlqArn, handle, startedMs).catch(() => null)) ?? last;
          if (last && NATIVE_DONE.has(last.status)) break;
          errors.push(`could not cancel the task (${describeError(err)}): it goes on in SQS; see the console or \`aws sqs list-message-move-tasks --source-arn ${dlqArn}\``);
          break;
        }
      }
      last = (await moveTaskStatus(sqs, handler, dlqArn, handle, startedMs)) ?? last;
      if (last) {
        if (last.toMove !== null) progress.setTotal(last.toMove);
        progress.update(last.moved, {});
      }
      if (last && NATIVE_DONE.has(last.status)) break;
      if (cancelAt !== null && Date.now() - cancelAt > NATIVE_CANCEL_WAIT_MS) {
        errors.push(`the task did not report CANCELLED within ${NATIVE_CANCEL_WAIT_MS / 1000} s (last status ${last?.status ?? 'unknown'})`);
        break;
      }
      if (!last && Date.now() - startedMs > NATIVE_LIST_WAIT_MS) {
        errors.push(`ListMessageMoveTasks did not list the task within ${NATIVE_LIST_WAIT_MS / 1000} s; it may still run in SQS: \`aws sqs list-message-move-tasks --source-arn ${dlqArn}\``);
        break;
      }
      // The wait ends early on Ctrl-C, so the cancel goes out at once.
      await new Promise<void>((r) => {
        const t = setTimeout(done, cancelAt !== null ? 500 : NATIVE_POLL_MS);
        function done() {
          clearTimeout(t);
          interrupt.signal.removeEventListener('abort', done);
          r();
        }
        if (cancelAt === null) interrupt.signal.addEventListener('abort', done);
      });
    }
  } catch (err) {
    throw withHint(err, o.dev);
  } finally {
    progress.stop();
    interrupt.dispose();
  }
  for (const e of errors) process.stderr.write(`eventbus: ${e}\n`);
  const sig = interrupt.received();
  const status = last?.status ?? 'UNKNOWN';
  if (last?.failureReason) process.stderr.write(`eventbus: the move task failed: ${last.failureReason}\n`);
  const remaining = sig ? await heldIn(sqs, handler.dlqName, dlqUrl) : null;
  if (sig) {
    process.stderr.write(
      `eventbus: stopped by ${sig}: the task ${status === 'CANCELLED' ? 'was cancelled' : `ended ${status}`} after moving ~${last?.moved ?? 0}; ${remaining ?? 'an unknown number of'} message(s) still in ${handler.dlqName}. ` +
        'Run the same command again to move what is left.\n',
    );
  }
  const summary: RedriveSummary = {
    queue,
    queueName: handler.queueName,
    dlqName: handler.dlqName,
    mode: 'native',
    moved: last?.moved ?? 0,
    failed: 0,
    notDeleted: 0,
    aborted: sig !== null,
    signal: sig,
    remaining,
    movedIds: [],
    task: { handle, status, failureReason: last?.failureReason ?? null },
    errors,
  };
  process.stdout.write(o.json ? `${JSON.stringify(summary)}\n` : `moved ${summary.moved} (SQS message move task ${status})\n`);
  if (sig) process.exitCode = SIGNAL_EXIT[sig];
  else if (status !== 'COMPLETED' || errors.length) process.exitCode = 1;
}

/** What `dlq dump --json` prints. */
export interface DumpSummary {
  queue: string;
  dlqName: string;
  file: string;
  dumped: number;
  deleted: number;
  /** Stopped by a signal: the file is incomplete and nothing was deleted. */
  aborted: boolean;
  problems: string[];
  /** With --delete: offloaded messages left in the DLQ (their payload lives in S3 and expires). */
  keptOffloaded: number;
  /** A FIFO DLQ dumped short of its count (one receive per message group): exit 1, nothing deleted. */
  incomplete: boolean;
}

/** While a dump runs, what it received stays hidden this long (seconds) so each receive gets new messages. */
const DUMP_HIDE_SEC = 300;

async function dumpCommand(sqs: SQSClient, handler: ResolvedHandler, dlqUrl: string, queue: string, o: CommonOptions & { to: string; delete?: boolean; json?: boolean }, max: number): Promise<void> {
  const toStdout = o.to === '-';
  let fd: number;
  try {
    // 'wx': never overwrite an earlier dump (it may be the only copy of messages deleted since).
    fd = toStdout ? 1 : openSync(o.to, 'wx');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UsageError(`--to ${o.to}: ${code === 'EEXIST' ? 'the file exists (a dump never overwrites one: choose another name or remove it)' : describeError(err)}`);
  }
  const startedMs = Date.now();
  const estimate = await heldIn(sqs, handler.dlqName, dlqUrl);
  const fifo = handler.dlqName.endsWith('.fifo');
  const deletable = new Set<string>();
  const kept = { offloaded: 0, fifoShort: false };
  let dumped = 0;
  let r: { shown: number; problems: string[]; deleted: number; aborted: boolean };
  // Ctrl-C: stop receiving and make what was read visible again at once (not after DUMP_HIDE_SEC).
  const interrupt = onInterrupt(`the dump of ${handler.dlqName}`);
  try {
    r = await browseDlq(sqs, handler, dlqUrl, {
      max,
      hideSec: DUMP_HIDE_SEC,
      signal: interrupt.signal,
      onMessage: (m) => {
        const line = `${JSON.stringify(toDumpRecord(m, queue, handler.dlqName))}\n`;
        dumped++;
        if (toStdout) process.stdout.write(line);
        else writeAll(fd, line);
        // An offloaded event's line holds its pointer, not its payload: the S3 object expires
        // (payloads.retentionDays), so the DLQ message is the one copy that stays whole.
        if (m.offloaded) kept.offloaded++;
        else deletable.add(m.messageId);
      },
      deleteShown: async () => {
        if (toStdout || !o.delete) return false;
        fsyncSync(fd);
        fsyncDir(o.to);
        // A FIFO DLQ gives one receive per message group while the dump holds the group's earlier
        // messages: a dump short of the DLQ's count deletes nothing (dump again after a redrive).
        if (fifo && estimate !== null && dumped < estimate) {
          kept.fifoShort = true;
          return false;
        }
        return deletable;
      },
    });
  } catch (err) {
    if (!toStdout) closeSync(fd);
    const e = withHint(err, o.dev) as Error;
    if (!toStdout) e.message += ` (${o.to} is incomplete; nothing was deleted from ${handler.dlqName})`;
    throw e;
  } finally {
    interrupt.dispose();
  }
  if (!toStdout) {
    fsyncSync(fd);
    closeSync(fd);
  }
  for (const p of r.problems) process.stderr.write(`eventbus: ${p}\n`);
  if (Date.now() - startedMs > DUMP_HIDE_SEC * 1000) {
    process.stderr.write(`eventbus: warning: the dump took longer than ${DUMP_HIDE_SEC} s, so messages it had read became visible again and some may be missing from it: compare its ${r.shown} lines with \`eventbus status\`\n`);
  }
  const sig = interrupt.received();
  if (r.aborted && sig) {
    process.stderr.write(
      `eventbus: stopped by ${sig}: ${o.to === '-' ? 'the output' : o.to} holds ${r.shown} message(s) and is incomplete; nothing was deleted from ${handler.dlqName} and what was read is visible again. Dump again to a new file.\n`,
    );
  }
  if (o.delete && kept.offloaded > 0) {
    process.stderr.write(
      `eventbus: ${kept.offloaded} offloaded message(s) stay in ${handler.dlqName}: their lines hold a pointer to the payload in S3, which the bucket's lifecycle rule expires (payloads.retentionDays), so they are not deleted\n`,
    );
  }
  const incomplete = fifo && estimate !== null && r.shown < estimate;
  if (incomplete) {
    process.stderr.write(
      `eventbus: warning: ${handler.dlqName} is a FIFO queue and held ~${estimate} message(s); the dump has ${r.shown}: SQS returns no more of a message group while the dump holds its earlier messages${kept.fifoShort ? ', so nothing was deleted' : ''}. Redrive or requeue what was dumped, then dump again for the rest\n`,
    );
  }
  const summary: DumpSummary = { queue, dlqName: handler.dlqName, file: o.to, dumped: r.shown, deleted: r.deleted, aborted: r.aborted, problems: r.problems, keptOffloaded: o.delete ? kept.offloaded : 0, incomplete };
  if (o.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
  else {
    const where = toStdout ? 'stdout' : o.to;
    const fate = o.delete ? `deleted ${r.deleted} of them from ${handler.dlqName}` : `they stay in ${handler.dlqName}`;
    process.stderr.write(`eventbus: dumped ${r.shown} message(s)${estimate !== null && max === Infinity ? ` (the DLQ held ~${estimate})` : ''} to ${where}; ${fate}\n`);
  }
  if (r.aborted && sig) process.exitCode = SIGNAL_EXIT[sig];
  else if (incomplete || (o.delete && r.deleted + kept.offloaded < r.shown)) process.exitCode = 1;
}

/** Makes a new file's directory entry durable (a crash after the deletes must not lose the file). */
function fsyncDir(file: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dirname(resolvePath(file)), 'r');
    fsyncSync(fd);
  } catch {
    // a file system that cannot fsync a directory: the file's own fsync is what there is
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

function writeAll(fd: number, text: string): void {
  const buf = Buffer.from(text, 'utf8');
  let off = 0;
  while (off < buf.length) off += writeSync(fd, buf, off, buf.length - off);
}

/** What `dlq requeue --json` prints. */
export interface RequeueSummary {
  queue: string;
  /** The SQS queue the messages were sent to (the handler queue, or its DLQ with --to-dlq). */
  target: string;
  /** Dump lines read (from --from-line on), blank lines not counted. */
  lines: number;
  sent: number;
  failed: number;
  /** Lines whose message id was already sent in this run. */
  duplicates: number;
  failures: Array<{ line: number; messageId: string; error: string }>;
  /** From stdin, a bad line stops the run: its number (null when the input was read to the end). */
  stoppedAtLine: number | null;
  /** Stopped by a signal between batches (resume with --from-line: the last line sent + 1). */
  aborted: boolean;
}

/** One dump line read for a requeue. */
interface DumpLine {
  line: number;
  record: DumpRecord;
}

async function* dumpLines(from: string, fromLine: number, check: (r: DumpRecord, line: number) => void): AsyncGenerator<DumpLine> {
  const input = from === '-' ? process.stdin : createReadStream(from, { encoding: 'utf8' });
  const rl = createLineReader({ input, crlfDelay: Infinity });
  let n = 0;
  try {
    for await (const text of rl) {
      n++;
      if (n < fromLine || text.trim() === '') continue;
      let record: DumpRecord;
      try {
        record = parseDumpRecord(text);
        check(record, n);
      } catch (err) {
        throw new BadLineError(n, (err as Error).message);
      }
      yield { line: n, record };
    }
  } finally {
    rl.close();
    if (from !== '-') (input as ReturnType<typeof createReadStream>).destroy();
  }
}

class BadLineError extends Error {
  constructor(
    readonly line: number,
    why: string,
  ) {
    super(`line ${line}: ${why}`);
  }
}

async function requeueCommand(
  sqs: SQSClient,
  handler: ResolvedHandler,
  dlqUrl: string,
  queue: string,
  o: CommonOptions & { from: string; toDlq?: boolean; json?: boolean },
  fromLine: number,
): Promise<void> {
  const source = o.from === '-' ? 'stdin' : o.from;
  if (o.from !== '-') {
    try {
      if (!statSync(o.from).isFile()) throw new Error('not a regular file');
    } catch (err) {
      throw new UsageError(`--from ${o.from}: ${describeError(err)}`);
    }
  }
  const check = (r: DumpRecord) => {
    if (r.queue !== queue) throw new Error(`dumped from queue "${r.queue}", not "${queue}" (requeue it with \`eventbus dlq requeue ${r.queue}\`)`);
  };
  // A file is checked whole first, so a bad line sends nothing; stdin can be read once only.
  if (o.from !== '-') {
    try {
      for await (const _ of dumpLines(o.from, fromLine, check));
    } catch (err) {
      if (err instanceof BadLineError) throw new UsageError(`${source} ${err.message}; nothing was sent`);
      throw new UsageError(`--from ${o.from}: ${describeError(err)}`);
    }
  }
  const targetName = o.toDlq ? handler.dlqName : handler.queueName;
  const targetUrl = o.toDlq ? dlqUrl : await sourceUrlOf(sqs, handler, o);
  const fifo = targetName.endsWith('.fifo');
  const summary: RequeueSummary = { queue, target: targetName, lines: 0, sent: 0, failed: 0, duplicates: 0, failures: [], stoppedAtLine: null, aborted: false };
  const seen = new Set<string>();
  let batch: DumpLine[] = [];
  let lastSentLine = fromLine - 1;
  const flush = async () => {
    if (batch.length === 0) return;
    const items = batch;
    batch = [];
    const entries = items.map((x, i) => requeueEntry(x.record, String(i), { toDlq: o.toDlq === true, fifo }));
    const r = await sendEntries(sqs, targetName, targetUrl, entries);
    for (const [i, x] of items.entries()) {
      const why = r.failed.get(String(i));
      if (why === undefined) summary.sent++;
      else {
        summary.failed++;
        summary.failures.push({ line: x.line, messageId: x.record.messageId, error: why });
      }
      lastSentLine = x.line;
    }
  };
  let stopped: BadLineError | null = null;
  const interrupt = onInterrupt('the requeue');
  try {
    for await (const x of dumpLines(o.from, fromLine, check)) {
      if (interrupt.signal.aborted) break;
      summary.lines++;
      if (seen.has(x.record.messageId)) {
        summary.duplicates++;
        continue;
      }
      seen.add(x.record.messageId);
      batch.push(x);
      if (batch.length >= 10) await flush();
    }
    await flush();
  } catch (err) {
    if (!(err instanceof BadLineError)) throw withHint(err, o.dev);
    await flush();
    stopped = err;
    summary.stoppedAtLine = err.line;
  } finally {
    interrupt.dispose();
  }
  const sig = interrupt.received();
  summary.aborted = sig !== null;
  for (const f of summary.failures.slice(0, 50)) process.stderr.write(`eventbus: ${source} line ${f.line} (message ${f.messageId}): not sent: ${f.error}\n`);
  if (summary.failures.length > 50) process.stderr.write(`eventbus: ... and ${summary.failures.length - 50} more failed line(s)\n`);
  if (stopped) {
    process.stderr.write(
      `eventbus: ${source} ${stopped.message}: stopped there; lines up to ${lastSentLine} were sent. Fix it and resume with --from-line ${stopped.line}\n`,
    );
  }
  if (sig) process.stderr.write(`eventbus: stopped by ${sig}: lines up to ${lastSentLine} were sent; resume with --from-line ${lastSentLine + 1}\n`);
  if (o.json) process.stdout.write(`${JSON.stringify(summary)}\n`);
  else process.stdout.write(`requeued ${summary.sent} message(s) to ${targetName}, failed ${summary.failed}${summary.duplicates ? `, ${summary.duplicates} duplicate line(s) skipped` : ''}\n`);
  if (sig) process.exitCode = SIGNAL_EXIT[sig];
  else if (stopped) process.exitCode = 2;
  else if (summary.failed > 0) process.exitCode = 1;
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

/** Prints up to `max` messages of the DLQ and leaves them there (dlq/ops.ts browseDlq); `json`: one JSON line each. */
export async function peek(sqs: SQSClient, h: ResolvedHandler, dlqUrl: string, max: number, raw: boolean, payloads?: PayloadStore, json = false): Promise<number> {
  // Ctrl-C stops after the receive in flight, and what was read is made visible again at once (not
  // left hidden for the peek's 30 s).
  const stop = onInterrupt('the peek');
  let result: Awaited<ReturnType<typeof browseDlq>>;
  try {
    result = await browseDlq(sqs, h, dlqUrl, {
      max,
      payloads,
      signal: stop.signal,
      onMessage: (m, n) => void process.stdout.write(json ? `${JSON.stringify(peekRecord(m))}\n` : formatMessage(m, n, raw)),
    });
  } finally {
    stop.dispose();
  }
  for (const p of result.problems) process.stderr.write(`eventbus: ${p}\n`);
  const sig = stop.received();
  if (sig) {
    process.stderr.write(`eventbus: stopped by ${sig} after ${result.shown} message(s); ${h.dlqName} is unchanged and every message read is visible again\n`);
    process.exitCode = SIGNAL_EXIT[sig];
  }
  return result.shown;
}

/** A peeked message as `dlq peek --json` prints it: the DlqMessage without the receipt handle and the raw SQS message. */
export function peekRecord(m: DlqMessage) {
  const off = m.offloaded;
  return {
    messageId: m.messageId,
    receiveCount: m.receiveCount,
    sentTimestampMs: m.sentTimestampMs,
    event: m.event,
    form: m.form,
    deadLetterReason: m.deadLetterReason,
    attributes: m.attributes,
    offloaded: off ? { uri: pointerUri(off.pointer), bytes: off.pointer.bytes, error: off.error ?? null } : null,
    body: m.body,
  };
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

/**
 * Moves up to `max` messages (Infinity: all) back to the source queue (dlq/ops.ts redriveDlq), with
 * progress on stderr; `signal` stops it between batches.
 */
export async function redrive(sqs: SQSClient, h: ResolvedHandler, dlqUrl: string, sourceUrl: string, max: number, signal?: AbortSignal): Promise<RedriveResult> {
  // With no limit (--all) and no count from SQS the bar starts at 1 and grows with what is done.
  const depth = await readDepth(sqs, h.dlqName, dlqUrl);
  const estimate = depth.visible === null ? (Number.isFinite(max) ? max : null) : Math.min(max, depth.visible);
  const progress = createProgress({
    barFormat: `${h.dlqName} -> ${h.queueName} [{bar}] {value}/{total} | moved {moved}, failed {failed}`,
    line: (done, total, p) => `eventbus: redrive ${h.dlqName} -> ${h.queueName}: ${done}${total !== null ? ` of ~${total}` : ''} done (moved ${p.moved}, failed ${p.failed})`,
    total: estimate,
    payload: { moved: 0, failed: 0 },
  });
  try {
    return await redriveDlq(sqs, h, dlqUrl, sourceUrl, {
      max,
      ...(signal ? { signal } : {}),
      onBatch: (r) => progress.update(r.moved + r.failed, { moved: r.moved, failed: r.failed }),
    });
  } finally {
    progress.stop();
  }
}
