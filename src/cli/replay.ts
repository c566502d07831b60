// `eventbus replay`: republishes archived events, to the topic or to one queue, at a bounded rate.
// A replayed event gets a new id, the CloudEvents extension `replayof` = the archived event's id,
// and the message attribute `replayed=true`. Its original trace context moves to
// `replayoftraceparent`/`replayoftracestate` (its consumer links to it, as the replay's span does).
import { randomUUID } from 'node:crypto';
import { PublishBatchCommand, type SNSClient } from '@aws-sdk/client-sns';
import { SendMessageBatchCommand, type SQSClient } from '@aws-sdk/client-sqs';
import type { Command } from 'commander';
import { EventBusError, describeError, toAwsError } from '../errors.js';
import type { ArchiveQuery, ArchiveStore } from '../archive/index.js';
import { takeRunLock, type HeldLock } from '../archive/lock.js';
import { parsePointerUri } from '../event/index.js';
import { lazyPayloadStore, payloadSettingsOf, prepareEvent, s3SettingsOf, storePayloads, type PayloadSettings, type PayloadStore, type PreparedEvent } from '../payloads/index.js';
import { resolveTopicArn, topicName } from '../publisher/topic.js';
import type { CloudEvent } from '../types.js';
import { REPLAY_TRACEPARENT, REPLAY_TRACESTATE, TRACEPARENT, TRACESTATE, endPublishSpan, eventContext, flushTelemetry, loadTelemetrySetup, setupUrl, startPublishSpan } from '../telemetry/index.js';
import { UsageError, commandContext, devHint, type CommonOptions } from './common.js';
import { filterOf, openConfiguredArchive, formatEvent, type FilterOptions } from './events.js';
import { queueUrlOrNull } from './status.js';
import { createProgress, type Progress } from './progress.js';
import { SIGNAL_EXIT, onInterrupt } from './interrupt.js';

export const DEFAULT_RATE = 50;
/** The extension that names the archived event a replay copies. */
export const REPLAY_OF_EXTENSION = 'replayof';
export const REPLAYED_ATTRIBUTE = 'replayed';
/** Events read from the archive per query. */
const PAGE = 500;

export type ReplayTarget =
  | { kind: 'topic'; sns: SNSClient; topicArn: string; name: string }
  | { kind: 'queue'; sqs: SQSClient; url: string; name: string };

export interface ReplayOptions {
  store: ArchiveStore;
  filter: Omit<ArchiveQuery, 'limit' | 'cursor'>;
  /** null in a dry run. */
  target: ReplayTarget | null;
  /** Events per second (> 0). */
  rate: number;
  dryRun?: boolean;
  /** Where progress goes: a bar when it is a TTY, else a line every few seconds (none in a dry run). */
  progress?: NodeJS.WritableStream & { isTTY?: boolean };
  /** Dry run listing. */
  out?: NodeJS.WritableStream;
  /** Dry run: called with each of the first 20 events instead of listing them on `out`. */
  sample?: (ev: CloudEvent) => void;
  /** Also replay events that are themselves replays (default: skipped). */
  includeReplays?: boolean;
  sleep?: (ms: number) => Promise<void>;
  /**
   * Only events archived at or before this instant (the store's clock; default: the start). With the
   * time bound (`untilMs`, default: the start) it fixes what a run replays when it starts: not the
   * live traffic archived meanwhile, nor the replay's own copies that the topic brings back.
   */
  snapshotMs?: number;
  /** Stops the run between batches (the run lock was lost): replay() rejects. */
  signal?: AbortSignal;
  /**
   * Stops the run between batches and resolves with what was done (`aborted`, `resumeSinceMs`):
   * Ctrl-C. A batch being sent completes.
   */
  stop?: AbortSignal;
  /**
   * Large events: where archived payloads are read (`dataref`) and copies too large for SNS are
   * offloaded (`settings` null: such a copy fails, naming payloads.bucket).
   */
  payloads?: { settings: PayloadSettings | null; store: PayloadStore } | undefined;
}

export interface ReplayResult {
  matched: number;
  sent: number;
  failed: number;
  skippedReplays: number;
  errors: string[];
  ms: number;
  /** Stopped by `stop` before the end. */
  aborted: boolean;
  /**
   * After a stop: the event time (ms) of the first event not sent; `--since` this (with the same
   * `--until`, which this run fixed at `untilMs`) replays what is left. null when nothing is left.
   */
  resumeSinceMs: number | null;
  /** The time bound this run used (the given --until, else the start). */
  untilMs: number;
}

