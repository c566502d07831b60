// The fleet archive: one PostgreSQL table shared by every host (each host archives its share of the
// archive queue, so together they hold every event).
import pg from 'pg';
import { EventBusError } from '../errors.js';
import type { CloudEvent } from '../types.js';
import { redactDsn, redactError } from '../redact.js';
import { PURGE_INTERVAL_MS } from '../publisher/deliveries.js';
import { checkLimit, decodeCursor, encodeCursor, eventTimeMs, type ArchivePage, type ArchiveQuery, type ArchiveStore, type OpenOptions } from './store.js';

export const TABLE = 'eventbus_events';
/** Webhook delivery records (accepted once; see publisher/deliveries.ts). */
export const DELIVERIES = 'eventbus_webhook_deliveries';
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

  const where = (q: Omit<ArchiveQuery, 'limit'>, withCursor: boolean) => {
    const clauses: string[] = [];
    const params: unknown[] = [];
    const p = (v: unknown) => {
      params.push(v);
      return `$${params.length}`;
    };
    if (q.types?.length) clauses.push(`type = ANY(${p(q.types)}::text[])`);
    if (q.sinceMs !== undefined) clauses.push(`time_ms >= ${p(q.sinceMs)}`);
    if (q.untilMs !== undefined) clauses.push(`time_ms < ${p(q.untilMs)}`);
    if (withCursor && q.cursor) {
      const c = decodeCursor(q.cursor);
      clauses.push(`(time_ms, id) > (${p(c.timeMs)}::bigint, ${p(c.id)}::text)`);
    }
    return { sql: clauses.length ? `WHERE ${clauses.join(' AND ')}` : '', params };
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
    async query(q: ArchiveQuery): Promise<ArchivePage> {
      const limit = checkLimit(q.limit);
      const w = where(q, true);
      // event::text: the document as stored, parsed here (pg would parse json itself, the same).
      const r = await query<{ id: string; time_ms: string; event: string }>(
        `SELECT id, time_ms, event::text AS event FROM ${TABLE} ${w.sql} ORDER BY time_ms, id LIMIT ${limit + 1}`,
        w.params,
      );
      const page = r.rows.slice(0, limit);
      const last = page[page.length - 1];
      return {
        events: page.map((row) => JSON.parse(row.event) as CloudEvent),
        nextCursor: r.rows.length > limit && last ? encodeCursor({ timeMs: Number(last.time_ms), id: last.id }) : null,
      };
    },
    async count(q): Promise<number> {
      const w = where(q, false);
      const r = await query<{ n: string }>(`SELECT COUNT(*) AS n FROM ${TABLE} ${w.sql}`, w.params);
      return Number(r.rows[0]?.n ?? 0);
    },
    async claimDelivery(source, id, nowMs, leaseMs) {
      if (nowMs - purgedMs >= PURGE_INTERVAL_MS) {
        purgedMs = nowMs;
        await query(`DELETE FROM ${DELIVERIES} WHERE expires_ms <= $1`, [nowMs]);
      }
      // Takes a free or expired record in one statement; a live one is left and read back.
      const r = await query<{ done: boolean }>(
        `WITH taken AS (
           INSERT INTO ${DELIVERIES} (source, delivery_id, done, expires_ms) VALUES ($1, $2, false, $3)
           ON CONFLICT (source, delivery_id) DO UPDATE SET done = false, expires_ms = excluded.expires_ms WHERE ${DELIVERIES}.expires_ms <= $4
           RETURNING true AS taken
         )
         SELECT (SELECT taken FROM taken) AS taken, (SELECT done FROM ${DELIVERIES} WHERE source = $1 AND delivery_id = $2) AS done`,
        [source, id, nowMs + leaseMs, nowMs],
      );
      const row = r.rows[0] as { taken: boolean | null; done: boolean | null } | undefined;
      if (row?.taken || row?.done === null || row?.done === undefined) return 'new';
      return row.done ? 'done' : 'pending';
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
