// The built-in archive handler (runs in the worker threads): stores every event once by id.
// Its store's url comes from the supervisor in workerData.eventbus.archiveUrl.
import { workerData } from 'node:worker_threads';
import type { HandlerDefinition } from '../types.js';
import type { WorkerData } from '../worker/protocol.js';
import { ARCHIVE_DECLARATION } from './declaration.js';
import { openArchive, type ArchiveStore } from './store.js';
import { pointerUri } from '../event/pointer.js';

/**
 * Largest offloaded event the archive keeps whole. Above it, the archive keeps the event without
 * its data and with the CloudEvents `dataref` extension (the claim check's URI, `s3://bucket/key`,
 * whose object holds the whole event JSON): a 64 MiB row would burden every /events page (2 MiB)
 * and every replay read. Such a payload lives only as long as the bucket's lifecycle rule keeps it.
 */
export const ARCHIVE_INLINE_MAX_BYTES = 1024 * 1024;

let store: Promise<ArchiveStore> | undefined;

function open(log?: { warn(msg: string): void }): Promise<ArchiveStore> {
  const url = (workerData as WorkerData | undefined)?.eventbus?.archiveUrl;
  if (!url) return Promise.reject(new Error('archive handler: no archive url in this thread (archive.enabled is off?)'));
  // A failed open is tried again with the next message.
  store ??= openArchive(url, { poolSize: 2, ...(log ? { warn: (m: string) => log.warn(m) } : {}) }).catch((err: unknown) => {
    store = undefined;
    throw err;
  });
  return store;
}

const archive: HandlerDefinition = {
  ...ARCHIVE_DECLARATION,
  async setup(ctx) {
    await open(ctx.log);
  },
  async handle(event, ctx) {
    // ON CONFLICT DO NOTHING: a redelivered message, or a redelivered webhook with the same event id,
    // is kept once. Success either way, so the message is deleted.
    const off = ctx.offloaded;
    await (await open()).put(off && off.bytes > ARCHIVE_INLINE_MAX_BYTES ? { ...event, data: null, dataref: pointerUri(off) } : event);
    return true;
  },
  async teardown() {
    const s = store;
    store = undefined;
    if (s) await (await s).close();
  },
};

export default archive;
