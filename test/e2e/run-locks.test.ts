// Issue 14 (Medium): `eventbus replay` is bounded when it starts (it kept paging into live traffic and
// into its own replays), and a second replay of a topic or redrive of a queue is refused while one
// runs, instead of sending the same messages twice.
import t, { type Test } from 'tap';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ReceiveMessageCommand, SendMessageCommand, type Message } from '@aws-sdk/client-sqs';
import { openArchive, type ArchiveStore } from '../../dist/archive/index.js';
import { takeRunLock } from '../../dist/archive/lock.js';
import { replay } from '../../dist/cli/replay.js';
import { loadHandlers } from '../../dist/handlers.js';
import { provision } from '../../dist/publisher/provision.js';
import { emulator, uniqueName } from '../helpers/emulator.js';
import { spawnNode, writeConfig, writeHandlers } from '../helpers/process.js';
import { ev } from '../helpers/archive-contract.js';

const BASE = Date.parse('2024-05-01T00:00:00Z');

async function sqliteStore(t: Test): Promise<{ store: ArchiveStore; file: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'eventbus-locks-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'archive.sqlite');
  const store = await openArchive(file);
  t.teardown(() => store.close());
  return { store, file };
}

t.test('replay without --until replays what was archived when it started, not what arrives meanwhile', async (t) => {
  const { store } = await sqliteStore(t);
  // Two pages' worth (the replay reads 500 per query), so it queries again after the arrivals below.
  for (let i = 0; i < 600; i++) await store.put(ev(`orig-${String(i).padStart(3, '0')}`, 'USER_COMMENT', BASE + i * 1000, { i }));
  let arrived = false;
  const live: ArchiveStore = {
    ...store,
    query: async (q) => {
      const page = await store.query(q);
      if (!arrived) {
        arrived = true;
        await new Promise((r) => setTimeout(r, 5)); // archived strictly after the replay started
        // While the replay runs: live traffic (time: just now), and copies that a replay to the topic
        // brings back into the archive with the original's time (here even with --include-replays).
        for (let i = 0; i < 40; i++) await store.put(ev(`live-${i}`, 'USER_COMMENT', Date.now() - 1000));
        for (let i = 0; i < 40; i++) await store.put({ ...ev(`copy-${i}`, 'USER_COMMENT', BASE + (550 + i) * 1000), replayof: `orig-${550 + i}` });
      }
      return page;
    },
  };
  const r = await replay({ store: live, filter: { sinceMs: BASE }, target: null, rate: 1000, dryRun: true, includeReplays: true });
  // Broke: 680 (it paged on into both).
  t.equal(r.matched, 600, 'exactly the 600 events archived before the start');
  t.equal(arrived, true, 'the arrivals happened during the run');

  const again = await replay({ store, filter: { sinceMs: BASE, untilMs: BASE + 100_000 }, target: null, rate: 1000, dryRun: true });
  t.equal(again.matched, 100, 'an explicit --until still bounds by event time');
});

t.test('a held run lock: heartbeats keep it past its TTL; a lost lock stops the run', async (t) => {
  const { store } = await sqliteStore(t);
  const held = await takeRunLock(store, 'replay:events', 'replay to queue email', 600);
  await new Promise((r) => setTimeout(r, 2000));
  await t.rejects(takeRunLock(store, 'replay:events', 'replay to topic events', 600), { code: 'ERR_LOCKED', message: /replay:events.*replay to queue email, by .* pid \d+/ }, 'still held after three TTLs');
  t.equal(held.signal.aborted, false);
  await held.release();
  const next = await takeRunLock(store, 'replay:events', 'replay to topic events', 600);
  await next.release();
  t.pass('free once released');

  // A holder that finds its lock gone (it stalled past the TTL and another run took it) stops.
  const forgetful: ArchiveStore = { ...store, renewLock: async () => false };
  const lost = await takeRunLock(forgetful, 'replay:other', 'replay', 300);
  t.teardown(() => lost.release());
  // The heartbeat timer is unref'd (a run that forgot to release must not keep the CLI alive): hold the loop open.
  const keepAlive = setTimeout(() => undefined, 10_000);
  await new Promise<void>((resolve) => lost.signal.addEventListener('abort', () => resolve()));
  clearTimeout(keepAlive);
  t.match(lost.signal.reason, { code: 'ERR_LOCKED', message: /was lost/ });
  await store.put(ev('x', 'T', BASE));
  await t.rejects(
    replay({ store, filter: {}, target: { kind: 'queue', sqs: null as never, url: 'unused', name: 'q' }, rate: 1000, signal: lost.signal }),
    { code: 'ERR_LOCKED' },
    'replay stops before sending',
  );
});

