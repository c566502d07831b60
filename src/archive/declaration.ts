// The built-in archive handler's declaration, without its store code: the main thread resolves and
// provisions it like any handler; only the worker threads load src/archive/handler.ts.
import { fileURLToPath } from 'node:url';

/** Logical queue name of the built-in archive handler. */
export const ARCHIVE_QUEUE = 'archive';

/** The handler module the worker threads load. */
export const ARCHIVE_HANDLER_FILE = fileURLToPath(new URL('./handler.js', import.meta.url));

/** Subscribed to every event (no `events`: no filter policy). */
export const ARCHIVE_DECLARATION = {
  queue: ARCHIVE_QUEUE,
  /** Writes are short; a few at a time per host keeps SQLite's single writer from queueing. */
  concurrency: 4,
  visibilityTimeout: 30,
  timeoutMs: 20_000,
  maxReceiveCount: 10,
} as const;