/** Thrown inside replay() to leave its loops when `stop` is aborted. */
class Stopped extends Error {}

/**
 * The copy of an archived event that a replay sends: new id, `replayof`, attribute replayed=true.
 * Its trace context is not continued (a replay is not part of the original request): `traceparent`
 * and `tracestate` move to `replayoftraceparent`/`replayoftracestate`, which the consumer's span
 * links to; the copy gets the replay's own context, if it has one, when it is sent.
 */
export function replayCopy(original: CloudEvent): { event: CloudEvent; attributes: Record<string, string> } {
  const event: CloudEvent = { ...original, id: randomUUID(), [REPLAY_OF_EXTENSION]: original.id };
  delete event[TRACEPARENT];
  delete event[TRACESTATE];
  if (original[TRACEPARENT] !== undefined) event[REPLAY_TRACEPARENT] = original[TRACEPARENT];
  if (original[TRACESTATE] !== undefined) event[REPLAY_TRACESTATE] = original[TRACESTATE];
  return { event, attributes: { [REPLAYED_ATTRIBUTE]: 'true' } };
}

/** Events per send: about four sends a second, 1..10 (the batch APIs' limit). */
export function batchSizeFor(rate: number): number {
  return Math.max(1, Math.min(10, Math.floor(rate / 4)));
}

/**
 * Replays what the filter matches, oldest first. Pacing: the k-th event (from 0) is never sent
 * before start + k/rate seconds, so no window of time sees more than rate × window + one batch.
 * Events that are themselves replays (they carry `replayof`) are skipped unless includeReplays:
 * replays to the topic are archived with their original time, inside the range being replayed.
 */
export async function replay(o: ReplayOptions): Promise<ReplayResult> {
  if (!(o.rate > 0)) throw new EventBusError('ERR_USAGE', '--rate must be a positive number');
  const sleep = o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const started = Date.now();
  const filter = { ...o.filter, untilMs: o.filter.untilMs ?? started, archivedByMs: o.snapshotMs ?? started };
  const total = await o.store.count(filter);
  const result: ReplayResult = { matched: 0, sent: 0, failed: 0, skippedReplays: 0, errors: [], ms: 0, aborted: false, resumeSinceMs: null, untilMs: filter.untilMs };
  const progress: Progress | null =
    o.progress && !o.dryRun
      ? createProgress({
          stream: o.progress,
          barFormat: 'replay |{bar}| {value}/{total} events | {speed}/s | failed {failed} | ETA {eta_formatted}',
          line: (done, tot, p) => `eventbus: replay: ${done} of ${tot ?? '?'} event(s) done (${p.speed}/s, failed ${p.failed})`,
          total,
          payload: { speed: '0', failed: 0 },
        })
      : null;
  const size = batchSizeFor(o.rate);
  let index = 0;
  let batch: CloudEvent[] = [];

  const flush = async () => {
    if (batch.length === 0) return;
    const items = batch;
    const last = index + items.length - 1;
    const wait = started + (last * 1000) / o.rate - Date.now();
    if (wait > 0) await sleepUnlessStopped(sleep, wait, o.stop);
    o.signal?.throwIfAborted();
    if (o.stop?.aborted) {
      result.aborted = true;
      result.resumeSinceMs = Date.parse(items[0]!.time ?? '') || null;
      throw new Stopped();
    }
    batch = [];
    index += items.length;
    const ok = await send(o.target!, items, result.errors, o.payloads);
    result.sent += ok;
    result.failed += items.length - ok;
    const secs = Math.max(0.001, (Date.now() - started) / 1000);
    progress?.update(result.sent + result.failed, { speed: (result.sent / secs).toFixed(1), failed: result.failed });
  };

  let cursor: string | null = null;
  try {
    do {
      const page = await o.store.query({ ...filter, limit: PAGE, cursor });
      cursor = page.nextCursor;
      for (const ev of page.events) {
        if (!o.includeReplays && typeof ev[REPLAY_OF_EXTENSION] === 'string') {
          result.skippedReplays++;
          // The count included it; the progress total should not.
          progress?.shrink(1);
          continue;
        }
        result.matched++;
        if (o.dryRun) {
          if (result.matched <= 20) {
            if (o.sample) o.sample(ev);
            else o.out?.write(`  ${formatEvent(ev, 60)}\n`);
          }
          continue;
        }
        batch.push(ev);
        if (batch.length >= size) await flush();
      }
    } while (cursor !== null);
    if (!o.dryRun) await flush();
  } catch (err) {
    if (!(err instanceof Stopped)) throw err;
  } finally {
    progress?.stop();
  }
  result.ms = Date.now() - started;
  return result;
}

