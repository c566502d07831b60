// `eventbus config` (issue 20): its output loads back as a config file (the CLI and the supervisor
// start with it), a "[redacted]" secret in it fails loading naming the key, and `--sources` says
// where each value came from. Expected: all of that through the real CLI. Broke: the output held
// `child` and `hostConcurrency` (undeclared keys) and webhook sources the loader rejects.
import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { opsWorld } from '../helpers/ops-world.js';
import { spawnNode, writeConfig } from '../helpers/process.js';
import { secretFiles } from '../helpers/config-errors.js';

async function cli(args: string[], env: Record<string, string> = {}) {
  const p = spawnNode('bin/eventbus.js', args, env);
  let stdout = '';
  p.child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  const exit = await p.exited;
  return { code: exit.code, out: p.output(), stdout };
}

const { file: secretFile } = secretFiles(t);

/** A config using every shape the printer must get right: sources with and without a timestamp, overrides, tags, a KMS key. */
const FULL = {
  topic: 'orders-events',
  concurrency: 6,
  queues: { orders: { timeoutMs: 5000 } },
  webhooks: {
    sources: {
      gh: { header: 'x-hub-signature-256', deliveryIdHeader: 'x-github-delivery' },
      slack: { header: 'x-slack-signature', timestampHeader: 'x-slack-request-timestamp', signedPayload: 'v0:{timestamp}:{body}' },
    },
  },
  archive: { enabled: true, url: 'postgres://app:pw-in-url@db.internal/eventbus' },
  sqs: { kmsKeyId: 'alias/eventbus' },
  tags: { team: 'payments', 'cost-center': '42' },
};
const SECRETS = { EVENTBUS_WEBHOOK_GH_SECRETS: 'gh-secret', EVENTBUS_WEBHOOK_SLACK_SECRETS: 'slack-secret', EVENTBUS_API_TOKEN: 'api-token-1' };

t.test('the printed config loads back: the same config, printed again', async (t) => {
  const first = await cli(['config', '--config', writeConfig(FULL)], SECRETS);
  t.equal(first.code, 0, first.out);
  const printed = JSON.parse(first.stdout) as Record<string, any>;
  t.notOk('child' in printed || 'hostConcurrency' in printed, 'no key the loader computes');
  t.same(printed.webhooks.sources.gh, { secrets: ['[redacted]'], header: 'x-hub-signature-256', deliveryIdHeader: 'x-github-delivery', signedPayload: '{body}' });
  t.same(printed.webhooks.sources.slack, {
    secrets: ['[redacted]'],
    header: 'x-slack-signature',
    timestampHeader: 'x-slack-request-timestamp',
    toleranceSec: 300,
    signedPayload: 'v0:{timestamp}:{body}',
  });
  t.equal(printed.concurrency, 6);
  t.same(printed.tags, FULL.tags);
  t.equal(printed.sqs.kmsKeyId, 'alias/eventbus');
  t.notMatch(first.stdout, /gh-secret|slack-secret|api-token-1|pw-in-url/, 'no secret printed');
  // The secrets come back from the env (which wins over the file), as on a real host.
  const file = writeConfig(printed);
  const again = await cli(['--config', file, 'config'], { ...SECRETS, EVENTBUS_ARCHIVE_URL: 'postgres://app:pw-in-url@db.internal/eventbus' });
  t.equal(again.code, 0, again.out);
  t.same(JSON.parse(again.stdout), printed, 'loaded back, it prints the same');
});

t.test('a "[redacted]" secret left in a file fails loading, naming the key and where the secret goes', async (t) => {
  const cases: Array<{ cfg: Record<string, unknown>; env?: Record<string, string>; re: RegExp }> = [
    { cfg: { http: { apiToken: '[redacted]' } }, re: /invalid config: http\.apiToken holds "\[redacted\]": `eventbus config` prints that in place of a secret: put the secret itself there, or set EVENTBUS_API_TOKEN \(or EVENTBUS_API_TOKEN_FILE\)/ },
    { cfg: { webhooks: { stripe: { secrets: ['[redacted]'] } } }, re: /webhooks\.stripe\.secrets holds "\[redacted\]".*EVENTBUS_STRIPE_WEBHOOK_SECRETS/ },
    { cfg: { webhooks: { sources: { gh: { header: 'x-sig', secrets: ['[redacted]', '[redacted]'] } } } }, re: /webhooks\.sources\.gh\.secrets holds "\[redacted\]".*EVENTBUS_WEBHOOK_GH_SECRETS/ },
    { cfg: { archive: { url: 'postgres://app:[redacted]@db/eventbus' } }, re: /archive\.url holds "\[redacted\]".*EVENTBUS_ARCHIVE_URL/ },
  ];
  for (const c of cases) {
    const r = await cli(['config', '--config', writeConfig(c.cfg)]);
    t.equal(r.code, 1, r.out);
    t.match(r.out, c.re);
    t.match(r.out, /\[ERR_CONFIG_INVALID\]/);
  }
  // The env var wins over the file: with the secret given there, the file loads.
  const withEnv = await cli(['config', '--config', writeConfig({ http: { apiToken: '[redacted]' } })], { EVENTBUS_API_TOKEN_FILE: secretFile('tok', 'real-token\n') });
  t.equal(withEnv.code, 0, withEnv.out);
});

