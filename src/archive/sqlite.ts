// The embedded archive: one SQLite file in WAL mode (several threads and processes of one host may
// write it), through better-sqlite3; node:sqlite when better-sqlite3's native binary cannot load.
import { closeSync, existsSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import { createRequire } from 'node:module';
import { EventBusError } from '../errors.js';
import type { CloudEvent } from '../types.js';
import { PURGE_INTERVAL_MS } from '../publisher/deliveries.js';
import { eventTimeMs, pageReaders, type ArchiveQuery, type ArchiveStore, type CursorPosition, type OpenOptions, type StoredRow } from './store.js';

/** What both drivers have in common, and all this store uses. */
interface Statement {
  run(...params: unknown[]): { changes: number | bigint };
  get(...params: unknown[]): unknown;
  all(...params: unknown[]): unknown[];
}
interface Driver {
  exec(sql: string): unknown;
  prepare(sql: string): Statement;
  close(): unknown;
}

/** Waits this long for another connection's write lock before failing. */
const BUSY_TIMEOUT_MS = 10_000;

const SCHEMA = `
CREATE TABLE IF NOT EXISTS events (
  id TEXT PRIMARY KEY,
  type TEXT,
  time_ms INTEGER NOT NULL,
  source TEXT,
  archived_ms INTEGER NOT NULL,
  event TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_type_time ON events (type, time_ms, id);
CREATE INDEX IF NOT EXISTS events_time ON events (time_ms, id);
CREATE TABLE IF NOT EXISTS webhook_deliveries (
  source TEXT NOT NULL,
  delivery_id TEXT NOT NULL,
  done INTEGER NOT NULL,
  expires_ms INTEGER NOT NULL,
  PRIMARY KEY (source, delivery_id)
);
CREATE TABLE IF NOT EXISTS locks (
  name TEXT PRIMARY KEY,
  holder TEXT NOT NULL,
  info TEXT NOT NULL,
  expires_ms INTEGER NOT NULL
);
`;

const require = createRequire(import.meta.url);

function openDriver(file: string, warn?: (msg: string) => void): { db: Driver; driver: string } {
  let loadError: unknown;
  try {
    const Database = require('better-sqlite3') as new (f: string, o?: { timeout?: number }) => Driver;
    return { db: new Database(file, { timeout: BUSY_TIMEOUT_MS }), driver: 'better-sqlite3' };
  } catch (err) {
    // Only a binary that does not load (built for another Node ABI) falls back; a bad file does not.
    const code = (err as { code?: string }).code;
    if (code !== 'ERR_DLOPEN_FAILED' && code !== 'MODULE_NOT_FOUND' && !/NODE_MODULE_VERSION|bindings file/i.test(String((err as Error).message))) throw err;
    loadError = err;
  }
  let sqlite: { DatabaseSync: new (f: string) => Driver };
  try {
    sqlite = require('node:sqlite') as typeof sqlite;
  } catch {
    throw new EventBusError(
      'ERR_ARCHIVE',
      `the embedded archive needs better-sqlite3, whose native binary did not load (${(loadError as Error).message.split('\n')[0]}); run \`npm rebuild better-sqlite3\` with this Node version`,
      { cause: loadError },
    );
  }
  warn?.(`better-sqlite3 did not load (${(loadError as Error).message.split('\n')[0]}); using node:sqlite. Run \`npm rebuild better-sqlite3\` with this Node version.`);
  const db = new sqlite.DatabaseSync(file);
  db.exec(`PRAGMA busy_timeout = ${BUSY_TIMEOUT_MS}`);
  return { db, driver: 'node:sqlite' };
}

/** Opens (and by default creates) the archive file; WAL mode, schema and indexes in place. */
export async function openSqliteArchive(file: string, o: OpenOptions = {}): Promise<ArchiveStore> {
  if (o.create === false && !existsSync(file)) {
    throw new EventBusError('ERR_ARCHIVE', `no archive at ${file} (is archive.enabled on, and archive.url the same as the supervisor's?)`);
  }
  // Owner only: archived events carry user data and webhook bodies. SQLite gives its -wal and -shm
  // files the main file's mode. An existing file keeps the mode its owner chose.
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  if (!existsSync(file)) closeSync(openSync(file, 'a', 0o600));
  const { db } = openDriver(file, o.warn);
  try {
    // Several threads may open a new file at once: switching to WAL needs a moment alone.
    await retryBusy(() => db.exec('PRAGMA journal_mode = WAL'));
    db.exec('PRAGMA synchronous = NORMAL');
    await retryBusy(() => db.exec(SCHEMA));
  } catch (err) {
    db.close();
    throw new EventBusError('ERR_ARCHIVE', `archive ${file} cannot be opened: ${(err as Error).message}`, { cause: err });
  }
  const insert = db.prepare('INSERT INTO events (id, type, time_ms, source, archived_ms, event) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING');
  // One statement takes a free or expired lock atomically (SQLite serialises writers).
  const lock = db.prepare(
    'INSERT INTO locks (name, holder, info, expires_ms) VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, info = excluded.info, expires_ms = excluded.expires_ms WHERE locks.expires_ms <= ?',
  );
  const lockRow = db.prepare('SELECT info, expires_ms FROM locks WHERE name = ?');
  const renew = db.prepare('UPDATE locks SET expires_ms = ? WHERE name = ? AND holder = ?');
  const unlock = db.prepare('DELETE FROM locks WHERE name = ? AND holder = ?');
  // A claim takes a free or expired record; `changes` says whether it did (a live one stays as it is).
  const claim = db.prepare(
    `INSERT INTO webhook_deliveries (source, delivery_id, done, expires_ms) VALUES (?, ?, 0, ?)
     ON CONFLICT (source, delivery_id) DO UPDATE SET done = 0, expires_ms = excluded.expires_ms WHERE webhook_deliveries.expires_ms <= ?`,
  );
  const claimed = db.prepare('SELECT done FROM webhook_deliveries WHERE source = ? AND delivery_id = ?');
  const complete = db.prepare('UPDATE webhook_deliveries SET done = 1, expires_ms = ? WHERE source = ? AND delivery_id = ?');
  const release = db.prepare('DELETE FROM webhook_deliveries WHERE source = ? AND delivery_id = ? AND done = 0');
  const purge = db.prepare('DELETE FROM webhook_deliveries WHERE expires_ms <= ?');
  let purgedMs = 0;
  let closed = false;

  const where = (q: Omit<ArchiveQuery, 'limit' | 'cursor'>, after: CursorPosition | null) => {
    const clauses: string[] = [];
    const params: unknown[] = [];
    if (q.types?.length) {
      clauses.push(`type IN (${q.types.map(() => '?').join(', ')})`);
      params.push(...q.types);
    }
    if (q.sinceMs !== undefined) {
      clauses.push('time_ms >= ?');
      params.push(q.sinceMs);
    }
    if (q.untilMs !== undefined) {
      clauses.push('time_ms < ?');
      params.push(q.untilMs);
    }
    if (q.archivedByMs !== undefined) {
      clauses.push('archived_ms <= ?');
      params.push(q.archivedByMs);
    }
    if (after) {
      clauses.push('(time_ms > ? OR (time_ms = ? AND id > ?))');
      params.push(after.timeMs, after.timeMs, after.id);
    }
    return { sql: clauses.length ? `WHERE ${clauses.join(' AND ')}` : '', params };
  };

  // Synchronous reads on the caller's event loop (the supervisor's, for GET /events): in slices.
  const rows =
    (q: ArchiveQuery) =>
    async (after: CursorPosition | null, n: number): Promise<StoredRow[]> => {
      const w = where(q, after);
      const found = db.prepare(`SELECT id, time_ms, event FROM events ${w.sql} ORDER BY time_ms, id LIMIT ?`).all(...w.params, n) as Array<{
        id: string;
        time_ms: number | bigint;
        event: string;
      }>;
      return found.map((r) => ({ id: r.id, timeMs: Number(r.time_ms), event: r.event }));
    };

  return {
    kind: 'sqlite',
    location: file,
    async put(event: CloudEvent): Promise<boolean> {
      const now = Date.now();
      const r = insert.run(event.id, event.type ?? null, eventTimeMs(event, now), event.source ?? null, now, JSON.stringify(event));
      return Number(r.changes) === 1;
    },
    ...pageReaders(rows),
    async getJson(id: string): Promise<string | null> {
      return (db.prepare('SELECT event FROM events WHERE id = ?').get(id) as { event: string } | undefined)?.event ?? null;
    },
    async count(q): Promise<number> {
      const w = where(q, null);
      const row = db.prepare(`SELECT COUNT(*) AS n FROM events ${w.sql}`).get(...w.params) as { n: number | bigint };
      return Number(row.n);
    },
    async tryLock(name, holder, info, ttlMs) {
      const nowMs = Date.now();
      if (Number(lock.run(name, holder, info, nowMs + ttlMs, nowMs).changes) === 1) return { acquired: true, nowMs };
      const row = lockRow.get(name) as { info: string; expires_ms: number | bigint } | undefined;
      return { acquired: false, nowMs, info: row?.info ?? '', expiresInMs: Math.max(0, Number(row?.expires_ms ?? nowMs) - nowMs) };
    },
    async renewLock(name, holder, ttlMs) {
      return Number(renew.run(Date.now() + ttlMs, name, holder).changes) === 1;
    },
    async unlock(name, holder) {
      unlock.run(name, holder);
    },
    async claimDelivery(source, id, nowMs, leaseMs) {
      if (nowMs - purgedMs >= PURGE_INTERVAL_MS) {
        purgedMs = nowMs;
        purge.run(nowMs);
      }
      if (Number(claim.run(source, id, nowMs + leaseMs, nowMs).changes) === 1) return 'new';
      const row = claimed.get(source, id) as { done: number | bigint } | undefined;
      return row === undefined ? 'new' : Number(row.done) === 1 ? 'done' : 'pending';
    },
    async completeDelivery(source, id, nowMs, ttlMs) {
      complete.run(nowMs + ttlMs, source, id);
    },
    async releaseDelivery(source, id) {
      release.run(source, id);
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      db.close();
    },
  };
}

async function retryBusy(fn: () => unknown): Promise<void> {
  const deadline = Date.now() + BUSY_TIMEOUT_MS;
  for (;;) {
    try {
      fn();
      return;
    } catch (err) {
      const busy = /SQLITE_BUSY|database is locked/i.test(`${(err as { code?: string }).code} ${(err as Error).message}`);
      if (!busy || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 20 + Math.random() * 50));
    }
  }
}
