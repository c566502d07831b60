// Issue 17: ordered handlers (FIFO queues on the FIFO topic) and message groups, on the emulator
// (fauxqs: FIFO topics and queues, group locking, deduplication; see docs/fauxqs.md for where it
// differs from AWS). Every order, overlap and parallelism check is computed from the records the
// fixture handler writes as it starts and ends each message, not from our metrics.
import t from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ListTopicsCommand } from '@aws-sdk/client-sns';
import { ARCHIVE_HANDLER_FILE, openArchive } from '../../dist/archive/index.js';
import { provision, formatActions } from '../../dist/publisher/provision.js';
import { startBus, waitFor, uniqueName, type Bus, type Seen } from '../helpers/bus.js';
import { emulator } from '../helpers/emulator.js';
import { resolvedHandler } from '../helpers/resolved-handler.js';
import type { ResolvedHandler } from '../../dist/handlers.js';

const rand = (max: number) => Math.floor(Math.random() * (max + 1));

/** Per group, the records of one queue in the order they happened. */
function byGroup(records: Seen[]): Map<string, Seen[]> {
  const out = new Map<string, Seen[]>();
  for (const r of [...records].sort((a, b) => a.at - b.at)) {
    const g = String(r.data.g);
    if (!out.has(g)) out.set(g, []);
    out.get(g)!.push(r);
  }
  return out;
}

/** Checks that no two runs of one group overlapped: each start comes after the previous end. Returns the violations. */
function overlapsWithinGroups(bus: Bus, queue: string): string[] {
  const bad: string[] = [];
  const runs = new Map<string, Array<{ start: number; end: number }>>();
  const ends = bus.ended(queue);
  for (const s of bus.started(queue)) {
    const end = ends.find((e) => e.messageId === s.messageId && e.receiveCount === s.receiveCount)?.at ?? s.at;
    const g = String(s.data.g);
    if (!runs.has(g)) runs.set(g, []);
    runs.get(g)!.push({ start: s.at, end });
  }
  for (const [g, rs] of runs) {
    rs.sort((a, b) => a.start - b.start);
    for (let i = 1; i < rs.length; i++) if (rs[i]!.start < rs[i - 1]!.end) bad.push(`group ${g}: a run started at ${rs[i]!.start} before the previous ended at ${rs[i - 1]!.end}`);
  }
  return bad;
}

/** The most groups running at one moment (from start/end records). */
function peakGroups(bus: Bus, queue: string): number {
  const ends = bus.ended(queue);
  const points: Array<[number, number, string]> = [];
  for (const s of bus.started(queue)) {
    const end = ends.find((e) => e.messageId === s.messageId && e.receiveCount === s.receiveCount);
    if (!end) continue;
    points.push([s.at, 1, String(s.data.g)], [end.at, -1, String(s.data.g)]);
  }
  // Ends before starts at the same ms: touching runs do not overlap.
  points.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  const running = new Map<string, number>();
  let peak = 0;
  for (const [, d, g] of points) {
    running.set(g, (running.get(g) ?? 0) + d);
    peak = Math.max(peak, [...running.values()].filter((n) => n > 0).length);
  }
  return peak;
}

const resolved = (queue: string, o: Partial<ResolvedHandler> = {}): ResolvedHandler => resolvedHandler(queue, { events: ['ORD'], ...o });

t.test('provisioning: the FIFO topic, an ordered handler\'s FIFO queue and DLQ on it, in the dry-run plan; a rerun changes nothing', async (t) => {
  const emu = await emulator();
  t.teardown(() => emu.stop());
  const topic = uniqueName('events');
  const ord = resolved(uniqueName('orders'), { ordered: true });
  const plain = resolved(uniqueName('plain'));
  const plan = await provision(emu, { topic, handlers: [ord, plain], dryRun: true });
  const text = formatActions(plan.actions);
  t.match(text, `+ create topic ${topic}.fifo (SNS FIFO topic`);
  t.match(text, `+ create queue ${ord.queue}-dlq.fifo (FIFO, MessageRetentionPeriod`);
  t.match(text, `+ create queue ${ord.queue}.fifo (FIFO, VisibilityTimeout=30, redrive to ${ord.queue}-dlq.fifo after 5, SSE-SQS)`);
  t.match(text, `+ create subscription ${ord.queue}.fifo (to ${topic}.fifo, event-type in [ORD], SNS envelope)`);
  t.match(text, `+ create subscription ${plain.queue} (event-type in [ORD], SNS envelope)`);
  t.same((await emu.sns.send(new ListTopicsCommand({}))).Topics ?? [], [], 'the dry run made nothing');

  const r1 = await provision(emu, { topic, handlers: [ord, plain] });
  t.match(r1.fifoTopicArn, /\.fifo$/);
  t.match(r1.queues[0]!.arn, new RegExp(`${ord.queue}\\.fifo$`));
  t.match(r1.queues[0]!.dlqArn, new RegExp(`${ord.queue}-dlq\\.fifo$`));
  const r2 = await provision(emu, { topic, handlers: [ord, plain] });
  t.ok(r2.actions.every((a) => a.kind === 'ok'), `a rerun is all ok:\n${formatActions(r2.actions)}`);
});

