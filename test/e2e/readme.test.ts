// Every command in README.md works as written (issue 20). The fenced shell blocks are extracted and
// run, one bash per block, against an `eventbus dev` this test starts on a free port; a block that
// must not run here (production AWS, long-running, destructive) is marked just before its fence
// with `<!-- not run: <reason> -->` (an HTML comment: GitHub renders nothing). Any other block runs,
// and must exit 0.
// How README's commands reach this test's emulator instead of `npm start`'s:
// - `eventbus` (what `npx eventbus` runs in a service) is a shim on PATH running this repo's
//   bin/eventbus.js; it adds `--dev-port <port>` after `--dev` (README's `--dev` means the running
//   `npm start`, whose port is 4566; this test's is a free one).
// - `npm run eventbus -- ARGS` is what package.json's script does, `node bin/eventbus.js ARGS`:
//   through the same shim. Any other npm or npx use fails the block (mark it, or make it work).
// - Commands without `--dev` talk to "AWS": AWS_ENDPOINT_URL points them at the same emulator.
// The blocks run in a temp folder (the archive's ./data is there) with the example handlers.
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../helpers/ports.js';
import { ROOT } from '../helpers/process.js';

const SHELLS = new Set(['sh', 'bash', 'shell', 'console', 'zsh']);
const MARK = /^\s*<!--\s*not run:\s*(.*?)\s*-->\s*$/;

export interface Block {
  line: number;
  lang: string;
  code: string;
  /** The reason of its `<!-- not run: ... -->` marker; null = it runs. */
  notRun: string | null;
}

/** The fenced code blocks of a Markdown text, with the marker on the line before each (blank lines between allowed). */
export function fencedBlocks(text: string): { blocks: Block[]; strayMarks: number[] } {
  const lines = text.split('\n');
  const blocks: Block[] = [];
  const marks = new Map<number, string>(); // line index of a marker -> reason
  lines.forEach((l, i) => {
    const m = MARK.exec(l);
    if (m) marks.set(i, m[1]!);
  });
  const used = new Set<number>();
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*([\w-]*)/.exec(lines[i]!);
    if (!open) continue;
    const [, indent, fence, lang] = open as unknown as [string, string, string, string];
    const body: string[] = [];
    let j = i + 1;
    while (j < lines.length && !new RegExp(`^\\s*${fence[0] === '`' ? '`' : '~'}{${fence.length},}\\s*$`).test(lines[j]!)) {
      body.push(lines[j]!.startsWith(indent) ? lines[j]!.slice(indent.length) : lines[j]!);
      j++;
    }
    let k = i - 1;
    while (k >= 0 && lines[k]!.trim() === '') k--;
    const notRun = k >= 0 && marks.has(k) ? marks.get(k)! : null;
    if (notRun !== null) used.add(k);
    blocks.push({ line: i + 1, lang: lang.toLowerCase(), code: body.join('\n'), notRun });
    i = j;
  }
  const strayMarks = [...marks.keys()].filter((k) => !used.has(k)).map((k) => k + 1);
  return { blocks, strayMarks };
}

const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
const { blocks, strayMarks } = fencedBlocks(README);
const shellBlocks = blocks.filter((b) => SHELLS.has(b.lang));

t.test('every shell block in README runs here or says why not', async (t) => {
  t.ok(shellBlocks.length >= 8, `${shellBlocks.length} shell blocks`);
  t.same(strayMarks, [], 'every <!-- not run --> marker stands right before a fenced block');
  for (const b of shellBlocks) {
    if (b.notRun !== null) t.ok(b.notRun.length >= 10, `README.md:${b.line}: not run, and says why ("${b.notRun}")`);
  }
  const run = shellBlocks.filter((b) => b.notRun === null);
  t.ok(run.length >= 4, `${run.length} blocks run, ${shellBlocks.length - run.length} marked`);
  // A block written without a language is not checked at all: README gives every command block one.
  for (const b of blocks.filter((x) => x.lang === '')) {
    t.notMatch(b.code, /^\s*(npm|npx|node|eventbus|curl|docker|kubectl|aws)\s/m, `README.md:${b.line}: a block of commands names its language (sh)`);
  }
});

t.test('the marker parser', async (t) => {
  const md = ['text', '<!-- not run: long-running server -->', '', '```sh', 'npm start', '```', '<!-- not run: dangling -->', 'prose', '```bash', 'ls', '```'].join('\n');
  const { blocks: b, strayMarks: s } = fencedBlocks(md);
  t.same(
    b.map((x) => [x.lang, x.code, x.notRun]),
    [
      ['sh', 'npm start', 'long-running server'],
      ['bash', 'ls', null],
    ],
  );
  t.same(s, [7], 'a marker not followed by a block is reported');
});

