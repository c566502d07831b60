// `eventbus dev` (npm start): an embedded emulator, provisioned topology and the example handlers firing.
import t from 'tap';
import { freePort } from '../helpers/ports.js';
import { ROOT, spawnNode } from '../helpers/process.js';
import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

t.test('dev runs the example handlers; the CLI publishes to it with --dev', async (t) => {
  const port = await freePort();
  const dev = spawnNode('bin/eventbus.js', ['dev', '--port', String(port), '--http-port', '0'], { EVENTBUS_LOG_FORMAT: 'json' });
  t.teardown(() => dev.kill());
  await dev.waitForOutput(/Publish an event from another terminal/, 30_000);
  t.match(dev.output(), new RegExp(`npm run eventbus -- publish --dev --dev-port ${port} USER_CREATED`), 'the banner says how to publish, as this repository runs the CLI');
  const http = /metrics (http:\/\/127\.0\.0\.1:\d+)\/metrics/.exec(dev.output())![1]!;

  const ready = await fetch(`${http}/readyz`);
  t.equal(ready.status, 200, '/readyz is 200 once polling');
  t.match(await ready.json(), { ready: true, queues: { email: { state: 'polling' }, billing: { state: 'polling' } } });

  const pub = spawnNode('bin/eventbus.js', ['publish', '--dev', '--dev-port', String(port), 'USER_CREATED', '{"email":"ada@example.com"}']);
  const pubExit = await pub.exited;
  t.equal(pubExit.code, 0, pub.output());
  const id = /published USER_CREATED ([0-9a-f-]{36})/.exec(pub.output())?.[1];
  t.ok(id, 'publish prints the event id');

  await dev.waitForOutput(/"queue":"email".*"msg":"email sent"/, 15_000);
  await dev.waitForOutput(/"queue":"billing".*"msg":"billing customer created"/, 15_000);
  t.pass('both USER_CREATED handlers fired');

  // Large events with no AWS account: a 1 MiB event from a file goes through the emulator's S3.
  const dir = mkdtempSync(join(tmpdir(), 'eventbus-dev-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'big.json');
  writeFileSync(file, JSON.stringify({ email: 'ada@example.com', comment: 'é'.repeat(512 * 1024) }));
  const big = spawnNode('bin/eventbus.js', ['publish', '--dev', '--dev-port', String(port), 'USER_COMMENT', `@${file}`]);
  t.equal((await big.exited).code, 0, big.output());
  await dev.waitForOutput(/"queue":"email".*"subject":"Somebody commented.*"msg":"email sent"/, 15_000);
  t.pass('a 1 MiB USER_COMMENT published from the CLI reached the email handler');

  const plan = spawnNode('bin/eventbus.js', ['provision', '--dry-run', '--dev', '--dev-port', String(port)]);
  t.equal((await plan.exited).code, 0);
  t.match(plan.output(), /= ok bucket eventbus-payloads/, 'the plan shows the payloads bucket');
  t.match(plan.output(), /= ok bucket lifecycle eventbus-payloads \(expire eventbus\/\* after 14 days/, 'and its lifecycle rule');
  t.match(plan.output(), /0 to create, 0 to update, 0 to delete/, 'the topology is already in place');

  const metrics = await (await fetch(`${http}/metrics`)).text();
  t.match(metrics, /eventbus_handler_results_total\{queue="email",event_type="USER_CREATED",result="success"\} 1/);
  t.match(metrics, /eventbus_payload_fetch_seconds_count\{queue="email"\} 1/, 'the email thread fetched the payload');

  dev.child.kill('SIGINT');
  const exit = await dev.exited;
  t.equal(exit.code, 0, 'Ctrl-C exits 0');
});

t.test('CLI usage errors exit 2; an unreachable --dev emulator says what to do', async (t) => {
  const bad = spawnNode('bin/eventbus.js', ['publish', '--dev', 'X', '{not json']);
  t.equal((await bad.exited).code, 2);
  t.match(bad.output(), /JSON data is not valid JSON/);
  const unknown = spawnNode('bin/eventbus.js', ['frobnicate']);
  t.equal((await unknown.exited).code, 2);
  t.match(unknown.output(), /unknown command 'frobnicate'/);
  const port = await freePort();
  const down = spawnNode('bin/eventbus.js', ['publish', '--dev', '--dev-port', String(port), 'X']);
  t.equal((await down.exited).code, 1);
  t.match(down.output(), /is `npm start` running\?/);
});

t.test('dev in another project: the banner uses npx eventbus and that project\'s own event types and queues', async (t) => {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'eventbus-dev-app-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'handlers'));
  writeFileSync(join(dir, 'handlers', 'orders.mjs'), "export default { queue: 'orders', events: ['ORDER_PLACED'], handle() { return true; } };\n");
  const child = spawn(process.execPath, [join(ROOT, 'bin', 'eventbus.js'), 'dev', '--port', String(port), '--http-port', '0'], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', EVENTBUS_LOG_FORMAT: 'json', EVENTBUS_HANDLERS_DIR: join(dir, 'handlers'), EVENTBUS_ARCHIVE_URL: `sqlite:${join(dir, 'archive.sqlite')}` },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => child.kill('SIGKILL'));
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const deadline = Date.now() + 30_000;
  while (!/Ctrl-C stops/.test(out) && child.exitCode === null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  t.match(out, new RegExp(`npx eventbus publish --dev --dev-port ${port} ORDER_PLACED '\\{\\}'`), 'publish with npx and its own type');
  t.match(out, new RegExp(`npx eventbus dlq peek orders --dev --dev-port ${port}`), 'its own queue');
  t.notMatch(out, /npm run eventbus|USER_CREATED|email-dlq/, 'none of this repository\'s commands or examples');
  child.kill('SIGINT');
  const code = await new Promise<number | null>((r) => (child.exitCode !== null ? r(child.exitCode) : child.once('exit', (c) => r(c))));
  t.equal(code, 0, 'Ctrl-C exits 0');
});