/** Sleeps `ms`, or less when `stop` is aborted meanwhile (a slow --rate must not hold Ctrl-C). */
function sleepUnlessStopped(sleep: (ms: number) => Promise<void>, ms: number, stop: AbortSignal | undefined): Promise<void> {
  if (!stop) return sleep(ms);
  if (stop.aborted) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const done = () => {
      stop.removeEventListener('abort', done);
      resolve();
    };
    stop.addEventListener('abort', done);
    void sleep(ms).then(done);
  });
}

/** An archived event whole: one the archive kept without its data (`dataref`, over its inline size) is read back from S3. */
async function wholeEvent(ev: CloudEvent, payloads: ReplayOptions['payloads']): Promise<CloudEvent> {
  if (typeof ev.dataref !== 'string') return ev;
  const at = parsePointerUri(ev.dataref);
  if (!at) throw new Error(`its dataref ${ev.dataref} is not an s3:// URI`);
  if (!payloads) throw new Error(`its data is in S3 (${ev.dataref}) and this replay has no S3 client`);
  const whole = JSON.parse(await payloads.store.get(at.bucket, at.key)) as CloudEvent;
  if (whole?.id !== ev.id) throw new Error(`${ev.dataref} holds event ${String(whole?.id)}, not ${ev.id}`);
  return whole;
}

/**
 * Sends one batch; returns how many were accepted. Never throws: failures are counted and described.
 * A copy too large for SNS is offloaded again (a new object under the copy's id, the extended
 * clients' pointer), so the replay's new id and `replayof` reach the handler: republishing the
 * original pointer would deliver the original event.
 */
async function send(target: ReplayTarget, events: CloudEvent[], errors: string[], payloads: ReplayOptions['payloads']): Promise<number> {
  const copies: Array<{ original: CloudEvent; i: number; copy: ReturnType<typeof replayCopy> }> = [];
  for (const [i, original] of events.entries()) {
    try {
      copies.push({ original, i, copy: replayCopy(await wholeEvent(original, payloads)) });
    } catch (err) {
      errors.push(`event ${original.id}: ${describeError(err)}`);
    }
  }
  // With an SDK (telemetry.setup): a PRODUCER span per batch, linked to the originals' contexts; the copies carry it.
  const links = events.map(eventContext).filter((sc) => sc !== null);
  const span = startPublishSpan(
    copies.map((c) => c.copy.event),
    { name: target.name, system: target.kind === 'topic' ? 'aws.sns' : 'aws_sqs', ...(target.kind === 'topic' ? { arn: target.topicArn } : {}), links },
  );
  const sent = await sendCopies(target, events, copies, errors, payloads);
  endPublishSpan(span, { failed: events.length - sent, total: events.length });
  return sent;
}

async function sendCopies(
  target: ReplayTarget,
  events: CloudEvent[],
  copies: Array<{ original: CloudEvent; i: number; copy: ReturnType<typeof replayCopy> }>,
  errors: string[],
  payloads: ReplayOptions['payloads'],
): Promise<number> {
  const prepared: Array<PreparedEvent & { Id: string }> = [];
  for (const { original, i, copy } of copies) {
    try {
      prepared.push({ ...prepareEvent(copy.event, copy.attributes, payloads?.settings ?? null), Id: String(i) });
    } catch (err) {
      errors.push(`event ${original.id}: ${describeError(err)}`);
    }
  }
  let entries = prepared;
  if (payloads && prepared.some((p) => p.offload)) {
    const failed = await storePayloads(payloads.store, prepared);
    for (const [p, err] of failed) errors.push(`event ${p.event[REPLAY_OF_EXTENSION] as string}: ${describeError(err)}`);
    entries = prepared.filter((p) => !failed.has(p));
  }
  if (entries.length === 0) return 0;
  try {
    if (target.kind === 'topic') {
      const out = await target.sns.send(
        new PublishBatchCommand({ TopicArn: target.topicArn, PublishBatchRequestEntries: entries.map((e) => ({ Id: e.Id, Message: e.body, MessageAttributes: e.attributes })) }),
      );
      for (const f of out.Failed ?? []) errors.push(`event ${events[Number(f.Id)]?.id}: ${f.Code}: ${f.Message ?? ''}`);
      return out.Successful?.length ?? 0;
    }
    const out = await target.sqs.send(
      new SendMessageBatchCommand({ QueueUrl: target.url, Entries: entries.map((e) => ({ Id: e.Id, MessageBody: e.body, MessageAttributes: e.attributes })) }),
    );
    for (const f of out.Failed ?? []) errors.push(`event ${events[Number(f.Id)]?.id}: ${f.Code}: ${f.Message ?? ''}`);
    return out.Successful?.length ?? 0;
  } catch (err) {
    errors.push(`${entries.length} event(s) not sent: ${describeError(toAwsError(target.kind === 'topic' ? 'PublishBatch' : 'SendMessageBatch', target.name, err))}`);
    return 0;
  }
}

