// The dev emulator (issue 14, Low): a web page open in the developer's browser cannot post to it
// (CSRF onto the dev bus), and it is a dev dependency that `eventbus dev` asks for when missing.
import t from 'tap';
import { request } from 'node:http';
import { mkdtempSync, readdirSync, readFileSync, symlinkSync, cpSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { CreateTopicCommand, PublishCommand, SubscribeCommand } from '@aws-sdk/client-sns';
import { emulator, uniqueName } from '../helpers/emulator.js';
import { ROOT } from '../helpers/process.js';
import * as emulatorModule from '../../dist/emulator.js';

/** A raw HTTP POST through a real socket, as a browser's form post would send it. */
function post(port: number, body: string, headers: Record<string, string>): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, method: 'POST', path: '/', headers: { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body), ...headers } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

t.test('a form-encoded SNS Publish from a web page is refused; the SDK still works', async (t) => {
  const emu = await emulator();
  t.teardown(() => emu.stop());
  const topicArn = (await emu.sns.send(new CreateTopicCommand({ Name: uniqueName('topic') }))).TopicArn!;
  const queueUrl = (await emu.sqs.send(new CreateQueueCommand({ QueueName: uniqueName('q') }))).QueueUrl!;
  const queueArn = (await emu.sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['QueueArn'] }))).Attributes!.QueueArn!;
  await emu.sns.send(new SubscribeCommand({ TopicArn: topicArn, Protocol: 'sqs', Endpoint: queueArn, Attributes: { RawMessageDelivery: 'true' } }));

  const form = new URLSearchParams({ Action: 'Publish', TopicArn: topicArn, Message: 'from-a-web-page' }).toString();
  const host = `127.0.0.1:${emu.port}`;
  // Broke: each of these was accepted (200) and the message reached the queue.
  for (const [what, headers] of [
    ['Origin of another site', { host, origin: 'http://evil.example' }],
    ['Origin "null" (a sandboxed page or a file: URL)', { host, origin: 'null' }],
    ['Sec-Fetch-Site without Origin', { host, 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'no-cors' }],
    ['a DNS-rebinding Host', { host: `evil.example:${emu.port}` }],
  ] as const) {
    const r = await post(emu.port, form, headers);
    t.equal(r.status, 403, `${what}: 403`);
    t.match(r.text, /refused/, `${what}: says why`);
  }
  const leaked = await emu.sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, WaitTimeSeconds: 1, MaxNumberOfMessages: 10 }));
  t.same(leaked.Messages ?? [], [], 'nothing the page posted reached the queue');

  // The SDK sends no Origin: it publishes as before, and so does a plain form post from a tool.
  await emu.sns.send(new PublishCommand({ TopicArn: topicArn, Message: 'from-the-sdk' }));
  t.equal((await post(emu.port, new URLSearchParams({ Action: 'Publish', TopicArn: topicArn, Message: 'from-curl' }).toString(), { host })).status, 200, 'curl-like post: 200');
  const bodies: string[] = [];
  for (let i = 0; i < 10 && bodies.length < 2; i++) {
    const out = await emu.sqs.send(new ReceiveMessageCommand({ QueueUrl: queueUrl, WaitTimeSeconds: 1, MaxNumberOfMessages: 10 }));
    bodies.push(...(out.Messages ?? []).map((m) => m.Body!));
  }
  t.same(bodies.sort(), ['from-curl', 'from-the-sdk']);
});

t.test('loadFauxqs: a missing fauxqs is ERR_EMULATOR_MISSING saying how to install it', async (t) => {
  const { loadFauxqs } = emulatorModule;
  t.type(loadFauxqs, 'function', 'the loader is separate from the server, so this can be tested without uninstalling fauxqs');
  const missing = Object.assign(new Error("Cannot find package 'fauxqs' imported from /app/dist/emulator.js"), { code: 'ERR_MODULE_NOT_FOUND' });
  await t.rejects(loadFauxqs(() => Promise.reject(missing)), { code: 'ERR_EMULATOR_MISSING', message: /npm install --no-save fauxqs@1\.9\.2/ });
  const other = Object.assign(new Error('boom'), { code: 'EACCES' });
  await t.rejects(loadFauxqs(() => Promise.reject(other)), other, 'another failure is passed through');
});

t.test('package.json: fauxqs is a dev dependency (npm ci --omit=dev leaves it out)', async (t) => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean }> };
  t.notOk('fauxqs' in pkg.dependencies, 'not a runtime dependency');
  t.ok('fauxqs' in pkg.devDependencies, 'a dev dependency');
  t.equal(lock.packages['node_modules/fauxqs']?.dev, true, 'the lockfile marks it dev, so --omit=dev skips it');
  // Nothing but the emulator loads it, and only dynamically: the supervisor and the CLI start without it.
  for (const f of readdirSync(join(ROOT, 'dist'), { recursive: true }) as string[]) {
    if (!f.endsWith('.js')) continue;
    t.notMatch(readFileSync(join(ROOT, 'dist', f), 'utf8'), /from ['"]fauxqs['"]/, `dist/${f} does not import fauxqs statically`);
  }
});

t.test('eventbus dev without fauxqs: one line saying how to install it, exit 1', async (t) => {
  // A copy of the package whose node_modules has every installed package but fauxqs (symlinks).
  const app = mkdtempSync(join(tmpdir(), 'eventbus-omit-dev-'));
  cpSync(join(ROOT, 'dist'), join(app, 'dist'), { recursive: true });
  cpSync(join(ROOT, 'bin'), join(app, 'bin'), { recursive: true });
  cpSync(join(ROOT, 'package.json'), join(app, 'package.json'));
  mkdirSync(join(app, 'node_modules'));
  for (const name of readdirSync(join(ROOT, 'node_modules'))) {
    if (name !== 'fauxqs' && name !== '.bin') symlinkSync(join(ROOT, 'node_modules', name), join(app, 'node_modules', name));
  }
  const child = spawn(process.execPath, [join(app, 'bin', 'eventbus.js'), 'dev', '--port', '0', '--http-port', '0'], {
    cwd: app,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
  t.equal(code, 1, 'exit 1');
  t.equal(out.trim().split('\n').length, 1, `one line: ${out}`);
  t.match(out, /fauxqs.*not installed.*npm install --no-save fauxqs@1\.9\.2.*\[ERR_EMULATOR_MISSING\]/);
});
