// What every archive store must do, run against SQLite and PostgreSQL alike.
import type { Test } from 'tap';
import { MAX_PAGE_BYTES, openArchive, type ArchiveStore } from '../../dist/archive/index.js';
import type { CloudEvent } from '../../dist/types.js';

export function ev(id: string, type: string, time: string | number, data: unknown = {}): CloudEvent {
  return { specversion: '1.0', id, source: 'test', type, time: typeof time === 'number' ? new Date(time).toISOString() : time, datacontenttype: 'application/json', data };
}

/** Runs the store contract as subtests; `open` gives a fresh, empty store each time. */
export function storeContract(t: Test, open: () => Promise<ArchiveStore>): void {
  t.test('idempotent on event id', async (t) => {
    const s = await open();
    t.teardown(() => s.close());
    const e = ev('same-id', 'A', '2024-05-01T10:00:00Z', { n: 1 });
    t.equal(await s.put(e), true, 'first put inserts');
    t.equal(await s.put(e), false, 'redelivery is a no-op');
    t.equal(await s.put({ ...e, data: { n: 2 } }), false, 'same id, other body: the first is kept');
    const page = await s.query({});
    t.equal(page.events.length, 1);
    t.same(page.events[0], e, 'the stored document is the event as sent');
    t.equal(await s.count({}), 1);
    t.same(JSON.parse((await s.getJson('same-id')) ?? 'null'), e, 'getJson: one event by id (the console)');
    t.equal(await s.getJson('no-such-id'), null);
  });

  t.test('feed order, filters and cursor paging', async (t) => {
    const s = await open();
    t.teardown(() => s.close());
    const base = Date.parse('2024-05-01T00:00:00Z');
    const all: CloudEvent[] = [];
    // 25 events, inserted out of order, several sharing a time (ties ordered by id), and one with a
    // time offset that sorts differently as text than as an instant.
    for (let i = 0; i < 25; i++) all.push(ev(`e-${String((i * 7) % 25).padStart(2, '0')}`, i % 3 === 0 ? 'USER_COMMENT' : 'USER_CREATED', base + Math.floor(i / 2) * 1000, { i }));
    all.push(ev('zone', 'USER_COMMENT', '2024-05-01T02:00:05+02:00', { zone: true })); // = 00:00:05Z
    for (const e of [...all].reverse()) await s.put(e);
    const key = (e: CloudEvent) => [Date.parse(e.time), e.id] as const;
    const sorted = [...all].sort((a, b) => key(a)[0] - key(b)[0] || (key(a)[1] < key(b)[1] ? -1 : key(a)[1] > key(b)[1] ? 1 : 0));

    const pages: CloudEvent[][] = [];
    let cursor: string | null = null;
    do {
      const p = await s.query({ limit: 10, cursor });
      pages.push(p.events);
      cursor = p.nextCursor;
    } while (cursor !== null && pages.length < 10);
    t.same(pages.map((p) => p.length), [10, 10, 6], 'three pages; the last one says there is no more');
    t.same(pages.flat().map((e) => e.id), sorted.map((e) => e.id), 'oldest first, ties by id, no duplicates or gaps across pages');

    const comments = await s.query({ types: ['USER_COMMENT'], limit: 1000 });
    t.same(comments.events.map((e) => e.id), sorted.filter((e) => e.type === 'USER_COMMENT').map((e) => e.id), 'type filter');
    t.equal(comments.nextCursor, null);
    const window = await s.query({ sinceMs: base + 3000, untilMs: base + 6000, limit: 1000 });
    t.same(window.events.map((e) => e.id), sorted.filter((e) => Date.parse(e.time) >= base + 3000 && Date.parse(e.time) < base + 6000).map((e) => e.id), 'since inclusive, until exclusive');
    t.ok(window.events.some((e) => e.id === 'zone'), 'an offset time is compared as an instant');
    t.equal(await s.count({ types: ['USER_COMMENT', 'USER_CREATED'], sinceMs: base + 3000 }), sorted.filter((e) => Date.parse(e.time) >= base + 3000).length);
    await t.rejects(s.query({ cursor: 'not-a-cursor' }), { code: 'ERR_USAGE' }, 'a foreign cursor is refused');
    await t.rejects(s.query({ limit: 0 }), { code: 'ERR_USAGE' });
  });

  t.test('a page stops at MAX_PAGE_BYTES of events (at least one event), and the cursor goes on from there', async (t) => {
    const s = await open();
    t.teardown(() => s.close());
    const big = 'x'.repeat(300 * 1024);
    for (let i = 0; i < 12; i++) await s.put(ev(`big-${String(i).padStart(2, '0')}`, 'BIG', 1_700_000_000_000 + i, { big }));
    await s.put(ev('huge', 'BIG', 1_700_000_000_100, { huge: 'y'.repeat(MAX_PAGE_BYTES + 1) }));
    await s.put(ev('tail', 'BIG', 1_700_000_000_200));
    const sizes: number[] = [];
    const ids: string[] = [];
    let cursor: string | null = null;
    do {
      const p: { events: CloudEvent[]; nextCursor: string | null } = await s.query({ limit: 1000, cursor });
      sizes.push(p.events.length);
      ids.push(...p.events.map((e) => e.id));
      cursor = p.nextCursor;
    } while (cursor !== null && sizes.length < 20);
    // 300 KiB events: six fit in 2 MiB, a seventh would not; an event larger than a page comes alone.
    t.same(sizes, [6, 6, 1, 1], 'pages of 6, 6, the huge event alone, the last one');
    t.equal(new Set(ids).size, 14, 'every event once');
    const raw = await s.queryJson({ limit: 1000 });
    t.same(raw.events.map((e) => (JSON.parse(e) as CloudEvent).id), ids.slice(0, 6), 'queryJson: the same page as stored JSON texts');
  });

  t.test('run locks: one holder at a time, renewed by its holder, free again after the TTL', async (t) => {
    const s = await open();
    t.teardown(() => s.close());
    const a = await s.tryLock('replay:events', 'holder-a', 'replay to queue email, by host-a', 60_000);
    t.equal(a.acquired, true, 'a free lock is taken');
    const b = await s.tryLock('replay:events', 'holder-b', 'replay to topic events, by host-b', 60_000);
    t.equal(b.acquired, false, 'a held lock is refused');
    t.match(b, { info: 'replay to queue email, by host-a' }, 'and says who holds it');
    t.ok(!b.acquired && b.expiresInMs > 50_000 && b.expiresInMs <= 60_000, 'and until when at the latest');
    t.equal((await s.tryLock('redrive:email-dlq', 'holder-b', 'redrive', 60_000)).acquired, true, 'another name is another lock');
    t.equal(await s.renewLock('replay:events', 'holder-a', 60_000), true, 'its holder renews it');
    t.equal(await s.renewLock('replay:events', 'holder-b', 60_000), false, 'nobody else does');
    await s.unlock('replay:events', 'holder-b');
    t.equal((await s.tryLock('replay:events', 'holder-c', 'c', 60_000)).acquired, false, "unlock by another holder leaves it held");
    await s.unlock('replay:events', 'holder-a');
    t.equal((await s.tryLock('replay:events', 'holder-c', 'c', 200)).acquired, true, 'free once its holder unlocked it');
    // A holder that died stops renewing: the lock is free after its TTL.
    await new Promise((r) => setTimeout(r, 400));
    t.equal((await s.tryLock('replay:events', 'holder-d', 'd', 60_000)).acquired, true, 'an expired lock is taken over');
    t.equal(await s.renewLock('replay:events', 'holder-c', 60_000), false, 'and the old holder learns it lost it');
  });

  t.test('archivedByMs: only what was archived by an instant of the store clock', async (t) => {
    const s = await open();
    t.teardown(() => s.close());
    await s.put(ev('before', 'T', 1_700_000_000_000));
    await new Promise((r) => setTimeout(r, 20));
    const { nowMs } = await s.tryLock('snapshot', 'h', 'h', 60_000);
    await new Promise((r) => setTimeout(r, 20));
    await s.put(ev('after', 'T', 1_600_000_000_000));
    t.same((await s.query({ archivedByMs: nowMs })).events.map((e) => e.id), ['before']);
    t.equal(await s.count({ archivedByMs: nowMs }), 1);
    t.equal(await s.count({}), 2);
  });

  t.test('concurrent writers of the same ids keep one row each', async (t) => {
    const a = await open();
    t.teardown(() => a.close());
    const events = Array.from({ length: 40 }, (_, i) => ev(`c-${i}`, 'C', 1_700_000_000_000 + i));
    const results = await Promise.all([...events, ...events, ...events].map((e) => a.put(e)));
    t.equal(results.filter(Boolean).length, 40, 'each id inserted once');
    t.equal(await a.count({}), 40);
  });
}