interface ReplayCliOptions extends CommonOptions, FilterOptions {
  toTopic?: boolean;
  toQueue?: string;
  rate?: string;
  dryRun?: boolean;
  includeReplays?: boolean;
  json?: boolean;
}

/** What `replay --json` prints (docs/CLI.md). */
export interface ReplaySummary {
  dryRun: boolean;
  target: { kind: 'topic' | 'queue'; name: string };
  rate: number;
  matched: number;
  sent: number;
  failed: number;
  skippedReplays: number;
  ms: number;
  aborted: boolean;
  signal: 'SIGINT' | 'SIGTERM' | null;
  /** After a stop: the options that replay what is left (null otherwise). */
  resume: { since: string; until: string } | null;
  errors: string[];
}

export function registerReplay(program: Command, common: (cmd: Command) => Command): void {
  common(
    program
      .command('replay')
      .description('republish archived events to the topic or to one queue, at a bounded rate')
      .option('--type <types>', 'only these event types (comma-separated)')
      .option('--since <time>', 'event time >= this (RFC 3339, ms since epoch, or a duration back from now: 24h)')
      .option('--until <time>', 'event time < this (same forms; default: now, fixed when the replay starts)')
      .option('--to-topic', 'publish to the topic: every subscribed queue gets them again')
      .option('--to-queue <queue>', 'send only to this handler queue (logical name, without queuePrefix)')
      .option('--rate <n>', 'events per second', String(DEFAULT_RATE))
      .option('--dry-run', 'count and list what would be replayed; send nothing')
      .option('--include-replays', 'also replay events that are themselves replays (skipped by default)')
      .option('--archive-url <url>', 'archive store (default: config archive.url, else ./data/archive.sqlite)')
      .option('--json', 'print the summary as one JSON object on stdout (a dry run: with the first 20 events)')
      .addHelpText(
        'after',
        [
          '',
          'A replayed event gets a new id, the CloudEvents extension "replayof" = the archived event\'s id, and',
          'the SNS/SQS message attribute replayed=true; its type, source, time and data are unchanged.',
          '--to-queue sends straight to that SQS queue (the handler runs even if its events filter would not',
          'match: use --type). Progress goes to stderr: a bar on a terminal, else a line every 5 s and at the',
          'end. Exit 1 when any event failed.',
          '',
          'Ctrl-C (SIGINT) or SIGTERM stops after the batch being sent, prints what was sent and the --since and',
          '--until that replay what is left (events at exactly that --since time may be sent again), and exits',
          '130 (143). A second Ctrl-C stops at once.',
          '',
          'What a replay sends is fixed when it starts: events archived from then on (live traffic, and the',
          'copies a replay to the topic brings back into the archive) are not replayed, whatever --until says.',
          'One replay per topic runs at a time: a second one exits 1 naming the first (a lock in the archive,',
          'freed when the first ends, or 60 s after its last heartbeat if it died).',
        ].join('\n'),
      ),
  ).action(async (o: ReplayCliOptions) => {
    if (!o.since) throw new UsageError('--since is required (e.g. --since 24h or --since 2024-05-01T00:00:00Z)');
    if (!!o.toTopic === !!o.toQueue) throw new UsageError('give exactly one of --to-topic or --to-queue <queue>');
    const rate = Number(o.rate ?? DEFAULT_RATE);
    if (!Number.isFinite(rate) || rate <= 0) throw new UsageError(`--rate must be a positive number, got "${o.rate}"`);
    const filter = filterOf(o);
    const ctx = commandContext(o);
    let target: ReplayTarget | null = null;
    const targetName = o.toQueue ? `queue ${o.toQueue}` : `topic ${ctx.config.topic}`;
    if (!o.dryRun) {
      try {
        if (o.toQueue) {
          const name = `${ctx.config.queuePrefix}${o.toQueue}`;
          const url = await queueUrlOrNull(ctx.clients().sqs, name);
          if (!url) throw new EventBusError('ERR_QUEUE_NOT_FOUND', `queue ${name} does not exist (the logical name, without queuePrefix; run \`eventbus provision\`)`);
          target = { kind: 'queue', sqs: ctx.clients().sqs, url, name };
        } else {
          target = { kind: 'topic', sns: ctx.clients().sns, topicArn: await resolveTopicArn(ctx.clients().sns, ctx.config.topic), name: ctx.config.topic };
        }
      } catch (err) {
        const hint = devHint(err, o.dev);
        if (hint && err instanceof Error) err.message += hint;
        throw err;
      }
    }
    // An OpenTelemetry SDK for the replay's own spans (telemetry.setup, as the supervisor loads it).
    if (!o.dryRun && ctx.config.telemetry.setup) await loadTelemetrySetup(setupUrl(ctx.config.telemetry.setup));
    const store = await openConfiguredArchive(o);
    let lock: HeldLock | null = null;
    let interrupt: ReturnType<typeof onInterrupt> | null = null;
    try {
      // One replay per topic at a time (a replay to a queue too: the topic feeds that queue).
      if (!o.dryRun) lock = await takeRunLock(store, `replay:${topicName(ctx.config.topic)}`, `replay to ${targetName}`);
      if (o.dryRun && !o.json) process.stdout.write(`dry run: nothing is sent. Events that would be replayed to ${targetName}:\n`);
      const sample: CloudEvent[] = [];
      interrupt = o.dryRun ? null : onInterrupt('the replay');
      const r = await replay({
        store,
        filter,
        target,
        rate,
        dryRun: o.dryRun === true,
        progress: process.stderr,
        out: process.stdout,
        ...(o.json ? { sample: (ev: CloudEvent) => void sample.push(ev) } : {}),
        includeReplays: o.includeReplays === true,
        payloads: { settings: payloadSettingsOf(ctx.config), store: lazyPayloadStore(s3SettingsOf(ctx.aws, ctx.config)) },
        ...(lock ? { snapshotMs: lock.takenAtMs, signal: lock.signal } : {}),
        ...(interrupt ? { stop: interrupt.signal } : {}),
      });
      interrupt?.dispose();
      const sig = interrupt?.received() ?? null;
      const skipped = r.skippedReplays ? ` (${r.skippedReplays} replayed event(s) skipped; --include-replays to send them)` : '';
      const resume = r.aborted && r.resumeSinceMs !== null ? { since: new Date(r.resumeSinceMs).toISOString(), until: new Date(r.untilMs).toISOString() } : null;
      if (o.json) {
        const summary: ReplaySummary = {
          dryRun: o.dryRun === true,
          target: { kind: o.toQueue ? 'queue' : 'topic', name: o.toQueue ?? ctx.config.topic },
          rate,
          matched: r.matched,
          sent: r.sent,
          failed: r.failed,
          skippedReplays: r.skippedReplays,
          ms: r.ms,
          aborted: r.aborted,
          signal: r.aborted ? sig : null,
          resume,
          errors: r.errors,
        };
        process.stdout.write(`${JSON.stringify(o.dryRun ? { ...summary, events: sample } : summary)}\n`);
      }
      if (o.dryRun) {
        if (o.json) return;
        if (r.matched > 20) process.stdout.write(`  ... and ${r.matched - 20} more\n`);
        process.stdout.write(`${r.matched} event(s) would be replayed to ${targetName} at ${rate}/s (about ${Math.ceil(r.matched / rate)} s)${skipped}\n`);
        return;
      }
      for (const e of r.errors.slice(0, 20)) process.stderr.write(`eventbus: ${e}\n`);
      if (!o.json) process.stdout.write(`replayed ${r.sent} of ${r.matched} event(s) to ${targetName} in ${(r.ms / 1000).toFixed(1)} s, failed ${r.failed}${skipped}\n`);
      if (r.aborted && sig) {
        const how = resume ? `to replay what is left, run the same command with --since ${resume.since} --until ${resume.until}` : 'nothing is left to replay';
        process.stderr.write(`eventbus: stopped by ${sig}: sent ${r.sent}, failed ${r.failed}; ${how}\n`);
        process.exitCode = SIGNAL_EXIT[sig];
      } else if (r.failed > 0) process.exitCode = 1;
    } finally {
      interrupt?.dispose();
      await lock?.release();
      await flushTelemetry(5_000);
      await store.close();
      ctx.clients().sqs.destroy();
      ctx.clients().sns.destroy();
    }
  });
}