t.test('5 groups x 40 events: publish order per group, never two of a group at once, groups in parallel; the unordered handler and the archive see every grouped event, the ordered one no ungrouped event', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'eventbus-ordered-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const url = join(dir, 'archive.sqlite');
  const bus = await startBus(
    [
      { queue: 'ordered', events: ['ORD'], ordered: true, concurrency: 10 },
      { queue: 'plain', events: ['ORD'], concurrency: 10 },
      { queue: 'archive', file: ARCHIVE_HANDLER_FILE },
    ],
    { config: { concurrency: 30, archive: { enabled: true, url } } },
  );
  t.teardown(() => bus.stop());
  const groups = ['A', 'B', 'C', 'D', 'E'];
  // Interleaved across groups, in order within each: one publishBatch (its chunks go out in order).
  const entries = [];
  for (let n = 0; n < 40; n++) for (const g of groups) entries.push({ type: 'ORD', data: { g, n, sleepMs: rand(20) }, groupId: `tenant-${g}` });
  const out = await bus.publisher.publishBatch(entries);
  t.equal(out.failed.length, 0, 'every grouped event published');
  const ungrouped = await Promise.all([0, 1, 2].map((n) => bus.publisher.createEvent('ORD', { g: 'none', n })));

  await waitFor('every grouped event handled by the ordered handler', () => bus.ended('ordered').length >= 200, 60_000);
  await waitFor('every event handled by the unordered handler', () => new Set(bus.ended('plain').map((e) => e.id)).size >= 203, 30_000);

  const ended = bus.ended('ordered');
  t.equal(ended.length, 200, 'each grouped event handled once by the ordered handler');
  t.equal(new Set(ended.map((e) => e.id)).size, 200);
  for (const [g, records] of byGroup(bus.started('ordered'))) {
    t.same(records.map((r) => r.data.n), Array.from({ length: 40 }, (_, i) => i), `group ${g}: started in publish order`);
  }
  t.same(overlapsWithinGroups(bus, 'ordered'), [], 'no two messages of one group ran at once');
  const peak = peakGroups(bus, 'ordered');
  t.ok(peak > 1, `more than one group ran at once (peak ${peak} groups)`);
  t.notOk(bus.started('ordered').some((s) => s.data.g === 'none'), 'no ungrouped event reached the ordered handler');
  const plainIds = new Set(bus.ended('plain').map((e) => e.id));
  t.ok(out.successful.every((s) => plainIds.has(s.id)) && ungrouped.every((e) => plainIds.has(e.id)), 'the unordered handler saw every event, grouped or not');
  t.equal(bus.ended('plain').filter((e) => e.data.g !== 'none').length, 200, 'each grouped event once on the standard queue (not from both topics)');

  await waitFor('the archive has every event', async () => {
    const d = await bus.depth('archive');
    return d.visible + d.inFlight === 0;
  }, 20_000);
  const store = await openArchive(url);
  t.teardown(() => store.close());
  t.equal(await store.count({ types: ['ORD'] }), 203, 'the archive kept every event');
  const events = [];
  let cursor: string | null = null;
  do {
    const page = await store.query({ types: ['ORD'], limit: 100, cursor });
    events.push(...page.events);
    cursor = page.nextCursor;
  } while (cursor);
  t.equal(events.filter((e) => typeof e.groupid === 'string' && e.groupid.startsWith('tenant-')).length, 200, 'archived events keep their groupid');
});

t.test('a message of group A fails twice then succeeds: A waits for it, in order; the other groups finish without waiting', async (t) => {
  const bus = await startBus([{ queue: 'ordered', events: ['ORD'], ordered: true, concurrency: 10 }], { config: { retry: { baseDelaySec: 1, maxDelaySec: 2 } } });
  t.teardown(() => bus.stop());
  const entries = [];
  for (let n = 0; n < 10; n++) {
    for (const g of ['A', 'B', 'C']) {
      entries.push({ type: 'ORD', data: { g, n, ...(g === 'A' && n === 2 ? { fail: 'throw', failTimes: 2 } : {}) }, groupId: g });
    }
  }
  t.equal((await bus.publisher.publishBatch(entries)).failed.length, 0);
  await waitFor('every message handled', () => bus.ended('ordered').length >= 30, 30_000);
  const a = byGroup(bus.started('ordered')).get('A')!;
  t.same(a.map((r) => r.data.n), [0, 1, 2, 2, 2, 3, 4, 5, 6, 7, 8, 9], 'A: the failing message ran three times, and its later messages only after it, in order');
  t.same(a.filter((r) => r.data.n === 2).map((r) => r.receiveCount), [1, 2, 3]);
  const aRetried = a.filter((r) => r.data.n === 2)[2]!.at;
  const othersDone = Math.max(...bus.ended('ordered').filter((e) => e.data.g !== 'A').map((e) => e.at));
  t.ok(othersDone < aRetried, `B and C finished (${othersDone}) before A's retry ran (${aRetried}): they did not wait for it`);
  t.same(overlapsWithinGroups(bus, 'ordered'), []);
});