async function cliSetup(t: Test, archive: Record<string, unknown> | null) {
  const emu = await emulator();
  t.teardown(() => emu.stop());
  const { store, file } = await sqliteStore(t);
  const prefix = `${uniqueName('lk')}-`;
  const topic = uniqueName('topic');
  const handlersDir = writeHandlers([{ queue: 'orders' }]);
  t.teardown(() => rmSync(handlersDir, { recursive: true, force: true }));
  const config = writeConfig({ endpoint: emu.endpoint, region: 'us-east-1', queuePrefix: prefix, topic, handlersDir, archive: { url: file, ...archive } });
  const handlers = await loadHandlers({ handlersDir, queuePrefix: prefix, concurrency: 10, queues: {} });
  const topo = await provision(emu, { topic, handlers });
  for (let i = 0; i < 5; i++) await store.put(ev(`e-${i}`, 'ORDER_PLACED', BASE + i * 1000));
  return {
    emu,
    store,
    topic,
    prefix,
    dlqUrl: topo.queues[0]!.dlqUrl,
    async drain(queue: string): Promise<Message[]> {
      const url = topo.queues.find((q) => q.queue === queue)!.url;
      const all: Message[] = [];
      for (;;) {
        const r = await emu.sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1, VisibilityTimeout: 300 }));
        if (!r.Messages?.length) return all;
        all.push(...r.Messages);
      }
    },
    async cli(...args: string[]) {
      const p = spawnNode('bin/eventbus.js', [...args, '--config', config]);
      t.teardown(() => p.kill());
      const exit = await p.exited;
      return { code: exit.code, out: p.output() };
    },
  };
}

t.test('eventbus replay: a second replay of the topic is refused while one runs', async (t) => {
  const env = await cliSetup(t, null);
  const first = await env.store.tryLock(`replay:${env.topic}`, 'another-run', 'replay to queue orders, by host-a pid 42, since 2026-12-06T08:00:00Z', 60_000);
  t.equal(first.acquired, true);
  // Broke: the second replay ran alongside the first (exit 0) and every event reached the queue twice.
  const second = await env.cli('replay', '--since', String(BASE), '--to-queue', 'orders');
  t.equal(second.code, 1, second.out);
  t.match(second.out, /another run holds the lock "replay:.*" .*replay to queue orders, by host-a pid 42.*\[ERR_LOCKED\]/);
  t.notMatch(second.out, /replayed \d+/, 'nothing was sent');

  await env.store.unlock(`replay:${env.topic}`, 'another-run');
  const alone = await env.cli('replay', '--since', String(BASE), '--to-queue', 'orders');
  t.equal(alone.code, 0, alone.out);
  t.match(alone.out, /replayed 5 of 5 event\(s\) to queue orders/);
  t.equal((await env.store.tryLock(`replay:${env.topic}`, 'after', 'after', 60_000)).acquired, true, 'the replay gave its lock back');
  await env.store.unlock(`replay:${env.topic}`, 'after');
  t.equal((await env.drain('orders')).length, 5);

  // Two started at once (each takes about 2 s at --rate 2): one runs, the other is refused.
  // Broke: both ran and the queue got every event twice.
  const both = await Promise.all([0, 1].map(() => env.cli('replay', '--since', String(BASE), '--to-queue', 'orders', '--rate', '2')));
  t.same(both.map((r) => r.code).sort(), [0, 1], both.map((r) => r.out).join('\n---\n'));
  t.match(both.find((r) => r.code === 1)?.out, /\[ERR_LOCKED\]/);
  t.equal((await env.drain('orders')).length, 5, 'each event reached the queue once');
});

t.test('eventbus dlq redrive: refused while another redrive of the queue runs; an advisory without an archive', async (t) => {
  const env = await cliSetup(t, { enabled: true });
  await env.emu.sqs.send(new SendMessageCommand({ QueueUrl: env.dlqUrl, MessageBody: '{"type":"ORDER_PLACED"}' }));
  t.equal((await env.store.tryLock(`redrive:${env.prefix}orders-dlq`, 'another-run', 'redrive of orders-dlq, by host-b pid 7', 60_000)).acquired, true);
  const second = await env.cli('dlq', 'redrive', 'orders');
  t.equal(second.code, 1, second.out);
  t.match(second.out, /another run holds the lock "redrive:.*orders-dlq".*host-b pid 7.*\[ERR_LOCKED\]/);
  await env.store.unlock(`redrive:${env.prefix}orders-dlq`, 'another-run');
  const alone = await env.cli('dlq', 'redrive', 'orders');
  t.equal(alone.code, 0, alone.out);
  t.match(alone.out, /moved 1, failed 0/);
  t.notMatch(alone.out, /not detected/, 'no advisory when the lock was taken');

  const noArchive = await cliSetup(t, { enabled: false });
  const r = await noArchive.cli('dlq', 'redrive', 'orders');
  t.equal(r.code, 0, r.out);
  t.match(r.out, /note: no archive store holds a redrive lock \(archive\.enabled is off\), so a second redrive of .*orders-dlq running at the same time is not detected/);
});
