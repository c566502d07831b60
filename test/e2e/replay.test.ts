// `eventbus events` and `eventbus replay` as child processes against fauxqs and an SQLite archive.
import t, { type Test } from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { ReceiveMessageCommand, type Message } from '@aws-sdk/client-sqs';
import { openArchive } from '../../dist/archive/index.js';
import { replay } from '../../dist/cli/replay.js';
import { loadHandlers } from '../../dist/handlers.js';
import { provision } from '../../dist/publisher/provision.js';
import { emulator, uniqueName } from '../helpers/emulator.js';
import { spawnNode, writeConfig, writeHandlers } from '../helpers/process.js';
import { ev } from '../helpers/archive-contract.js';

const BASE = Date.parse('2024-05-01T00:00:00Z');

async function setup(t: Test) {
  const emu = await emulator();
  t.teardown(() => emu.stop());
  const dir = mkdtempSync(join(tmpdir(), 'eventbus-replay-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const archiveUrl = join(dir, 'archive.sqlite');
  const prefix = `${uniqueName('rp')}-`;
  const topic = uniqueName('topic');
  // Two queues that both subscribe to USER_COMMENT: a replay to one must not reach the other.
  const handlersDir = writeHandlers([{ queue: 'feed', events: ['USER_COMMENT'] }, { queue: 'notify', events: ['USER_COMMENT', 'USER_CREATED'] }]);
  t.teardown(() => rmSync(handlersDir, { recursive: true, force: true }));
  const config = writeConfig({ endpoint: emu.endpoint, region: 'us-east-1', queuePrefix: prefix, topic, handlersDir, archive: { url: archiveUrl } });
  const handlers = await loadHandlers({ handlersDir, queuePrefix: prefix, concurrency: 10, queues: {} });
  const topo = await provision(emu, { topic, handlers });
  const store = await openArchive(archiveUrl);
  t.teardown(() => store.close());
  // A day of events: 20 USER_COMMENT and 10 USER_CREATED, one every 10 minutes from midnight.
  for (let i = 0; i < 30; i++) await store.put(ev(`orig-${String(i).padStart(2, '0')}`, i % 3 === 2 ? 'USER_CREATED' : 'USER_COMMENT', BASE + i * 600_000, { i }));
  const url = (q: string) => topo.queues.find((x) => x.queue === q)!.url;
  return {
    emu,
    store,
    url,
    async cli(...args: string[]) {
      const p = spawnNode('bin/eventbus.js', [...args, '--config', config]);
      let stdout = '';
      p.child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
      t.teardown(() => p.kill());
      const started = Date.now();
      const exit = await p.exited;
      return { code: exit.code, out: p.output(), stdout, ms: exit.atMs - started };
    },
    async drain(queue: string): Promise<Message[]> {
      const all: Message[] = [];
      for (;;) {
        const r = await emu.sqs.send(new ReceiveMessageCommand({ QueueUrl: url(queue), MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 300, MessageAttributeNames: ['All'] }));
        if (!r.Messages?.length) return all;
        all.push(...r.Messages);
      }
    },
  };
}

const bodyEvent = (m: Message) => {
  const outer = JSON.parse(m.Body!) as Record<string, unknown>;
  return (outer.Type === 'Notification' ? JSON.parse(outer.Message as string) : outer) as Record<string, unknown> & { id: string; type: string; replayof?: string };
};
const snsAttr = (m: Message, name: string) => {
  const outer = JSON.parse(m.Body!) as { Type?: string; MessageAttributes?: Record<string, { Value: string }> };
  return outer.Type === 'Notification' ? outer.MessageAttributes?.[name]?.Value : m.MessageAttributes?.[name]?.StringValue;
};

t.test('eventbus events: pages, --all, --json, filters', async (t) => {
  const env = await setup(t);
  const page = await env.cli('events', '--type', 'USER_COMMENT', '--limit', '5');
  t.equal(page.code, 0, page.out);
  const lines = page.stdout.trim().split('\n');
  t.equal(lines.length, 6, 'five events and the next-page line');
  t.match(lines[0], /^2024-05-01T00:00:00.000Z  USER_COMMENT  orig-00  test  \{"i":0\}$/);
  const cursor = /^next page: --cursor (\S+)$/.exec(lines[5]!)?.[1];
  t.ok(cursor, 'a cursor for the next page');
  const next = await env.cli('events', '--type', 'USER_COMMENT', '--limit', '5', '--cursor', cursor!);
  t.match(next.stdout.split('\n')[0], /orig-07/, 'the next page continues after the last one shown');
  const json = await env.cli('events', '--json', '--since', '2024-05-01T04:00:00Z', '--until', '2024-05-01T05:00:00Z');
  const body = JSON.parse(json.stdout) as { events: Array<{ id: string }>; nextCursor: string | null };
  t.same(body.events.map((e) => e.id), ['orig-24', 'orig-25', 'orig-26', 'orig-27', 'orig-28', 'orig-29'], 'the GET /events shape');
  t.equal(body.nextCursor, null);
  const all = await env.cli('events', '--all', '--limit', '7');
  t.equal(all.stdout.trim().split('\n').length, 30, '--all follows the cursor to the end');
  const bad = await env.cli('events', '--since', 'yesterday');
  t.equal(bad.code, 2, 'a bad time is a usage error');
  const missing = await env.cli('events', '--archive-url', join(tmpdir(), 'no-such-dir', 'x.sqlite'));
  t.equal(missing.code, 1);
  t.match(missing.out, /no archive at/);
});

t.test('eventbus replay --to-queue reaches only that queue, with new ids, replayof and replayed=true', async (t) => {
  const env = await setup(t);
  const dry = await env.cli('replay', '--type', 'USER_COMMENT', '--since', '2024-05-01T00:00:00Z', '--until', '2024-05-02T00:00:00Z', '--to-queue', 'feed', '--dry-run');
  t.equal(dry.code, 0, dry.out);
  t.match(dry.stdout, /20 event\(s\) would be replayed to queue feed at 50\/s/);
  t.equal((await env.drain('feed')).length, 0, 'a dry run sends nothing');

  const r = await env.cli('replay', '--type', 'USER_COMMENT', '--since', '2024-05-01T00:00:00Z', '--until', '2024-05-02T00:00:00Z', '--to-queue', 'feed', '--rate', '200');
  t.equal(r.code, 0, r.out);
  t.match(r.stdout, /replayed 20 of 20 event\(s\) to queue feed/);
  t.notMatch(r.out, /replay \|/, 'no progress bar without a terminal');
  const feed = await env.drain('feed');
  t.equal(feed.length, 20, 'every USER_COMMENT reached feed');
  t.equal((await env.drain('notify')).length, 0, 'notify (also subscribed to USER_COMMENT) got nothing');
  const originals = new Map((await env.store.query({ types: ['USER_COMMENT'], limit: 100 })).events.map((e) => [e.id, e]));
  for (const m of feed) {
    const e = bodyEvent(m);
    t.ok(e.replayof && originals.has(e.replayof), `replayof names an archived event (${e.replayof})`);
    t.not(e.id, e.replayof, 'a new id');
    t.same({ ...e, id: undefined, replayof: undefined }, { ...originals.get(e.replayof!), id: undefined, replayof: undefined }, 'otherwise the same event');
    t.equal(m.MessageAttributes?.replayed?.StringValue, 'true');
    t.equal(m.MessageAttributes?.['event-type']?.StringValue, 'USER_COMMENT');
  }
  t.equal(new Set(feed.map((m) => bodyEvent(m).replayof)).size, 20, 'each archived event once');
});

t.test('eventbus replay --to-topic at a bounded rate; usage errors', async (t) => {
  const env = await setup(t);
  const r = await env.cli('replay', '--type', 'USER_CREATED', '--since', '2024-05-01T00:00:00Z', '--to-topic', '--rate', '4');
  t.equal(r.code, 0, r.out);
  t.match(r.stdout, /replayed 10 of 10 event\(s\) to topic/);
  // The 10th event may not leave before 9 / 4 = 2.25 s after the start.
  t.ok(r.ms >= 2250, `took ${r.ms} ms at --rate 4 for 10 events`);
  const notify = await env.drain('notify');
  t.equal(notify.length, 10, 'the topic fans out to the subscribed queue');
  t.equal(snsAttr(notify[0]!, 'replayed'), 'true', 'the attribute travels through SNS');
  t.ok(bodyEvent(notify[0]!).replayof?.startsWith('orig-'));
  t.equal((await env.drain('feed')).length, 0, 'feed is not subscribed to USER_CREATED');

  for (const args of [
    ['replay', '--to-queue', 'feed'],
    ['replay', '--since', '24h'],
    ['replay', '--since', '24h', '--to-topic', '--to-queue', 'feed'],
    ['replay', '--since', '24h', '--to-topic', '--rate', '0'],
  ]) {
    const u = await env.cli(...args);
    t.equal(u.code, 2, `${args.join(' ')}: usage error`);
  }
  const unknown = await env.cli('replay', '--since', '24h', '--to-queue', 'nope');
  t.equal(unknown.code, 1);
  t.match(unknown.out, /does not exist/);
});

t.test('replay draws a progress bar on a terminal and paces batches', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'eventbus-replay-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const store = await openArchive(join(dir, 'a.sqlite'));
  t.teardown(() => store.close());
  for (let i = 0; i < 40; i++) await store.put(ev(`p-${i}`, 'T', BASE + i));
  await store.put({ ...ev('replayed-one', 'T', BASE + 50), replayof: 'p-1' });
  const tty = Object.assign(new PassThrough(), { isTTY: true, columns: 120, cursorTo: () => true, clearLine: () => true, moveCursor: () => true });
  let drawn = '';
  tty.on('data', (d: Buffer) => (drawn += d.toString()));
  const sent: number[] = [];
  const fakeSqs = {
    async send(cmd: { input: { Entries: unknown[] } }) {
      sent.push(cmd.input.Entries.length);
      return { Successful: cmd.input.Entries.map((_, i) => ({ Id: String(i) })), Failed: [] };
    },
  };
  const started = Date.now();
  const r = await replay({ store, filter: {}, target: { kind: 'queue', sqs: fakeSqs as never, url: 'x', name: 'q' }, rate: 40, progress: tty });
  const ms = Date.now() - started;
  t.equal(r.sent, 40);
  t.equal(r.skippedReplays, 1, 'a replay is not replayed again by default');
  t.same(sent, Array(4).fill(10), 'batches of 10 at 40/s');
  t.ok(ms >= 900, `39 / 40 s at least (${ms} ms)`);
  t.match(drawn, /replay \|[█░]+\| 40\/40 events/, 'the bar reached 40/40');
});
