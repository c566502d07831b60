// The built-in archive handler (runs in the worker threads): stores every event once by id.
// Its store's url comes from the supervisor in workerData.eventbus.archiveUrl.
import { workerData } from 'node:worker_threads';
import type { HandlerDefinition } from '../types.js';
import type { WorkerData } from '../worker/protocol.js';
import { ARCHIVE_DECLARATION } from './declaration.js';
import { openArchive, type ArchiveStore } from './store.js';

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
  async handle(event) {
    // ON CONFLICT DO NOTHING: a redelivered message, or a redelivered webhook with the same event id,
    // is kept once. Success either way, so the message is deleted.
    await (await open()).put(event);
    return true;
  },
  async teardown() {
    const s = store;
    store = undefined;
    if (s) await (await s).close();
  },
};

export default archive;
