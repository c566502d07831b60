// Helpers for config tests: a config error's shape, and secret files in a temp folder.
import type { Test } from 'tap';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Asserts that `fn` throws ERR_CONFIG_INVALID, on one line, matching `re`, and without `secret` in it. */
export function failsConfig(t: Test, fn: () => unknown, re: RegExp | string, secret?: string): void {
  try {
    fn();
    t.fail(`expected a config error matching ${re}`);
  } catch (err) {
    t.equal((err as { code?: string }).code, 'ERR_CONFIG_INVALID');
    t.match((err as Error).message, re);
    t.notOk((err as Error).message.includes('\n'), 'one line');
    if (secret) t.notOk((err as Error).message.includes(secret), 'the secret is not in the error');
  }
}

/** A temp folder (removed at teardown) and a writer of owner-only files in it. */
export function secretFiles(t: Test): { dir: string; file(name: string, text: string): string } {
  const dir = mkdtempSync(join(tmpdir(), 'eventbus-secrets-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return {
    dir,
    file(name, text) {
      const p = join(dir, name);
      writeFileSync(p, text, { mode: 0o600 });
      return p;
    },
  };
}
