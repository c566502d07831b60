// `eventbus events`: the activity-feed query over the archive, on the command line.
import type { Command } from 'commander';
import { openArchive, parseTime, resolveArchiveUrl, type ArchiveQuery, type ArchiveStore } from '../archive/index.js';
import type { CloudEvent } from '../types.js';
import { UsageError, commandContext, type CommonOptions } from './common.js';

/** Options shared by `events` and `replay` for choosing events. */
export interface FilterOptions {
  type?: string;
  since?: string;
  until?: string;
  archiveUrl?: string;
}

/** Turns --type/--since/--until into a query; bad values are usage errors (exit 2). */
export function filterOf(o: FilterOptions): Omit<ArchiveQuery, 'limit' | 'cursor'> {
  const types = (o.type ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  try {
    return {
      ...(types.length ? { types } : {}),
      ...(o.since !== undefined ? { sinceMs: parseTime(o.since, '--since') } : {}),
      ...(o.until !== undefined ? { untilMs: parseTime(o.until, '--until') } : {}),
    };
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** Opens the archive the config names (never creates an embedded one). */
export async function openConfiguredArchive(o: CommonOptions & FilterOptions): Promise<ArchiveStore> {
  const ctx = commandContext(o);
  const url = o.archiveUrl ?? ctx.config.archive.url;
  return openArchive(resolveArchiveUrl(url), { create: false, warn: (m) => process.stderr.write(`eventbus: ${m}\n`) });
}

/** One line of the table: time, type, id, source, data (shortened). */
export function formatEvent(e: CloudEvent, width = 100): string {
  let data = JSON.stringify(e.data) ?? 'null';
  if (data.length > width) data = `${data.slice(0, width - 1)}…`;
  const extra = `${typeof e.replayof === 'string' ? `  replayof=${e.replayof}` : ''}${typeof e.dataref === 'string' ? `  dataref=${e.dataref}` : ''}`;
  return `${e.time}  ${e.type ?? '-'}  ${e.id}  ${e.source}  ${data}${extra}`;
}

export function registerEvents(program: Command, common: (cmd: Command) => Command): void {
  common(
    program
      .command('events')
      .description('list archived events, oldest first (the activity feed of GET /events)')
      .option('--type <types>', 'only these event types (comma-separated)')
      .option('--since <time>', 'event time >= this (RFC 3339, ms since epoch, or a duration back from now: 30m, 24h, 7d)')
      .option('--until <time>', 'event time < this (same forms)')
      .option('--limit <n>', 'events per page (1-1000)', '100')
      .option('--cursor <cursor>', 'continue after a previous page (its "next page" cursor)')
      .option('--all', 'follow the cursor to the end instead of printing one page')
      .option('--json', 'print {"events": [...], "nextCursor": ...} as GET /events does (one page), or JSON lines with --all')
      .option('--archive-url <url>', 'archive store (default: config archive.url, else ./data/archive.sqlite)')
      .addHelpText(
        'after',
        '\nReads the archive directly. An embedded archive (SQLite file) holds only what this host archived;\nwith several hosts use a postgres:// archive.url.',
      ),
  ).action(async (o: CommonOptions & FilterOptions & { limit?: string; cursor?: string; all?: boolean; json?: boolean }) => {
    const filter = filterOf(o);
    const limit = Number(o.limit ?? '100');
    if (!/^\d+$/.test(o.limit ?? '100') || limit < 1 || limit > 1000) throw new UsageError(`--limit must be an integer from 1 to 1000, got "${o.limit}"`);
    const store = await openConfiguredArchive(o);
    try {
      let cursor: string | null = o.cursor ?? null;
      let shown = 0;
      for (;;) {
        let page;
        try {
          page = await store.query({ ...filter, limit, cursor });
        } catch (err) {
          if ((err as { code?: string }).code === 'ERR_USAGE') throw new UsageError((err as Error).message);
          throw err;
        }
        shown += page.events.length;
        if (o.json && !o.all) {
          process.stdout.write(`${JSON.stringify(page)}\n`);
          return;
        }
        for (const e of page.events) process.stdout.write(o.json ? `${JSON.stringify(e)}\n` : `${formatEvent(e)}\n`);
        cursor = page.nextCursor;
        if (!o.all || cursor === null) break;
      }
      if (!o.json) {
        if (shown === 0) process.stdout.write('no events\n');
        if (cursor !== null && !o.all) process.stdout.write(`next page: --cursor ${cursor}\n`);
      }
    } finally {
      await store.close();
    }
  });
}
