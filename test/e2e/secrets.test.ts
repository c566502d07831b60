// Secrets through the real processes (issue 14, Medium): each secret from a `_FILE`, a missing file
// fails the start naming key and path, and no password reaches `eventbus config` or the logs.
import t from 'tap';
import { join } from 'node:path';
import { signStripePayload } from '../../dist/publisher/webhooks.js';
import { waitFor } from '../helpers/emulator.js';
import { freePort } from '../helpers/ports.js';
import { spawnNode, writeConfig } from '../helpers/process.js';
import { secretFiles } from '../helpers/config-errors.js';

const { dir, file: secretFile } = secretFiles(t);
const PW = 'S3cr3t-pw';

t.test('eventbus config: secrets read from files, printed redacted; no URL form leaks the password', async (t) => {
  const config = writeConfig({ webhooks: { sources: { gh: { header: 'x-hub-signature-256' } } } });
  for (const url of [`postgres://app@db.internal/eventbus?password=${PW}`, `postgres://app:x@${PW}@db.internal/eventbus`, `postgresql://app:${PW}@db.internal/eventbus`]) {
    const p = spawnNode('bin/eventbus.js', ['config', '--config', config], {
      EVENTBUS_ARCHIVE_URL: url,
      EVENTBUS_API_TOKEN_FILE: secretFile('token', 'token-from-file\n'),
      EVENTBUS_WEBHOOK_GH_SECRETS_FILE: secretFile('gh', 'gh-secret-1\ngh-secret-2\n'),
    });
    const { code } = await p.exited;
    t.equal(code, 0, p.output());
    const printed = JSON.parse(p.output()) as { http: { apiToken: string }; archive: { url: string }; webhooks: { sources: { gh: { secrets: string[] } } } };
    t.equal(printed.http.apiToken, '[redacted]', 'the token file was read');
    t.same(printed.webhooks.sources.gh.secrets, ['[redacted]', '[redacted]'], 'both secrets of the file');
    t.match(printed.archive.url, /db\.internal/, 'the host stays readable');
    t.notMatch(p.output(), /S3cr3t|token-from-file|gh-secret/, `nothing secret printed for ${url.replace(PW, '***')}`);
  }
});

t.test('a missing secret file fails the start with one line naming the key and the path', async (t) => {
  const missing = join(dir, 'no-such-secret');
  const p = spawnNode('bin/eventbus.js', ['ingress', '--host', '127.0.0.1', '--port', '0'], { EVENTBUS_STRIPE_WEBHOOK_SECRETS_FILE: missing });
  const { code } = await p.exited;
  t.equal(code, 1);
  t.match(p.output(), `webhooks.stripe.secrets: cannot read EVENTBUS_STRIPE_WEBHOOK_SECRETS_FILE ${missing} (ENOENT)`);
});

t.test('eventbus ingress: a PostgreSQL archive that fails is logged without its password', async (t) => {
  const closed = await freePort(); // nothing listens: the connection is refused
  const port = await freePort();
  const secret = 'whsec_from_file';
  const p = spawnNode('bin/eventbus.js', ['ingress', '--host', '127.0.0.1', '--port', String(port)], {
    AWS_ENDPOINT_URL: 'http://127.0.0.1:9',
    EVENTBUS_STRIPE_WEBHOOK_SECRETS_FILE: secretFile('stripe', `${secret}\n`),
    EVENTBUS_ARCHIVE: 'true',
    EVENTBUS_HTTP_HOST: '127.0.0.1',
    EVENTBUS_ARCHIVE_URL_FILE: secretFile('url', `postgres://app@127.0.0.1:${closed}/eventbus?password=${PW}`),
  });
  t.teardown(() => p.kill());
  await waitFor('ingress listening', async () => (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => null))?.status === 200, 20_000);
  const body = JSON.stringify({ id: 'evt_pg_down', type: 'invoice.paid' });
  const r = await fetch(`http://127.0.0.1:${port}/webhooks/stripe`, { method: 'POST', body, headers: { 'content-type': 'application/json', 'stripe-signature': signStripePayload(body, secret) } });
  t.equal(r.status, 503, 'the delivery records are unavailable: the sender retries later');
  await p.waitForOutput(/webhook delivery records unavailable/);
  t.match(p.output(), /ERR_ARCHIVE|cannot be opened/, 'the failure is logged');
  t.notMatch(p.output(), /S3cr3t|whsec_from_file/, 'without the password or the webhook secret');
  p.child.kill('SIGTERM');
  t.equal((await p.exited).code, 0);
});
