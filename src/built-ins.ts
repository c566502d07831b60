// The composition root's list of handlers that ship with eventbus: the loader (src/handlers.ts)
// takes them as arguments and knows none by name.
import { ARCHIVE_DECLARATION, ARCHIVE_HANDLER_FILE } from './archive/declaration.js';
import type { BuiltInHandler } from './handlers.js';

/** The built-in handlers the config turns on: the archive (queue `archive`, every event) with `archive.enabled`. */
export function builtInHandlers(cfg: { archive?: { enabled: boolean } }): BuiltInHandler[] {
  const out: BuiltInHandler[] = [];
  if (cfg.archive?.enabled) {
    // The main thread resolves and provisions it from its declaration; only the threads load its module.
    out.push({ file: ARCHIVE_HANDLER_FILE, definition: { ...ARCHIVE_DECLARATION, handle: () => true }, enabledBy: 'archive.enabled' });
  }
  return out;
}
