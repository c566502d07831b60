// The fleet archive: one PostgreSQL table shared by every host (each host archives its share of the
// archive queue, so together they hold every event).
import pg from 'pg';
import { EventBusError } from '../errors.js';
import type { CloudEvent } from '../types.js';
import { eventTimeMs, pageReaders, redactUrl, type ArchiveQuery, type ArchiveStore, type CursorPosition, type OpenOptions, type StoredRow } from './store.js';

export const TABLE = 'eventbus_events';
/** Run locks of replays and redrives (src/archive/lock.ts); times on the database's clock, so hosts agree. */
export const LOCKS = 'eventbus_locks';
/** The database's clock in ms since the epoch. */
const NOW_MS = `(extract(epoch from clock_timestamp()) * 1000)::bigint`;
/** Serialises schema creation across hosts and threads (CREATE ... IF NOT EXISTS races otherwise). */
const SCHEMA_LOCK = 7_316_402;

const SCHEMA = [
  // json, not jsonb: kept as sent (jsonb rejects \u0000 and reorders keys).
  `CREATE TABLE IF NOT EXISTS ${TABLE} (
     id text PRIMARY KEY,
     type text,
     time_ms bigint NOT NULL,
     source text,
     archived_at timestamptz NOT NULL DEFAULT now(),
     event json NOT NULL
   )`,
  `CREATE INDEX IF NOT EXISTS ${TABLE}_type_time ON ${TABLE} (type, time_ms, id)`,
  `CREATE INDEX IF NOT EXISTS ${TABLE}_time ON ${TABLE} (time_ms, id)`,
  `CREATE TABLE IF NOT EXISTS ${LOCKS} (
     name text PRIMARY KEY,
     holder text NOT NULL,
     info text NOT NULL,
     expires_at timestamptz NOT NULL
   )`,
];

export async function openPostgresArchive(url: string, o: OpenOptions = {}): Promise<ArchiveStore> {
  const location = redactUrl(url);
  const pool = new pg.Pool({ connectionString: url, max: o.poolSize ?? 4, idleTimeoutMillis: 30_000, connectionTimeoutMillis: 10_000 });
  // An idle client's connection error must not crash the process; the next query reconnects.
  pool.on('error', (err) => o.warn?.(`archive ${location}: idle connection error: ${err.message}`));
  try {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock($1)', [SCHEMA_LOCK]);
      for (const sql of SCHEMA) await client.query(sql);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.release();
    }
  } catch (err) {
    await pool.end().catch(() => undefined);
    throw new EventBusError('ERR_ARCHIVE', `archive ${location} cannot be opened: ${(err as Error).message}`, { cause: err });
  }

  const where = (q: Omit<ArchiveQuery, 'limit' | 'cursor'>, after: CursorPosition | null) => {
    const clauses: string[] = [];
    const params: unknown[] = [];
    const p = (v: unknown) => {
      params.push(v);
      return `$${params.length}`;
    };
    if (q.types?.length) clauses.push(`type = ANY(${p(q.types)}::text[])`);
    if (q.sinceMs !== undefined) clauses.push(`time_ms >= ${p(q.sinceMs)}`);
    if (q.untilMs !== undefined) clauses.push(`time_ms < ${p(q.untilMs)}`);
    if (q.archivedByMs !== undefined) clauses.push(`archived_at <= to_timestamp(${p(q.archivedByMs)}::double precision / 1000)`);
    if (after) clauses.push(`(time_ms, id) > (${p(after.timeMs)}::bigint, ${p(after.id)}::text)`);
    return { sql: clauses.length ? `WHERE ${clauses.join(' AND ')}` : '', params };
  };
  const rows =
    (q: ArchiveQuery) =>
    async (after: CursorPosition | null, n: number): Promise<StoredRow[]> => {
      const w = where(q, after);
      // event::text: the document as stored, parsed by collectPage (pg would parse json itself, the same).
      const r = await pool.query<{ id: string; time_ms: string; event: string }>(
        `SELECT id, time_ms, event::text AS event FROM ${TABLE} ${w.sql} ORDER BY time_ms, id LIMIT ${Math.floor(n)}`,
        w.params,
      );
      return r.rows.map((row) => ({ id: row.id, timeMs: Number(row.time_ms), event: row.event }));
    };

  let closed: Promise<void> | undefined;

  return {
    kind: 'postgres',
    location,
    async put(event: CloudEvent): Promise<boolean> {
      const r = await pool.query(`INSERT INTO ${TABLE} (id, type, time_ms, source, event) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING`, [
        event.id,
        event.type ?? null,
        eventTimeMs(event),
        event.source ?? null,
        JSON.stringify(event),
      ]);
      return r.rowCount === 1;
    },
    ...pageReaders(rows),
    async count(q): Promise<number> {
      const w = where(q, null);
      const r = await pool.query<{ n: string }>(`SELECT COUNT(*) AS n FROM ${TABLE} ${w.sql}`, w.params);
      return Number(r.rows[0]?.n ?? 0);
    },
    async tryLock(name, holder, info, ttlMs) {
      // Taken when free or expired, in one statement (the CTE returns a row only then).
      const r = await pool.query<{ acquired: boolean; info: string; expires_in_ms: string; now_ms: string }>(
        `WITH taken AS (
           INSERT INTO ${LOCKS} (name, holder, info, expires_at) VALUES ($1, $2, $3, clock_timestamp() + $4 * interval '1 millisecond')
           ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, info = EXCLUDED.info, expires_at = EXCLUDED.expires_at
             WHERE ${LOCKS}.expires_at <= clock_timestamp()
           RETURNING name)
         SELECT EXISTS (SELECT 1 FROM taken) AS acquired, ${NOW_MS} AS now_ms,
           (SELECT info FROM ${LOCKS} WHERE name = $1) AS info,
           (SELECT (extract(epoch from expires_at - clock_timestamp()) * 1000)::bigint FROM ${LOCKS} WHERE name = $1) AS expires_in_ms`,
        [name, holder, info, ttlMs],
      );
      const row = r.rows[0]!;
      const nowMs = Number(row.now_ms);
      return row.acquired ? { acquired: true, nowMs } : { acquired: false, nowMs, info: row.info ?? '', expiresInMs: Math.max(0, Number(row.expires_in_ms ?? 0)) };
    },
    async renewLock(name, holder, ttlMs) {
      const r = await pool.query(`UPDATE ${LOCKS} SET expires_at = clock_timestamp() + $3 * interval '1 millisecond' WHERE name = $1 AND holder = $2`, [name, holder, ttlMs]);
      return r.rowCount === 1;
    },
    async unlock(name, holder) {
      await pool.query(`DELETE FROM ${LOCKS} WHERE name = $1 AND holder = $2`, [name, holder]);
    },
    close(): Promise<void> {
      closed ??= pool.end();
      return closed;
    },
  };
}
