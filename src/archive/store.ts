// The archive's store interface, the feed cursor, and openArchive(url) choosing the backend.
import { resolve } from 'node:path';
import { EventBusError } from '../errors.js';
import type { CloudEvent } from '../types.js';
import type { DeliveryLedger } from '../publisher/deliveries.js';

/** Most events one query returns. */
export const MAX_LIMIT = 1000;
export const DEFAULT_LIMIT = 100;
/** Where the embedded store lives when `archive.url` is unset (relative to the working directory). */
export const DEFAULT_ARCHIVE_FILE = 'data/archive.sqlite';

/** An activity-feed query: oldest first by event time (then id), keyset-paged. */
export interface ArchiveQuery {
  /** Only these event types (none = every type). */
  types?: string[] | undefined;
  /** Event time >= since (ms since the epoch). */
  sinceMs?: number | undefined;
  /** Event time < until (ms since the epoch). */
  untilMs?: number | undefined;
  /** Only events archived at or before this instant (the store's clock, ms): a replay's snapshot. */
  archivedByMs?: number | undefined;
  /** 1..MAX_LIMIT (default DEFAULT_LIMIT); a page also stops at MAX_PAGE_BYTES of events. */
  limit?: number | undefined;
  /** From a previous page's nextCursor. */
  cursor?: string | null | undefined;
}

export interface ArchivePage {
  events: CloudEvent[];
  /** Opaque; null when this page reached the end. */
  nextCursor: string | null;
}

/**
 * A document store of events, idempotent on event id. Safe to open from several threads and
 * processes. It also keeps the webhook delivery records when the archive is on (every host sees them).
 */
export interface ArchiveStore extends DeliveryLedger {
  readonly kind: 'sqlite' | 'postgres';
  /** The store's location for logs (credentials redacted). */
  readonly location: string;
  /** Stores an event once: true when inserted, false when its id was already there. */
  put(event: CloudEvent): Promise<boolean>;
  query(q: ArchiveQuery): Promise<ArchivePage>;
  /** The same page with each event as its stored JSON text (GET /events writes them out unparsed). */
  queryJson(q: ArchiveQuery): Promise<{ events: string[]; nextCursor: string | null }>;
  /** One event's stored JSON text by its id; null when it is not archived (the console's event view). */
  getJson(id: string): Promise<string | null>;
  /** How many events match (ignores limit and cursor). */
  count(q: Omit<ArchiveQuery, 'limit' | 'cursor'>): Promise<number>;
  /**
   * Takes run lock `name` for `ttlMs` unless another holder has it unexpired (src/archive/lock.ts).
   * `nowMs` is the store's clock at that moment, the instant archivedByMs takes.
   */
  tryLock(name: string, holder: string, info: string, ttlMs: number): Promise<LockAttempt>;
  /** Extends a lock this holder has; false when it is no longer this holder's (expired and taken). */
  renewLock(name: string, holder: string, ttlMs: number): Promise<boolean>;
  /** Gives a lock back (nothing when another holder has it by now). */
  unlock(name: string, holder: string): Promise<void>;
  close(): Promise<void>;
}

export type LockAttempt = { acquired: true; nowMs: number } | { acquired: false; nowMs: number; info: string; expiresInMs: number };

/** A position in the feed: the last event's time and id. */
export interface CursorPosition {
  timeMs: number;
  id: string;
}

export function encodeCursor(p: CursorPosition): string {
  return Buffer.from(JSON.stringify([p.timeMs, p.id])).toString('base64url');
}

/** Decodes a cursor; throws ERR_USAGE for one this store did not make. */
export function decodeCursor(cursor: string): CursorPosition {
  try {
    const v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as unknown;
    if (Array.isArray(v) && v.length === 2 && Number.isSafeInteger(v[0]) && typeof v[1] === 'string') return { timeMs: v[0] as number, id: v[1] };
  } catch {
    // falls through
  }
  throw new EventBusError('ERR_USAGE', 'cursor is not valid (use nextCursor of a previous page)');
}

/**
 * Most characters of stored JSON one page carries (about bytes; at least one event, whatever its
 * size). Without it a page of 1,000 events of 256 KiB was 256 MB read, parsed and serialised on the
 * supervisor's event loop in one go (seconds without /healthz); 2 MiB costs a few milliseconds.
 */
export const MAX_PAGE_BYTES = 2 * 1024 * 1024;
/** A page is read in slices of about this many characters; the event loop gets a turn between them. */
const SLICE_BYTES = 256 * 1024;
/** Rows of the first slice, before the rows' size is known (4 of the largest events: 1 MiB). */
const FIRST_SLICE_ROWS = 4;
const MAX_SLICE_ROWS = 250;

/** A stored row, as a store reads it for a page. */
export interface StoredRow {
  id: string;
  timeMs: number;
  /** The event's JSON as stored. */
  event: string;
}

/**
 * One page of `q`: up to its limit of events and MAX_PAGE_BYTES of JSON, whichever comes first,
 * read through `fetch` (rows after a position, in feed order) in slices sized from the rows seen.
 * nextCursor is set whenever an event is left for the next page.
 */