/** The webhook delivery records every archive store keeps (accept each delivery once); `fresh` gives a new store's url. */
export function deliveryContract(t: Test, fresh: () => Promise<string>): void {
  const open = async () => openArchive(await fresh());
  t.test('a delivery is claimed once, completed, remembered for its TTL, then free again', async (t) => {
    const s = await open();
    t.teardown(() => s.close());
    const now = 1_800_000_000_000;
    t.equal(await s.claimDelivery('stripe', 'id:evt_1', now, 60_000), 'new');
    t.equal(await s.claimDelivery('stripe', 'id:evt_1', now + 1, 60_000), 'pending', 'held by the first request');
    t.equal(await s.claimDelivery('github', 'id:evt_1', now, 60_000), 'new', 'per source');
    await s.completeDelivery('stripe', 'id:evt_1', now + 2, 300_000);
    t.equal(await s.claimDelivery('stripe', 'id:evt_1', now + 299_000, 60_000), 'done', 'a repeat within the TTL');
    await s.releaseDelivery('stripe', 'id:evt_1');
    t.equal(await s.claimDelivery('stripe', 'id:evt_1', now + 299_000, 60_000), 'done', 'release never drops a completed record');
    t.equal(await s.claimDelivery('stripe', 'id:evt_1', now + 302_001, 60_000), 'new', 'after the TTL the record is free');
  });

  t.test('a released claim, or one whose holder died (lease over), is free again', async (t) => {
    const s = await open();
    t.teardown(() => s.close());
    const now = 1_800_000_000_000;
    t.equal(await s.claimDelivery('src', 'a', now, 60_000), 'new');
    await s.releaseDelivery('src', 'a');
    t.equal(await s.claimDelivery('src', 'a', now, 60_000), 'new', 'released: the retry is accepted');
    t.equal(await s.claimDelivery('src', 'a', now + 59_999, 60_000), 'pending');
    t.equal(await s.claimDelivery('src', 'a', now + 60_000, 60_000), 'new', 'the lease ended');
    t.equal(await s.claimDelivery('src', "it's; DROP TABLE events; --", now, 60_000), 'new', 'ids are parameters, not SQL');
    t.equal(await s.count({}), 0, 'events untouched');
  });

  t.test('concurrent claims of one delivery: exactly one wins', async (t) => {
    const url = await fresh();
    const [a, b] = await Promise.all([openArchive(url), openArchive(url)]);
    t.teardown(() => Promise.all([a.close(), b.close()]));
    const now = 1_800_000_000_000;
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).claimDelivery('src', 'race', now, 60_000)));
    t.equal(results.filter((r) => r === 'new').length, 1);
    t.equal(results.filter((r) => r === 'pending').length, 19);
  });
}
