// README's production block (issue 20), run as written in a service that depends on the package:
// `npx eventbus provision ...` and `node node_modules/@eventbus-sqs/eventbus/dist/supervisor` with
// the service's own handler, against fauxqs on a free port (AWS_ENDPOINT_URL) instead of AWS.
import t from 'tap';
import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ROOT } from '../helpers/process.js';
import { emulator } from '../helpers/emulator.js';
import { run, shellBlocks, waitFor } from './readme-blocks.js';

t.test("README's production block works as written in a service that installed the packed package", async (t) => {
  // What `npm install @eventbus-sqs/eventbus` gives a service: the tarball `npm pack` makes (its
  // `files`), unpacked into node_modules, with the bin linked as npm links it. The dependencies are
  // linked from this repo (no registry here); fauxqs is left out, as a production install has none.
  const dir = mkdtempSync(join(tmpdir(), 'eventbus-service-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const packed = await run(`cd ${JSON.stringify(ROOT)} && command npm pack --ignore-scripts --silent --json --pack-destination ${JSON.stringify(dir)}`, dir, { ...process.env }, 120_000);
  t.equal(packed.code, 0, packed.out);
  const info = JSON.parse(packed.out.slice(packed.out.indexOf('['))) as Array<{ filename: string; files: Array<{ path: string }> }>;
  const files = info[0]!.files.map((f) => f.path);
  for (const f of ['package.json', 'bin/eventbus.js', 'dist/supervisor/index.js', 'dist/index.js', 'dist/testing/index.js', 'dist/cli/index.js', 'dist/metrics/registry.js']) {
    t.ok(files.includes(f), `the package has ${f}`);
  }
  t.same(files.filter((f) => /^(src|test|bench|handlers|dist\/handlers|dist-test)\//.test(f)), [], 'and no sources, tests or example handlers');

  const modules = join(dir, 'node_modules');
  const pkg = join(modules, '@eventbus-sqs', 'eventbus');
  mkdirSync(join(modules, '.bin'), { recursive: true });
  mkdirSync(pkg, { recursive: true });
  const untar = await run(`tar -xzf ${JSON.stringify(join(dir, info[0]!.filename))} -C ${JSON.stringify(pkg)} --strip-components=1`, dir, { ...process.env }, 60_000);
  t.equal(untar.code, 0, untar.out);
  mkdirSync(join(pkg, 'node_modules'));
  for (const name of readdirSync(join(ROOT, 'node_modules'))) {
    if (name === 'fauxqs' || name.startsWith('.')) continue;
    symlinkSync(join(ROOT, 'node_modules', name), join(pkg, 'node_modules', name));
  }
  symlinkSync('../@eventbus-sqs/eventbus/bin/eventbus.js', join(modules, '.bin', 'eventbus'));
  chmodSync(join(pkg, 'bin', 'eventbus.js'), 0o755);

  // The service: its own handler, compiled to dist/handlers, importing the package by name.
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'orders-service', private: true, type: 'module', dependencies: { '@eventbus-sqs/eventbus': '0.1.0' } }));
  mkdirSync(join(dir, 'dist', 'handlers'), { recursive: true });
  writeFileSync(
    join(dir, 'dist', 'handlers', 'orders.js'),
    `import { defineHandler } from '@eventbus-sqs/eventbus';
export default defineHandler({
  events: ['ORDER_PLACED'],
  async handle(event, ctx) { ctx.log.info({ orderId: event.data.id }, 'order handled'); return true; },
});
`,
  );
  const emu = await emulator();
  t.teardown(() => emu.stop());
  writeFileSync(join(dir, 'prod.json'), JSON.stringify({ topic: 'events', queuePrefix: 'svc-', provision: false, http: { host: '127.0.0.1', port: 0 } }));
  const env: NodeJS.ProcessEnv = {
    PATH: process.env.PATH ?? '',
    HOME: dir,
    npm_config_offline: 'true',
    npm_config_update_notifier: 'false',
    AWS_ACCESS_KEY_ID: 'test',
    AWS_SECRET_ACCESS_KEY: 'test',
    AWS_REGION: 'us-east-1',
    AWS_ENDPOINT_URL: emu.endpoint,
    EVENTBUS_LOG_FORMAT: 'json',
  };

  // README "Running in production": the block with the supervisor, run line by line with the real npx.
  const block = shellBlocks.find((b) => /^node node_modules\/@eventbus-sqs\/eventbus\/dist\/supervisor\b/m.test(b.code));
  t.ok(block, 'README has the production block');
  const lines = block!.code.split('\n').filter((l) => l.trim() && !l.trim().startsWith('#'));
  const supervisorLine = lines.find((l) => l.startsWith('node '))!;
  for (const line of lines.filter((l) => l !== supervisorLine)) {
    const r = await run(`unset -f npm npx; ${line}`, dir, env, 90_000);
    t.equal(r.code, 0, `${line}\n--- output:\n${r.out.slice(-3000)}`);
    if (line.includes('--dry-run')) t.match(r.out, /\+ create queue svc-orders\b/, 'the plan creates the service\'s queue');
  }
  const sup = spawn('bash', ['-c', `exec ${supervisorLine.replace(/\s+#.*$/, '')}`], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  sup.stdout.on('data', (d: Buffer) => (out += d.toString()));
  sup.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<number | null>((resolve) => sup.on('exit', (c) => resolve(c)));
  t.teardown(() => {
    if (sup.exitCode === null && sup.signalCode === null) sup.kill('SIGKILL');
  });
  await waitFor(sup, () => out, /"msg":"supervisor running"/, 60_000);
  const pub = await run(`unset -f npm npx; npx eventbus publish ORDER_PLACED '{"id":"o-1"}' --config prod.json`, dir, env, 60_000);
  t.equal(pub.code, 0, pub.out);
  await waitFor(sup, () => out, /"queue":"orders".*"orderId":"o-1".*"msg":"order handled"/, 30_000);
  t.pass("the service's own handler ran under the packaged supervisor");
  sup.kill('SIGTERM');
  t.equal(await exited, 0, 'SIGTERM drains and exits 0');
});
