import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { BEHAVE } from './bus.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** A temp folder with one handler module per spec, each re-exporting the fixture handler with its declaration. */
export function writeHandlers(specs: Array<{ queue: string; events?: string[]; [k: string]: unknown }>): string {
  const dir = mkdtempSync(join(tmpdir(), 'eventbus-handlers-'));
  for (const s of specs) {
    const { queue, ...decl } = s;
    writeFileSync(
      join(dir, `${queue}.mjs`),
      `import behave from ${JSON.stringify(pathToFileURL(BEHAVE).href)};\nexport default { ...behave, ...${JSON.stringify(decl)} };\n`,
    );
  }
  return dir;
}

export interface Spawned {
  child: ChildProcess;
  output(): string;
  waitForOutput(re: RegExp, timeoutMs?: number): Promise<string>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; atMs: number }>;
  kill(): void;
}

/** Spawns `node <script> ...args` from the project root with a clean, explicit environment. */
export function spawnNode(script: string, args: string[], env: Record<string, string> = {}): Spawned {
  const child = spawn(process.execPath, [join(ROOT, script), ...args], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      AWS_ACCESS_KEY_ID: 'test',
      AWS_SECRET_ACCESS_KEY: 'test',
      AWS_REGION: 'us-east-1',
      EVENTBUS_LOG_FORMAT: 'json',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const listeners = new Set<() => void>();
  const onData = (d: Buffer) => {
    out += d.toString();
    for (const l of listeners) l();
  };
  child.stdout!.on('data', onData);
  child.stderr!.on('data', onData);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; atMs: number }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal, atMs: Date.now() })),
  );
  let done = false;
  void exited.then(() => {
    done = true;
    for (const l of listeners) l();
  });
  return {
    child,
    output: () => out,
    exited,
    kill: () => {
      if (!done) child.kill('SIGKILL');
    },
    waitForOutput(re, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const m = re.exec(out);
          if (m) {
            cleanup();
            resolve(m[0]);
          } else if (done) {
            cleanup();
            reject(new Error(`process exited before printing ${re}; output:\n${out}`));
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          reject(new Error(`timed out waiting for ${re}; output:\n${out}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        check();
      });
    },
  };
}

/** Reads the JSON lines the fixture handler appended to EVENTBUS_TEST_LOG. */
export function readLog(file: string): Array<{ kind: string; id?: string; messageId?: string; queue?: string; receiveCount?: number; pid?: number }> {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { kind: string });
}

export function writeConfig(obj: Record<string, unknown>): string {
  const dir = mkdtempSync(join(tmpdir(), 'eventbus-config-'));
  const file = join(dir, 'config.json');
  writeFileSync(file, JSON.stringify(obj, null, 2));
  return file;
}

/**
 * `node dist/supervisor --config <config>` as a child: stopped with SIGTERM at the test's end (SIGKILL
 * 15 s later, and at process exit should the file end without its teardowns). Resolves once its
 * HTTP port listens, with that port's base URL (`http://127.0.0.1:<port>`).
 */
export async function startSupervisorProcess(t: { teardown(fn: () => unknown): void }, config: string, env: Record<string, string> = {}, timeoutMs = 60_000): Promise<{ sup: Spawned; base: string }> {
  const sup = spawnNode('dist/supervisor/index.js', ['--config', config], env);
  process.once('exit', () => sup.kill());
  t.teardown(async () => {
    sup.child.kill('SIGTERM');
    const timer = setTimeout(() => sup.kill(), 15_000);
    await sup.exited;
    clearTimeout(timer);
  });
  const listening = await sup.waitForOutput(/"port":\d+,"msg":"http listening"/, timeoutMs);
  return { sup, base: `http://127.0.0.1:${/"port":(\d+)/.exec(listening)![1]}` };
}
