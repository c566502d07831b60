// The embedded (SQLite) archive: the store contract, the built-in handler under redelivery, and GET /events.
import t from 'tap';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ARCHIVE_HANDLER_FILE, openArchive } from '../../dist/archive/index.js';
import { startBus, waitFor } from '../helpers/bus.js';
import { deliveryContract, ev, storeContract } from '../helpers/archive-contract.js';

const tmp = (t: { teardown(fn: () => void): void }) => {
  const dir = mkdtempSync(join(tmpdir(), 'eventbus-archive-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
};

t.test('SQLite store contract', async (t) => {
  const dir = tmp(t);
  let n = 0;
  storeContract(t, () => openArchive(join(dir, `a${n++}.sqlite`)));
  t.test('SQLite webhook delivery records', async (t) => {
    deliveryContract(t, async () => join(dir, `a${n++}.sqlite`));
  });
});

t.test('SQLite store: WAL mode, two connections (threads/processes) on one file, no create for readers', async (t) => {
  const dir = tmp(t);
  const file = join(dir, 'nested', 'archive.sqlite');
  await t.rejects(openArchive(file, { create: false }), { code: 'ERR_ARCHIVE', message: /no archive at/ });
  const [a, b] = await Promise.all([openArchive(`file:${file}`), openArchive(file)]);
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  await a.put(ev('x', 'T', 1_700_000_000_000));
  t.equal(await b.put(ev('x', 'T', 1_700_000_000_000)), false, 'the other connection sees the row');
  t.ok(existsSync(`${file}-wal`), 'WAL mode: the write-ahead log is beside the file');
});

t.test('SQLite store: a new archive folder and its files are readable by the owner only', async (t) => {
  // Issue 14 (Low): archived events carry user data and webhook bodies. Broke: created 0755 / 0644
  // (the umask's), readable by every user of the host.
  const base = mkdtempSync(join(tmpdir(), 'eb-perm-'));
  t.teardown(() => rmSync(base, { recursive: true, force: true }));
  const file = join(base, 'data', 'archive.sqlite');
  const store = await openArchive(file);
  await store.put(ev('p', 'T', 1_700_000_000_000));
  t.equal(statSync(join(base, 'data')).mode & 0o777, 0o700, 'folder 0700');
  for (const f of [file, `${file}-wal`, `${file}-shm`]) {
    if (existsSync(f)) t.equal(statSync(f).mode & 0o777, 0o600, `${f.slice(base.length)} 0600`);
  }
  t.ok(existsSync(`${file}-wal`), 'the WAL file was checked too');
  await store.close();
});

t.test('the archive handler keeps each event once under redelivery; GET /events pages it behind the token', async (t) => {
  const dir = tmp(t);
  const url = join(dir, 'archive.sqlite');
  const bus = await startBus([{ queue: 'archive', file: ARCHIVE_HANDLER_FILE, visibilityTimeoutSec: 5 }], {
    config: { archive: { enabled: true, url }, http: { host: '127.0.0.1', port: 0, apiToken: 's3cret-token' } },
  });
  t.teardown(() => bus.stop());
  const base = Date.parse('2024-05-01T12:00:00Z');
  const events = Array.from({ length: 12 }, (_, i) => ev(`ev-${String(i).padStart(2, '0')}`, i % 2 ? 'USER_COMMENT' : 'USER_CREATED', base + i * 1000, { i }));
  // Each event is delivered three times: once through the topic, twice more as raw redeliveries.
  for (const e of events) await bus.publisher.publishEvent(e);
  for (const e of events) {
    await bus.sendRaw('archive', JSON.stringify(e));
    await bus.sendRaw('archive', JSON.stringify({ Type: 'Notification', MessageId: 'm', Message: JSON.stringify(e), MessageAttributes: {} }));
  }
  await waitFor('every delivery handled', async () => {
    const d = await bus.depth('archive');
    return d.visible === 0 && d.inFlight === 0;
  }, 20_000);
  const store = await openArchive(url);
  t.teardown(() => store.close());
  t.equal(await store.count({}), 12, '36 deliveries, 12 rows');

  const http = `http://127.0.0.1:${bus.sup.httpPort}`;
  const get = (path: string, token?: string) => fetch(`${http}${path}`, token ? { headers: { authorization: `Bearer ${token}` } } : {});
  t.equal((await get('/events')).status, 401, 'no token');
  t.equal((await get('/events', 'wrong')).status, 401, 'wrong token');
  t.equal((await fetch(`${http}/events`, { headers: { authorization: 's3cret-token' } })).status, 401, 'not a bearer header');

  const ids: string[] = [];
  let cursor: string | null = null;
  let pages = 0;
  do {
    const r = await get(`/events?type=USER_COMMENT&limit=4${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`, 's3cret-token');
    t.equal(r.status, 200);
    const body = (await r.json()) as { events: Array<{ id: string; type: string }>; nextCursor: string | null };
    ids.push(...body.events.map((e) => e.id));
    cursor = body.nextCursor;
    pages++;
  } while (cursor && pages < 5);
  t.same(ids, events.filter((e) => e.type === 'USER_COMMENT').map((e) => e.id), 'the USER_COMMENT feed, oldest first, over two pages');
  t.equal(pages, 2);

  const window = (await (await get(`/events?since=${encodeURIComponent('2024-05-01T12:00:03Z')}&until=${base + 6000}`, 's3cret-token')).json()) as { events: Array<{ id: string }>; nextCursor: null };
  t.same(window.events.map((e) => e.id), ['ev-03', 'ev-04', 'ev-05'], 'since (RFC 3339) inclusive, until (ms) exclusive');
  t.equal(window.nextCursor, null);
  for (const bad of ['limit=0', 'limit=1001', 'limit=abc', 'since=yesterday', 'cursor=zzz']) {
    const r = await get(`/events?${bad}`, 's3cret-token');
    t.equal(r.status, 400, `${bad}: 400`);
  }
});
