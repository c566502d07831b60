// Runs `node bin/eventbus.js` as a child process with stdout and stderr kept apart (the CLI's
// contract: data on stdout, progress and messages on stderr), optional stdin, and a way to act on
// what it prints while it runs (send it a signal when progress appears).
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import type { Test } from 'tap';
import { ROOT } from './process.js';

export interface CliRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface CliOptions {
  /** Added to the child's environment; a variable set to '' is removed from it. */
  env?: Record<string, string>;
  /** Written to stdin, then stdin is closed (default: stdin is /dev/null). */
  stdin?: string;
  /** Called with the child once it is spawned. */
  onStart?(child: ChildProcess): void;
  /** Called with the child as soon as stderr matches `when`. */
  onStderr?: { when: RegExp; then(child: ChildProcess): void };
  timeoutMs?: number;
}

/** Runs the CLI to its end (killed after `timeoutMs`, default 60 s, and at the test's end). */
export function runCli(t: Test, args: string[], o: CliOptions = {}): Promise<CliRun> {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '/tmp',
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    AWS_REGION: 'us-east-1',
    ...o.env,
  };
  for (const [k, v] of Object.entries(env)) if (v === '') delete env[k];
  const child = spawn(process.execPath, [join(ROOT, 'bin/eventbus.js'), ...args], {
    cwd: ROOT,
    env,
    stdio: [o.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  let fired = false;
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr!.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (o.onStderr && !fired && o.onStderr.when.test(stderr)) {
      fired = true;
      o.onStderr.then(child);
    }
  });
  if (o.stdin !== undefined) child.stdin!.end(o.stdin);
  o.onStart?.(child);
  const timer = setTimeout(() => child.kill('SIGKILL'), o.timeoutMs ?? 60_000);
  t.teardown(() => {
    clearTimeout(timer);
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return new Promise((resolve) =>
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    }),
  );
}

/** stdout as JSON lines (each parsed); fails the test with the output when a line is not JSON. */
export function jsonLines(t: Test, r: CliRun): Array<Record<string, any>> {
  const lines = r.stdout.split('\n').filter((l) => l !== '');
  return lines.map((l) => {
    try {
      return JSON.parse(l) as Record<string, any>;
    } catch {
      t.fail(`stdout line is not JSON: ${l}\nstderr: ${r.stderr}`);
      return {};
    }
  });
}
