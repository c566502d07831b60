// The PostgreSQL archive against a real server started on 127.0.0.1 for this file. Skipped only
// outside CI when PostgreSQL is not installed; in CI (CI=true) a missing server fails.
import t from 'tap';
import { ARCHIVE_HANDLER_FILE, openArchive } from '../../dist/archive/index.js';
import { startBus, waitFor } from '../helpers/bus.js';
import { deliveryContract, ev, storeContract } from '../helpers/archive-contract.js';
import { postgresUnavailable, startPostgres, type TestPostgres } from '../helpers/postgres.js';

const why = postgresUnavailable();
if (why && !process.env.CI) {
  t.plan(0, `skipped: ${why}`);
} else {
  if (why) throw new Error(`CI must run the PostgreSQL tests: ${why}`);
  const server: TestPostgres = await startPostgres();
  t.teardown(() => server.stop());

  t.test('PostgreSQL store contract', async (t) => {
    storeContract(t, async () => openArchive(await server.newDatabase(), { poolSize: 4 }));
  });

  t.test('PostgreSQL webhook delivery records', async (t) => {
    deliveryContract(t, () => server.newDatabase());
  });

  t.test('several stores opening one database at once agree on the schema', async (t) => {
    const url = await server.newDatabase();
    const stores = await Promise.all(Array.from({ length: 4 }, () => openArchive(url, { poolSize: 2 })));
    t.teardown(() => Promise.all(stores.map((s) => s.close())));
    const results = await Promise.all(stores.map((s) => s.put(ev('shared', 'T', 1_700_000_000_000))));
    t.equal(results.filter(Boolean).length, 1, 'one insert wins');
    t.equal(stores[0]!.location.includes('127.0.0.1'), true);
  });

  t.test('the archive handler writes to PostgreSQL from the worker threads; /events reads it', async (t) => {
    const url = await server.newDatabase();
    const bus = await startBus([{ queue: 'archive', file: ARCHIVE_HANDLER_FILE }], { config: { archive: { enabled: true, url } } });
    t.teardown(() => bus.stop());
    const events = Array.from({ length: 15 }, (_, i) => ev(`pg-${String(i).padStart(2, '0')}`, 'USER_COMMENT', 1_714_521_600_000 + i * 1000, { i }));
    for (const e of events) await bus.publisher.publishEvent(e);
    for (const e of events.slice(0, 5)) await bus.sendRaw('archive', JSON.stringify(e)); // redeliveries
    const store = await openArchive(url);
    t.teardown(() => store.close());
    await waitFor('15 archived', async () => (await store.count({})) === 15, 20_000);
    await waitFor('the archive queue drained', async () => {
      const d = await bus.depth('archive');
      return d.visible === 0 && d.inFlight === 0;
    });
    t.equal(await store.count({}), 15, 'redeliveries kept once');
    const r = await fetch(`http://127.0.0.1:${bus.sup.httpPort}/events?type=USER_COMMENT&limit=10`);
    const body = (await r.json()) as { events: Array<{ id: string }>; nextCursor: string | null };
    t.same(body.events.map((e) => e.id), events.slice(0, 10).map((e) => e.id));
    const rest = (await (await fetch(`http://127.0.0.1:${bus.sup.httpPort}/events?type=USER_COMMENT&limit=10&cursor=${body.nextCursor}`)).json()) as { events: Array<{ id: string }>; nextCursor: string | null };
    t.same(rest.events.map((e) => e.id), events.slice(10).map((e) => e.id));
    t.equal(rest.nextCursor, null);
  });
}
