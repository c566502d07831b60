import { spawn } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { ROOT } from './process.js';

/** A temp project that uses eventbus as a user's project does: through the package's `exports`, not `src/` or `dist/` paths. */
export interface UserProject {
  dir: string;
  /** Writes a file (folders made as needed); returns its path. */
  write(relPath: string, content: string): string;
  /** Runs `node ...args` in the project; kills it (SIGKILL) past `timeoutMs`. */
  run(args: string[], options?: { timeoutMs?: number; env?: Record<string, string> }): Promise<RunResult>;
  /** Kills what `run` started and is still running, then deletes the folder. */
  remove(): void;
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Killed for running past its timeout. */
  timedOut: boolean;
  out: string;
  /** Date.now() at exit. */
  exitedAtMs: number;
}

/**
 * Makes the project: `package.json` (`"type": "module"`) and `node_modules/@eventbus-sqs/eventbus`. By default that
 * is a symlink to this repo, so `eventbus` and `eventbus/testing` resolve through the package's
 * `exports` to its built `dist/`, and eventbus's own dependencies (fauxqs among them, a dev
 * dependency here) from the repo's real path. With `fauxqs: false` it is a copy of the package
 * (`package.json`, `dist/`) whose `node_modules` links every dependency of the repo but fauxqs: a
 * project where eventbus is installed and fauxqs is not. `@types/node` is linked for type-checking
 * user code.
 */
export function userProject(options: { fauxqs?: boolean } = {}): UserProject {
  const dir = mkdtempSync(join(tmpdir(), 'eventbus-user-'));
  const modules = join(dir, 'node_modules');
  mkdirSync(join(modules, '@types'), { recursive: true });
  mkdirSync(join(modules, '@eventbus-sqs'), { recursive: true });
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'user-app', private: true, type: 'module' }, null, 2));
  if (options.fauxqs === false) {
    const pkg = join(modules, '@eventbus-sqs', 'eventbus');
    mkdirSync(join(pkg, 'node_modules'), { recursive: true });
    cpSync(join(ROOT, 'package.json'), join(pkg, 'package.json'));
    cpSync(join(ROOT, 'dist'), join(pkg, 'dist'), { recursive: true });
    for (const name of readdirSync(join(ROOT, 'node_modules'))) {
      if (name === 'fauxqs' || name.startsWith('.')) continue;
      symlinkSync(join(ROOT, 'node_modules', name), join(pkg, 'node_modules', name));
    }
  } else {
    symlinkSync(ROOT, join(modules, '@eventbus-sqs', 'eventbus'));
  }
  symlinkSync(join(ROOT, 'node_modules', '@types', 'node'), join(modules, '@types', 'node'));
  const running = new Set<number>();
  const killGroup = (pid: number) => {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch {
      // already gone
    }
  };
  return {
    dir,
    write(relPath, content) {
      const file = join(dir, relPath);
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, content);
      return file;
    },
    run(args, { timeoutMs = 60_000, env = {} } = {}) {
      return new Promise((resolve) => {
        const child = spawn(process.execPath, args, {
          cwd: dir,
          // No AWS variables: the kit must not need or read them.
          env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true', ...env },
          stdio: ['ignore', 'pipe', 'pipe'],
          // Its own process group: a timeout kills `node --test`'s file processes with it.
          detached: true,
        });
        running.add(child.pid!);
        let out = '';
        child.stdout.on('data', (d: Buffer) => (out += d.toString()));
        child.stderr.on('data', (d: Buffer) => (out += d.toString()));
        let timedOut = false;
        const timer = setTimeout(() => {
          timedOut = true;
          killGroup(child.pid!);
        }, timeoutMs);
        let exitedAtMs = 0;
        child.on('exit', () => (exitedAtMs = Date.now()));
        // 'close' comes after 'exit' once the pipes are read to the end.
        child.on('close', (code, signal) => {
          clearTimeout(timer);
          running.delete(child.pid!);
          resolve({ code, signal, timedOut, out, exitedAtMs });
        });
      });
    },
    remove() {
      for (const pid of running) killGroup(pid);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
