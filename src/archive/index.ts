// The event archive: a built-in handler that keeps every event, the /events feed, and the stores.
import { redactDsn } from '../redact.js';
import { isPostgresUrl } from './store.js';
export { ARCHIVE_DECLARATION, ARCHIVE_HANDLER_FILE, ARCHIVE_QUEUE } from './declaration.js';
export { registerEventsRoute, bearerMatches, parseEventsQuery } from './routes.js';
export {
  openArchive,
  resolveArchiveUrl,
  isPostgresUrl,
  encodeCursor,
  decodeCursor,
  parseTime,
  eventTimeMs,
  DEFAULT_ARCHIVE_FILE,
  DEFAULT_LIMIT,
  MAX_LIMIT,
  MAX_PAGE_BYTES,
  type ArchivePage,
  type ArchiveQuery,
  type ArchiveStore,
} from './store.js';

/** The start-log line about the archive: an embedded one sees only this host's share of the archive queue. */
export function describeArchive(url: string): { store: string; note?: string } {
  if (isPostgresUrl(url)) return { store: redactDsn(url) };
  return {
    store: redactDsn(url),
    note: 'embedded archive: it holds only the events this host received from the archive queue; with several hosts (or cluster processes on separate disks) use a postgres:// archive.url',
  };
}