/** The bash lines every block starts with: npm and npx as README uses them, nothing else. */
const PRELUDE = `
npm() {
  if [ "$1" = run ] && [ "$2" = eventbus ]; then shift 2; [ "\${1:-}" = -- ] && shift; eventbus "$@"; return; fi
  echo "README test: 'npm $*' is not run here: mark its block <!-- not run: reason -->" >&2; return 97
}
npx() {
  if [ "$1" = eventbus ]; then shift; eventbus "$@"; return; fi
  echo "README test: 'npx $*' is not run here: mark its block <!-- not run: reason -->" >&2; return 97
}
`;

function shim(dir: string, devPort: number): void {
  const file = join(dir, 'eventbus');
  writeFileSync(
    file,
    `#!/usr/bin/env bash
args=()
for a in "$@"; do args+=("$a"); if [ "$a" = --dev ]; then args+=(--dev-port ${devPort}); fi; done
exec ${JSON.stringify(process.execPath)} ${JSON.stringify(join(ROOT, 'bin', 'eventbus.js'))} "\${args[@]}"
`,
  );
  chmodSync(file, 0o755);
}

function run(code: string, cwd: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', ['-e', '-o', 'pipefail', '-c', `${PRELUDE}\n${code}\n`], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (c) => {
      clearTimeout(timer);
      resolve({ code: c, out });
    });
  });
}

function waitFor(child: ChildProcess, output: () => string, re: RegExp, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${re}; output:\n${output().slice(-3000)}`));
    }, timeoutMs);
    const check = () => {
      if (re.test(output())) {
        cleanup();
        resolve();
      }
    };
    const onExit = () => {
      cleanup();
      reject(new Error(`exited while waiting for ${re}; output:\n${output().slice(-3000)}`));
    };
    const cleanup = () => {
      clearTimeout(timer);
      child.stdout!.off('data', check);
      child.stderr!.off('data', check);
      child.off('exit', onExit);
    };
    child.stdout!.on('data', check);
    child.stderr!.on('data', check);
    child.on('exit', onExit);
    check();
  });
}

t.test("README's shell blocks run as written against eventbus dev", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'eventbus-readme-'));
  const bin = join(dir, '.bin');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const { mkdirSync } = await import('node:fs');
  mkdirSync(bin);
  const port = await freePort();
  shim(bin, port);

  // Files README's commands name, written from README's own blocks.
  const manifest = blocks.find((b) => b.lang === 'json' && b.code.includes('"service": "users-api"'));
  t.ok(manifest, "README shows users-api.json, the publishers manifest `check --publishes` reads");
  writeFileSync(join(dir, 'users-api.json'), manifest?.code ?? '');

  const env: NodeJS.ProcessEnv = {
    PATH: `${bin}:${process.env.PATH ?? ''}`,
    HOME: dir,
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    AWS_REGION: 'us-east-1',
    AWS_ENDPOINT_URL: `http://127.0.0.1:${port}`,
    EVENTBUS_HANDLERS_DIR: join(ROOT, 'dist', 'handlers'),
    EVENTBUS_LOG_FORMAT: 'json',
  };
  // EVENTBUS_HTTP_PORT=0 as well as --http-port 0: the flag is dropped on the way to the config
  // (loadConfig's overrides take no dotted keys), so dev would bind 9464.
  const dev = spawn(process.execPath, [join(ROOT, 'bin', 'eventbus.js'), 'dev', '--port', String(port), '--http-port', '0'], {
    cwd: dir,
    env: { ...env, EVENTBUS_HTTP_PORT: '0' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let devOut = '';
  dev.stdout.on('data', (d: Buffer) => (devOut += d.toString()));
  dev.stderr.on('data', (d: Buffer) => (devOut += d.toString()));
  const devExit = new Promise<number | null>((resolve) => dev.on('exit', (c) => resolve(c)));
  t.teardown(() => {
    if (dev.exitCode === null && dev.signalCode === null) dev.kill('SIGKILL');
  });
  await waitFor(dev, () => devOut, /Publish an event from another terminal/, 60_000);
  const httpPort = Number(/metrics http:\/\/127\.0\.0\.1:(\d+)\/metrics/.exec(devOut)?.[1]);
  t.ok(httpPort > 0 && httpPort !== 9464, `dev serves HTTP on a free port (${httpPort}), not 9464`);

  for (const b of shellBlocks.filter((x) => x.notRun === null)) {
    const r = await run(b.code, dir, env, 90_000);
    t.equal(r.code, 0, `README.md:${b.line} exits 0:\n${b.code}\n--- output:\n${r.out.slice(-4000)}`);
  }
  // The first screen's publish reached the example handlers.
  await waitFor(dev, () => devOut, /"queue":"email".*"msg":"email sent"/, 30_000);
  t.pass("README's publish reached the email handler");

  dev.kill('SIGINT');
  t.equal(await devExit, 0, 'eventbus dev drains and exits 0');
});