export async function collectPage<T = CloudEvent>(
  q: ArchiveQuery,
  fetch: (after: CursorPosition | null, rows: number) => Promise<StoredRow[]>,
  decode: (json: string) => T = (json) => JSON.parse(json) as T,
  maxBytes = MAX_PAGE_BYTES,
): Promise<{ events: T[]; nextCursor: string | null }> {
  const limit = checkLimit(q.limit);
  let after = q.cursor ? decodeCursor(q.cursor) : null;
  const events: T[] = [];
  let bytes = 0;
  let slice = FIRST_SLICE_ROWS;
  for (;;) {
    // One row more than the page can still take tells whether another page follows.
    const want = Math.min(slice, limit - events.length) + 1;
    const rows = await fetch(after, want);
    let sliceBytes = 0;
    for (const row of rows) {
      if (events.length === limit || (events.length > 0 && bytes + row.event.length > maxBytes)) return { events, nextCursor: encodeCursor(after!) };
      events.push(decode(row.event));
      bytes += row.event.length;
      sliceBytes += row.event.length;
      after = { timeMs: row.timeMs, id: row.id };
    }
    if (rows.length < want) return { events, nextCursor: null };
    slice = Math.max(1, Math.min(MAX_SLICE_ROWS, Math.floor(SLICE_BYTES / Math.max(1, sliceBytes / rows.length))));
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/** A store's `query` and `queryJson` from its row reader: rows of a query after a position, in feed order. */
export function pageReaders(rows: (q: ArchiveQuery) => (after: CursorPosition | null, n: number) => Promise<StoredRow[]>): Pick<ArchiveStore, 'query' | 'queryJson'> {
  return {
    query: (q) => collectPage(q, rows(q)),
    queryJson: (q) => collectPage(q, rows(q), (json) => json),
  };
}

/** The limit of a query, checked against the same bounds the message names. */
export function checkLimit(limit: number | undefined): number {
  const n = limit ?? DEFAULT_LIMIT;
  if (!Number.isInteger(n) || n < 1 || n > MAX_LIMIT) throw new EventBusError('ERR_USAGE', `limit must be an integer from 1 to ${MAX_LIMIT}`);
  return n;
}

/** The event time used for ordering: the event's `time`, or when it was archived if that is not a date. */
export function eventTimeMs(event: CloudEvent, nowMs = Date.now()): number {
  const t = typeof event.time === 'string' ? Date.parse(event.time) : NaN;
  return Number.isFinite(t) ? t : nowMs;
}

/**
 * Parses a time bound: RFC 3339 / ISO 8601, or milliseconds since the epoch, or a relative
 * duration back from now (`30m`, `24h`, `7d`). Throws ERR_USAGE naming `what`.
 */
export function parseTime(value: string, what: string, nowMs = Date.now()): number {
  const v = value.trim();
  if (/^\d{10,}$/.test(v)) return Number(v);
  const rel = /^(\d+)(s|m|h|d)$/.exec(v);
  if (rel) return nowMs - Number(rel[1]) * { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 }[rel[2] as 's' | 'm' | 'h' | 'd'];
  const t = Date.parse(v);
  if (!Number.isFinite(t)) throw new EventBusError('ERR_USAGE', `${what} must be an RFC 3339 time, ms since the epoch, or a duration like 24h (got "${value}")`);
  return t;
}

/** Whether an archive url names PostgreSQL: the URL forms pg accepts (`socket://` is a Unix socket). */
export function isPostgresUrl(url: string | null | undefined): boolean {
  return typeof url === 'string' && /^(postgres(ql)?|socket):\/\//i.test(url);
}

/** The archive url with its default filled in; a relative file path becomes absolute (threads and CLI agree). */
export function resolveArchiveUrl(url: string | null | undefined, cwd = process.cwd()): string {
  if (isPostgresUrl(url)) return url!;
  const path = fileOf(url ?? DEFAULT_ARCHIVE_FILE);
  return resolve(cwd, path);
}

function fileOf(url: string): string {
  if (url.startsWith('file://')) return new URL(url).pathname;
  if (url.startsWith('file:')) return url.slice('file:'.length);
  if (url.startsWith('sqlite:')) return url.slice('sqlite:'.length).replace(/^\/\//, '');
  return url;
}

export interface OpenOptions {
  /** false: fail when an embedded archive file does not exist yet (CLI reads), instead of creating it. */
  create?: boolean;
  /** PostgreSQL pool size (default 4). */
  poolSize?: number;
  /** Called once with a warning worth logging (e.g. the SQLite driver fallback). */
  warn?: (msg: string) => void;
}

/** Opens the store an archive url names: postgres://... = PostgreSQL; anything else = the embedded SQLite file. */
export async function openArchive(url: string | null | undefined, o: OpenOptions = {}): Promise<ArchiveStore> {
  const resolved = resolveArchiveUrl(url);
  if (isPostgresUrl(resolved)) {
    const { openPostgresArchive } = await import('./postgres.js');
    return openPostgresArchive(resolved, o);
  }
  const { openSqliteArchive } = await import('./sqlite.js');
  return openSqliteArchive(resolved, o);
}
