// `eventbus config --sources`: every key of the config with its value (as `eventbus config` prints
// it, secrets redacted) and where that value came from.
import type { ConfigOrigin } from '../config.js';

/** One row of `config --sources --json`: the stable shape documented in README ("Configuration"). */
export interface ConfigSourceRow {
  /** The dotted key, as in the config file (`http.port`, `webhooks.sources.gh.secrets`). */
  key: string;
  /** The value as `eventbus config` prints it (a secret as "[redacted]"). */
  value: unknown;
  origin: ConfigOrigin['kind'];
  /** origin file: the config file's path. */
  file?: string;
  /** origin env: the variable (`<VAR>_FILE` when read from a file). */
  env?: string;
  /** origin flag: the flag, when known (`--dev`). */
  flag?: string;
  /** origin default: how the default was computed on this host (`the usable cores`). */
  derived?: string;
}

function valueAt(obj: Record<string, unknown>, key: string): unknown {
  let node: unknown = obj;
  for (const p of key.split('.')) node = (node as Record<string, unknown> | undefined)?.[p];
  return node;
}

/** The rows, in the schema's order; `flag` names the flag behind origin `flag` when the caller knows it. */
export function configSourceRows(printed: Record<string, unknown>, origins: Record<string, ConfigOrigin>, flag?: string): ConfigSourceRow[] {
  return Object.entries(origins).map(([key, origin]) => {
    const row: ConfigSourceRow = { key, value: valueAt(printed, key) ?? null, origin: origin.kind };
    if (origin.kind === 'file') row.file = origin.file;
    if (origin.kind === 'env') row.env = origin.env;
    if (origin.kind === 'flag' && (origin.flag ?? flag)) row.flag = (origin.flag ?? flag)!;
    if (origin.kind === 'default' && origin.derived) row.derived = origin.derived;
    return row;
  });
}

function sourceText(r: ConfigSourceRow): string {
  switch (r.origin) {
    case 'file':
      return `file ${r.file}`;
    case 'env':
      return `env ${r.env}`;
    case 'flag':
      return r.flag ? `flag ${r.flag}` : 'flag';
    default:
      return r.derived ? `default (${r.derived})` : 'default';
  }
}

/** KEY, VALUE (JSON, cut at 60 characters), SOURCE; aligned columns. */
export function formatSourceTable(rows: ConfigSourceRow[]): string {
  const cut = (s: string) => (s.length > 60 ? `${s.slice(0, 57)}...` : s);
  const table = [['KEY', 'VALUE', 'SOURCE'], ...rows.map((r) => [r.key, cut(JSON.stringify(r.value)), sourceText(r)])];
  const widths = [0, 1].map((i) => Math.max(...table.map((row) => row[i]!.length)));
  return table.map((row) => `${row[0]!.padEnd(widths[0]!)}  ${row[1]!.padEnd(widths[1]!)}  ${row[2]}`).join('\n');
}