t.test('a message of group A that always fails goes to the FIFO DLQ after maxReceiveCount, and A goes on', async (t) => {
  const bus = await startBus([{ queue: 'ordered', events: ['ORD'], ordered: true, maxReceiveCount: 2 }], { config: { retry: { baseDelaySec: 1, maxDelaySec: 1 } } });
  t.teardown(() => bus.stop());
  const entries = [0, 1, 2, 3].map((n) => ({ type: 'ORD', data: { g: 'A', n, ...(n === 1 ? { fail: 'false' } : {}) }, groupId: 'A' }));
  entries.push({ type: 'ORD', data: { g: 'B', n: 0 }, groupId: 'B' });
  t.equal((await bus.publisher.publishBatch(entries)).failed.length, 0);
  await waitFor("A's later messages handled", () => bus.ended('ordered').filter((e) => e.data.g === 'A').length >= 3, 30_000);
  const a = byGroup(bus.started('ordered')).get('A')!;
  t.same(a.map((r) => r.data.n), [0, 1, 1, 2, 3], 'A: n=1 failed twice (maxReceiveCount 2), then A went on in order');
  const dlq = await bus.receiveAll('ordered', true);
  t.equal(dlq.length, 1, 'one message in <queue>-dlq.fifo');
  t.equal(JSON.parse(JSON.parse(dlq[0]!.Body!).Message).data.n, 1, 'the failing one');
  t.equal(bus.ended('ordered').filter((e) => e.data.g === 'B').length, 1, 'B handled');
});

t.test('the same event id published twice within 5 minutes is handled once by the ordered handler', async (t) => {
  const bus = await startBus([
    { queue: 'ordered', events: ['ORD'], ordered: true },
    { queue: 'plain', events: ['ORD'] },
  ]);
  t.teardown(() => bus.stop());
  const id = `dup-${uniqueName()}`;
  await bus.publisher.createEvent('ORD', { g: 'A', n: 0 }, { id, groupId: 'A' });
  await bus.publisher.createEvent('ORD', { g: 'A', n: 0 }, { id, groupId: 'A' });
  await bus.publisher.createEvent('ORD', { g: 'A', n: 1 }, { groupId: 'A' });
  await waitFor('the next event of the group handled', () => bus.ended('ordered').some((e) => e.data.n === 1), 20_000);
  // The duplicate would have come before n=1 (same group, published before it).
  t.equal(bus.ended('ordered').filter((e) => e.id === id).length, 1, 'handled once: the FIFO topic deduplicated it (MessageDeduplicationId = the event id)');
  await waitFor('the standard queue saw both publishes', () => bus.ended('plain').filter((e) => e.id === id).length >= 2, 10_000);
  t.pass('a standard topic does not deduplicate: the unordered handler saw it twice (same id, for it to dedupe)');
});

t.test('groupConcurrency 2: a tenant flooding 200 messages does not hold back another tenant\'s 10', async (t) => {
  const bus = await startBus([{ queue: 'fair', events: ['JOB'], groupConcurrency: 2, concurrency: 20 }], { config: { concurrency: 20 } });
  t.teardown(() => bus.stop());
  const flood = Array.from({ length: 200 }, (_, n) => ({ type: 'JOB', data: { g: 'flood', n, sleepMs: 20 }, groupId: 'flood' }));
  t.equal((await bus.publisher.publishBatch(flood)).failed.length, 0);
  const quiet = Array.from({ length: 10 }, (_, n) => ({ type: 'JOB', data: { g: 'quiet', n, sleepMs: 20 }, groupId: 'quiet' }));
  t.equal((await bus.publisher.publishBatch(quiet)).failed.length, 0);
  await waitFor('every message handled', () => bus.ended('fair').length >= 210, 60_000);
  const starts = bus.started('fair').sort((a, b) => a.at - b.at);
  const lastQuietStart = Math.max(...starts.filter((s) => s.data.g === 'quiet').map((s) => s.at));
  const floodEnds = bus.ended('fair').filter((e) => e.data.g === 'flood').sort((a, b) => a.at - b.at);
  const floodHalf = floodEnds[99]!.at;
  t.ok(lastQuietStart < floodHalf, `the quiet tenant's messages all started (last at ${lastQuietStart}) before the flood was half done (${floodHalf})`);
  const peakFlood = peakPerGroup(bus, 'fair', 'flood');
  t.ok(peakFlood <= 2, `never more than 2 of the flooding tenant at once (peak ${peakFlood})`);
  t.equal(peakFlood, 2, 'and it did use its 2');
});

/** The most messages of one group running at one moment. */
function peakPerGroup(bus: Bus, queue: string, g: string): number {
  const ends = bus.ended(queue);
  const points: Array<[number, number]> = [];
  for (const s of bus.started(queue).filter((s) => s.data.g === g)) {
    const end = ends.find((e) => e.messageId === s.messageId && e.receiveCount === s.receiveCount);
    if (end) points.push([s.at, 1], [end.at, -1]);
  }
  points.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let n = 0;
  let peak = 0;
  for (const [, d] of points) peak = Math.max(peak, (n += d));
  return peak;
}
