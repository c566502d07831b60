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
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../helpers/ports.js';
import { blocks, fencedBlocks, run, shellBlocks, strayMarks, waitFor } from './readme-blocks.js';
import { ROOT } from '../helpers/process.js';

t.test('every shell block in README runs here or says why not', async (t) => {
  t.ok(shellBlocks.length >= 8, `${shellBlocks.length} shell blocks`);
  t.same(strayMarks, [], 'every <!-- not run --> marker stands right before a fenced block');
  for (const b of shellBlocks) {
    if (b.notRun !== null) t.ok(b.notRun.length >= 10, `README.md:${b.line}: not run, and says why ("${b.notRun}")`);
  }
  const runs = shellBlocks.filter((b) => b.notRun === null);
  t.ok(runs.length >= 4, `${runs.length} blocks run, ${shellBlocks.length - runs.length} marked`);
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

t.test("README's shell blocks run as written against eventbus dev", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'eventbus-readme-'));
  const bin = join(dir, '.bin');
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
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

