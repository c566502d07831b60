// The fleet archive: one PostgreSQL table shared by every host (each host archives its share of the
// archive queue, so together they hold every event).
import pg from 'pg';
import { EventBusError } from '../errors.js';
import type { CloudEvent } from '../types.js';
import { redactDsn, redactError } from '../redact.js';
import { PURGE_INTERVAL_MS } from '../publisher/deliveries.js';
import { eventTimeMs, pageReaders, type ArchiveQuery, type ArchiveStore, type CursorPosition, type OpenOptions, type StoredRow } from './store.js';

export const TABLE = 'eventbus_events';
/** Webhook delivery records (accepted once; see publisher/deliveries.ts). */
export const DELIVERIES = 'eventbus_webhook_deliveries';
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
  `CREATE TABLE IF NOT EXISTS ${DELIVERIES} (
     source text NOT NULL,
     delivery_id text NOT NULL,
     done boolean NOT NULL,
     expires_ms bigint NOT NULL,
     PRIMARY KEY (source, delivery_id)
   )`,
  `CREATE TABLE IF NOT EXISTS ${LOCKS} (
     name text PRIMARY KEY,
     holder text NOT NULL,
     info text NOT NULL,
     expires_at timestamptz NOT NULL
   )`,
];

export async function openPostgresArchive(url: string, o: OpenOptions = {}): Promise<ArchiveStore> {
  const location = redactDsn(url);
  const pool = new pg.Pool({ connectionString: url, max: o.poolSize ?? 4, idleTimeoutMillis: 30_000, connectionTimeoutMillis: 10_000 });
  // pg's errors may quote the connection string or a piece of it: every one leaves this module redacted.
  const redacted = (err: unknown) => redactError(err, url);
  const query = async <R extends pg.QueryResultRow>(sql: string, params: unknown[]) => {
    try {
      return await pool.query<R>(sql, params);
    } catch (err) {
      throw redacted(err);
    }
  };
  // An idle client's connection error must not crash the process; the next query reconnects.
  pool.on('error', (err) => o.warn?.(`archive ${location}: idle connection error: ${redacted(err).message}`));
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
    const cause = redacted(err);
    throw new EventBusError('ERR_ARCHIVE', `archive ${location} cannot be opened: ${cause.message}`, { cause });
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
      const r = await query<{ id: string; time_ms: string; event: string }>(
        `SELECT id, time_ms, event::text AS event FROM ${TABLE} ${w.sql} ORDER BY time_ms, id LIMIT ${Math.floor(n)}`,
        w.params,
      );
      return r.rows.map((row) => ({ id: row.id, timeMs: Number(row.time_ms), event: row.event }));
    };

  let closed: Promise<void> | undefined;
  let purgedMs = 0;

  return {
    kind: 'postgres',
    location,
    async put(event: CloudEvent): Promise<boolean> {
      const r = await query(`INSERT INTO ${TABLE} (id, type, time_ms, source, event) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING`, [
        event.id,
        event.type ?? null,
        eventTimeMs(event),
        event.source ?? null,
        JSON.stringify(event),
      ]);
      return r.rowCount === 1;
    },
    ...pageReaders(rows),
    async getJson(id: string): Promise<string | null> {
      const r = await query<{ event: string }>(`SELECT event::text AS event FROM ${TABLE} WHERE id = $1`, [id]);
      return r.rows[0]?.event ?? null;
    },
    async count(q): Promise<number> {
      const w = where(q, null);
      const r = await query<{ n: string }>(`SELECT COUNT(*) AS n FROM ${TABLE} ${w.sql}`, w.params);
      return Number(r.rows[0]?.n ?? 0);
    },
    async tryLock(name, holder, info, ttlMs) {
      // Taken when free or expired, in one statement (the CTE returns a row only then).
      const r = await query<{ acquired: boolean; info: string; expires_in_ms: string; now_ms: string }>(
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
      const r = await query(`UPDATE ${LOCKS} SET expires_at = clock_timestamp() + $3 * interval '1 millisecond' WHERE name = $1 AND holder = $2`, [name, holder, ttlMs]);
      return r.rowCount === 1;
    },
    async unlock(name, holder) {
      await query(`DELETE FROM ${LOCKS} WHERE name = $1 AND holder = $2`, [name, holder]);
    },
    async claimDelivery(source, id, nowMs, leaseMs) {
      if (nowMs - purgedMs >= PURGE_INTERVAL_MS) {
        purgedMs = nowMs;
        await query(`DELETE FROM ${DELIVERIES} WHERE expires_ms <= $1`, [nowMs]);
      }
      // Takes a free or expired record in one statement; a live one is left and read back in a
      // second statement. Not in the same one: its snapshot predates a concurrent claim that
      // committed while this insert waited on it, so the row it conflicted with would read as
      // absent (two claims of one delivery both won, under load).
      for (let attempt = 0; attempt < 3; attempt++) {
        const taken = await query(
          `INSERT INTO ${DELIVERIES} (source, delivery_id, done, expires_ms) VALUES ($1, $2, false, $3)
           ON CONFLICT (source, delivery_id) DO UPDATE SET done = false, expires_ms = excluded.expires_ms WHERE ${DELIVERIES}.expires_ms <= $4
           RETURNING true AS taken`,
          [source, id, nowMs + leaseMs, nowMs],
        );
        if (taken.rows.length > 0) return 'new';
        const live = await query<{ done: boolean }>(`SELECT done FROM ${DELIVERIES} WHERE source = $1 AND delivery_id = $2 AND expires_ms > $3`, [source, id, nowMs]);
        const row = live.rows[0];
        if (row) return row.done ? 'done' : 'pending';
        // It expired or was released in between: claim again.
      }
      return 'pending';
    },
    async completeDelivery(source, id, nowMs, ttlMs) {
      await query(`UPDATE ${DELIVERIES} SET done = true, expires_ms = $1 WHERE source = $2 AND delivery_id = $3`, [nowMs + ttlMs, source, id]);
    },
    async releaseDelivery(source, id) {
      await query(`DELETE FROM ${DELIVERIES} WHERE source = $1 AND delivery_id = $2 AND done = false`, [source, id]);
    },
    close(): Promise<void> {
      closed ??= pool.end();
      return closed;
    },
  };
}
