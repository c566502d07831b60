// Secrets from env vars or files (issue 14, Medium): the Docker/Kubernetes `_FILE` convention for
// every secret, and an env form for each generic webhook source. Errors name the key, never the secret.
import t from 'tap';
import { chmodSync } from 'node:fs';
import { join } from 'node:path';
import { loadConfig, redactConfig } from '../../dist/config.js';
import { failsConfig as fails, secretFiles } from '../helpers/config-errors.js';

const { dir, file } = secretFiles(t);
const GH = { github: { header: 'X-Hub-Signature-256' } };

t.test('every secret can come from a file named by <VAR>_FILE (trailing newline trimmed)', async (t) => {
  const c = loadConfig({
    env: {
      EVENTBUS_API_TOKEN_FILE: file('token', 'tok-from-file\n'),
      EVENTBUS_STRIPE_WEBHOOK_SECRETS_FILE: file('stripe', 'whsec_a\nwhsec_b\n'),
      EVENTBUS_ARCHIVE_URL_FILE: file('url', 'postgres://app:pw-from-file@db/eventbus\n'),
      EVENTBUS_WEBHOOK_GITHUB_SECRETS_FILE: file('gh', 'gh-old,gh-new'),
    },
    overrides: { webhooks: { sources: GH } },
  });
  t.equal(c.http.apiToken, 'tok-from-file');
  t.same(c.webhooks.stripe.secrets, ['whsec_a', 'whsec_b'], 'one secret per line or comma');
  t.equal(c.archive.url, 'postgres://app:pw-from-file@db/eventbus');
  t.same(c.webhooks.sources.github!.secrets, ['gh-old', 'gh-new']);
  t.notMatch(JSON.stringify(redactConfig(c)), /tok-from-file|whsec_|pw-from-file|gh-old|gh-new/, 'eventbus config prints none of them');
});

t.test('a generic source takes its secrets from EVENTBUS_WEBHOOK_<SOURCE>_SECRETS, over the file', async (t) => {
  const c = loadConfig({ env: { EVENTBUS_WEBHOOK_MY_SHOP_SECRETS: 'shop-1, shop-2' }, overrides: { webhooks: { sources: { 'my-shop': { header: 'x-sig', secret: 'in-file' } } } } });
  t.same(c.webhooks.sources['my-shop']!.secrets, ['shop-1', 'shop-2']);
});

t.test('a missing, unreadable or empty secret file fails the start naming the key and the path', async (t) => {
  const missing = join(dir, 'nope');
  fails(t, () => loadConfig({ env: { EVENTBUS_API_TOKEN_FILE: missing } }), new RegExp(`http\\.apiToken: cannot read EVENTBUS_API_TOKEN_FILE ${missing} \\(ENOENT\\)`));
  fails(t, () => loadConfig({ env: { EVENTBUS_ARCHIVE_URL_FILE: dir } }), /archive\.url: cannot read EVENTBUS_ARCHIVE_URL_FILE .* \(EISDIR\)/);
  if (process.getuid?.() !== 0) {
    const locked = file('locked', 'shh-locked');
    chmodSync(locked, 0o000);
    fails(t, () => loadConfig({ env: { EVENTBUS_STRIPE_WEBHOOK_SECRETS_FILE: locked } }), /webhooks\.stripe\.secrets: cannot read .*locked \(EACCES\)/, 'shh-locked');
  }
  fails(t, () => loadConfig({ env: { EVENTBUS_API_TOKEN_FILE: file('empty', ' \n') } }), /http\.apiToken: EVENTBUS_API_TOKEN_FILE .*empty is empty/);
  fails(t, () => loadConfig({ env: { EVENTBUS_API_TOKEN: 'tok-both', EVENTBUS_API_TOKEN_FILE: file('t2', 'tok-both') } }), /set EVENTBUS_API_TOKEN or EVENTBUS_API_TOKEN_FILE, not both/, 'tok-both');
  fails(t, () => loadConfig({ env: { EVENTBUS_WEBHOOK_NOBODY_SECRETS: 'shh-nobody' } }), /EVENTBUS_WEBHOOK_NOBODY_SECRETS names no source in webhooks\.sources/, 'shh-nobody');
  fails(t, () => loadConfig({ env: {}, overrides: { webhooks: { sources: GH } } }), /webhooks\.sources\.github has no secret: set .*EVENTBUS_WEBHOOK_GITHUB_SECRETS or EVENTBUS_WEBHOOK_GITHUB_SECRETS_FILE/);
});

t.test('the Kubernetes example takes every secret from a Secret, none from the ConfigMap', async (t) => {
  const { readFileSync } = await import('node:fs');
  const text = readFileSync(new URL('../../deploy/kubernetes/deployment.yaml', import.meta.url), 'utf8');
  const configMap = /kind: ConfigMap[\s\S]*?\n---/.exec(text)?.[0] ?? '';
  t.match(configMap, /config\.json/, 'the ConfigMap is found');
  t.notMatch(configMap, /apiToken|secret|"url"|postgres:/i, 'no secret in the ConfigMap');
  for (const v of ['EVENTBUS_API_TOKEN', 'EVENTBUS_ARCHIVE_URL', 'EVENTBUS_STRIPE_WEBHOOK_SECRETS']) {
    t.match(text, new RegExp(`- name: ${v}\\n\\s+valueFrom:\\n\\s+secretKeyRef: \\{ name: eventbus-secrets`), `${v} from the Secret`);
  }
});