t.test('the supervisor starts with a printed config', async (t) => {
  const world = await opsWorld(t, 'cfg');
  const base = JSON.parse(readFileSync(world.config, 'utf8')) as Record<string, unknown>;
  writeFileSync(world.config, JSON.stringify({ ...base, http: { host: '127.0.0.1', port: 0 }, webhooks: { sources: { gh: { header: 'x-sig' } } } }));
  const printed = await cli(['config', '--config', world.config], { EVENTBUS_WEBHOOK_GH_SECRETS: 'gh-secret' });
  t.equal(printed.code, 0, printed.out);
  const file = writeConfig(JSON.parse(printed.stdout) as Record<string, unknown>);
  const sup = spawnNode('dist/supervisor/index.js', ['--config', file], { EVENTBUS_WEBHOOK_GH_SECRETS: 'gh-secret' });
  t.teardown(() => sup.kill());
  await sup.waitForOutput(/"msg":"supervisor running"/, 60_000);
  sup.child.kill('SIGTERM');
  t.equal((await sup.exited).code, 0, 'drains and exits 0');
});

t.test('--sources: each key with its value and where it came from', async (t) => {
  const file = writeConfig({ topic: 'from-file', http: { port: 9999 } });
  const env = { EVENTBUS_QUEUE_PREFIX: 'prod-', EVENTBUS_API_TOKEN_FILE: secretFile('api', 'tok-from-file\n'), EVENTBUS_TAGS: 'team=payments,env=prod' };
  const json = await cli(['config', '--sources', '--json', '--config', file, '--dev', '--dev-port', '4999'], env);
  t.equal(json.code, 0, json.out);
  const rows = JSON.parse(json.stdout) as Array<Record<string, unknown>>;
  const row = (key: string) => rows.find((r) => r.key === key);
  t.same(row('topic'), { key: 'topic', value: 'from-file', origin: 'file', file });
  t.same(row('http.port'), { key: 'http.port', value: 9999, origin: 'file', file });
  t.same(row('http.host'), { key: 'http.host', value: '0.0.0.0', origin: 'default' }, 'a nested key not in the file: default');
  t.same(row('queuePrefix'), { key: 'queuePrefix', value: 'prod-', origin: 'env', env: 'EVENTBUS_QUEUE_PREFIX' });
  t.same(row('http.apiToken'), { key: 'http.apiToken', value: '[redacted]', origin: 'env', env: 'EVENTBUS_API_TOKEN_FILE' }, 'a secret from a file: named, not shown');
  t.same(row('tags'), { key: 'tags', value: { team: 'payments', env: 'prod' }, origin: 'env', env: 'EVENTBUS_TAGS' });
  t.same(row('endpoint'), { key: 'endpoint', value: 'http://127.0.0.1:4999', origin: 'flag', flag: '--dev' });
  t.same(row('payloads.bucket'), { key: 'payloads.bucket', value: 'eventbus-payloads', origin: 'flag', flag: '--dev' });
  t.match(row('threads'), { origin: 'default', derived: 'the usable cores' });
  t.match(row('fifoTopic'), { value: 'from-file.fifo', origin: 'default', derived: '<topic>.fifo' });
  t.notMatch(json.stdout, /tok-from-file/, 'no secret');
  // Every key of the printed config has a row, and only those.
  const printed = JSON.parse((await cli(['config', '--config', file], env)).stdout) as Record<string, unknown>;
  const leaves = (o: Record<string, unknown>, at = ''): string[] =>
    Object.entries(o).flatMap(([k, v]) => {
      const key = at ? `${at}.${k}` : k;
      return v && typeof v === 'object' && !Array.isArray(v) && !['queues', 'tags', 'webhooks.sources'].includes(key) ? leaves(v as Record<string, unknown>, key) : [key];
    });
  // The print leaves out the derived defaults (computed where the file is loaded): --sources has them.
  const derivedKeys = rows.filter((r) => r.origin === 'default' && r.derived !== undefined).map((r) => r.key as string);
  t.same(derivedKeys.sort(), ['fifoTopic', 'source', 'tasksPerThread', 'threads'], 'the derived defaults');
  t.same(rows.map((r) => r.key as string).filter((k) => !derivedKeys.includes(k)).sort(), leaves(printed).sort());
  // Loaded under another topic, the printed file's FIFO topic follows it (it was pinned to this one's).
  const elsewhere = await cli(['config', '--config', writeConfig(printed)], { ...env, EVENTBUS_TOPIC: 'other-env' });
  t.equal((JSON.parse((await cli(['config', '--sources', '--json', '--config', writeConfig(printed)], { ...env, EVENTBUS_TOPIC: 'other-env' })).stdout) as Array<Record<string, unknown>>).find((r) => r.key === 'fifoTopic')?.value, 'other-env.fifo');
  t.equal(elsewhere.code, 0, elsewhere.out);

  const table = await cli(['config', '--sources', '--config', file], env);
  t.equal(table.code, 0, table.out);
  t.match(table.stdout, /^KEY +VALUE +SOURCE$/m);
  t.match(table.stdout, /^queuePrefix +"prod-" +env EVENTBUS_QUEUE_PREFIX$/m);
  t.match(table.stdout, new RegExp(`^topic +"from-file" +file ${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}$`, 'm'));
  t.match(table.stdout, /^threads +\d+ +default \(the usable cores\)$/m);
  t.match(table.stdout, /^http\.apiToken +"\[redacted\]" +env EVENTBUS_API_TOKEN_FILE$/m);
});
