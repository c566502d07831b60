// Run locks: one replay per topic and one redrive per DLQ at a time, held in the archive store
// (the SQLite file for one host, PostgreSQL for a fleet). A lock lives `ttlMs` past its holder's
// last heartbeat, so a run that crashed or was killed frees it by itself.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { EventBusError } from '../errors.js';
import type { ArchiveStore } from './store.js';

/** How long a lock outlives its holder's last heartbeat. */
export const LOCK_TTL_MS = 60_000;

export interface HeldLock {
  /** The store's clock when the lock was taken: what was archived from then on is not part of the run. */
  readonly takenAtMs: number;
  /** Aborts if the lock was lost (the holder missed heartbeats for the whole TTL and another run took it). */
  readonly signal: AbortSignal;
  release(): Promise<void>;
}

/**
 * Takes lock `name` or throws ERR_LOCKED naming who holds it. `what` describes this run for the
 * message another run would show ("replay to queue email"). Renewed every third of the TTL until
 * released; a renewal that finds the lock taken aborts `signal`.
 */
export async function takeRunLock(store: ArchiveStore, name: string, what: string, ttlMs = LOCK_TTL_MS): Promise<HeldLock> {
  const holder = randomUUID();
  const info = `${what}, by ${hostname()} pid ${process.pid}, since ${new Date().toISOString()}`;
  const got = await store.tryLock(name, holder, info, ttlMs);
  if (!got.acquired) {
    throw new EventBusError(
      'ERR_LOCKED',
      `another run holds the lock "${name}" in the archive ${store.location} (${got.info || 'unknown holder'}): running both would send the same messages twice. ` +
        `Wait for it to finish; a run that died frees the lock ${Math.ceil(got.expiresInMs / 1000)} s from now at the latest`,
    );
  }
  const lost = new AbortController();
  let renewing: Promise<unknown> = Promise.resolve();
  const timer = setInterval(() => {
    renewing = store.renewLock(name, holder, ttlMs).then(
      (still) => {
        if (!still) lost.abort(new EventBusError('ERR_LOCKED', `the lock "${name}" was lost (no heartbeat for ${ttlMs / 1000} s) and may be held by another run: stopped`));
      },
      // A failed heartbeat is retried at the next tick; the lock lasts the whole TTL meanwhile.
      () => undefined,
    );
  }, Math.max(10, Math.floor(ttlMs / 3)));
  timer.unref();
  let released: Promise<void> | undefined;
  return {
    takenAtMs: got.nowMs,
    signal: lost.signal,
    release() {
      released ??= (async () => {
        clearInterval(timer);
        await renewing;
        await store.unlock(name, holder);
      })();
      return released;
    },
  };
}
