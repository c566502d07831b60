// Secrets in URLs (issue 14, Medium): one redaction for every connection string form pg accepts, used
// by `eventbus config`, the start log and store locations; pg's error texts go through it too.
import t from 'tap';
import { Writable } from 'node:stream';
import fastify from 'fastify';
import { redactDsn, redactError } from '../../dist/redact.js';
import { describeArchive } from '../../dist/archive/index.js';
import { loadConfig, redactConfig } from '../../dist/config.js';
import { extraRoutes } from '../../dist/http/routes.js';
import { createLogger } from '../../dist/log.js';
import { createMetrics } from '../../dist/metrics/registry.js';

const PW = 'S3cr3t-pw';
// Every form pg (pg-connection-string) accepts, and the ones that leaked before.
const FORMS: Array<[string, string]> = [
  ['postgres://', `postgres://app:${PW}@db.internal:5432/eventbus`],
  ['postgresql://', `postgresql://app:${PW}@db.internal/eventbus`],
  ['socket://', `socket://app:${PW}@/var/run/postgresql?db=eventbus`],
  ['an unencoded @ in the password', `postgres://app:x@${PW}@db.internal/eventbus`],
  ['an unencoded / in the password', `postgres://app:${PW}/x@db.internal/eventbus`],
  ['a percent-encoded password', `postgres://app:${encodeURIComponent(`${PW}@/:`)}@db.internal/eventbus`],
  ['no user name', `postgres://:${PW}@db.internal/eventbus`],
  ['an IPv6 host', `postgres://app:${PW}@[::1]:5432/eventbus`],
  ['several hosts', `postgres://app:${PW}@h1:5432,h2:5432/eventbus`],
  ['?password=', `postgres://app@db.internal/eventbus?password=${PW}`],
  ['&password= after other parameters', `postgres://app@db.internal/eventbus?sslmode=require&password=${PW}&application_name=x`],
  ['?sslpassword=', `postgres://app@db.internal/eventbus?sslkey=/k.pem&sslpassword=${PW}`],
  ['a host in the query (Unix socket)', `postgres://app:${PW}@/eventbus?host=/var/run/postgresql`],
  ['key=value', `host=db.internal user=app password=${PW} dbname=eventbus`],
  ['key = value, quoted', `host=db.internal password = '${PW} with spaces\\'' dbname=eventbus`],
  ['JSON', `{"host":"db.internal","password":"${PW}"}`],
];

t.test('redactDsn hides the password of every form, keeps the rest readable', async (t) => {
  for (const [what, dsn] of FORMS) {
    const out = redactDsn(dsn);
    t.notMatch(out, /S3cr3t/, `${what}: ${out}`);
    t.match(out, /\[redacted\]/, `${what}: says so`);
    t.notMatch(redactDsn(`connect failed for ${dsn} (timeout)`), /S3cr3t/, `${what}: inside a sentence`);
  }
  t.equal(redactDsn(`postgres://app:${PW}@db.internal:5432/eventbus`), 'postgres://app:[redacted]@db.internal:5432/eventbus', 'user, host, port and database kept');
  t.equal(redactDsn('postgres://app@db.internal/eventbus'), 'postgres://app@db.internal/eventbus', 'nothing to hide');
  t.equal(redactDsn('/var/lib/eventbus/archive.sqlite'), '/var/lib/eventbus/archive.sqlite');
  t.equal(redactDsn(redactDsn(FORMS[0]![1])), redactDsn(FORMS[0]![1]), 'idempotent');
});

t.test('redactError: message, stack and causes, with the known password in any spelling', async (t) => {
  const url = `postgres://app:ab/${PW}@db.internal/eventbus`;
  // A parser that split the URL at the `/` may quote the rest as the database name.
  const cause = Object.assign(new Error(`database "${PW}@db.internal/eventbus" does not exist`), { code: '3D000', config: { connectionString: url } });
  const err = new Error(`archive ${url} cannot be opened`, { cause });
  const r = redactError(err, url);
  const text = JSON.stringify({ m: r.message, s: r.stack, c: (r.cause as Error).message, cs: (r.cause as Error).stack, all: r });
  t.notMatch(text, /S3cr3t/);
  t.equal((r.cause as { code?: string }).code, '3D000', 'the code is kept');
  t.notOk('config' in (r.cause as object), 'other fields (a driver config) are dropped');
  t.equal(redactError('plain text password=x').message, 'plain text password=[redacted]');
});

t.test('eventbus config and the start log print no password (real log output)', async (t) => {
  for (const [what, dsn] of FORMS.filter(([, d]) => /^(postgres|postgresql|socket):/.test(d))) {
    const cfg = loadConfig({ env: { EVENTBUS_ARCHIVE_URL: dsn, EVENTBUS_ARCHIVE: 'true', EVENTBUS_HTTP_HOST: '127.0.0.1' } });
    t.notMatch(JSON.stringify(redactConfig(cfg)), /S3cr3t/, `config: ${what}`);
    t.notMatch(describeArchive(dsn).store, /S3cr3t/, `describeArchive: ${what}`);

    const lines: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, cb) {
        lines.push(String(chunk));
        cb();
      },
    });
    const app = fastify();
    const routes = extraRoutes({ config: cfg, metrics: createMetrics(), log: createLogger({ destination: sink as never }), publisher: () => null });
    await routes.register(app);
    await app.close();
    await routes.close();
    t.match(lines.join(''), /archive on/, `${what}: the start line was logged`);
    t.notMatch(lines.join(''), /S3cr3t/, `start log: ${what}`);
  }
});

t.test('archive.url: a scheme that is no store, or a key=value string, fails without quoting the value', async (t) => {
  t.throws(() => loadConfig({ env: { EVENTBUS_ARCHIVE_URL: `mysql://app:${PW}@db/x` } }), { code: 'ERR_CONFIG_INVALID', message: /archive\.url: .*mysql:\/\/ is not a store/ });
  t.throws(() => loadConfig({ env: { EVENTBUS_ARCHIVE_URL: `host=db password=${PW}` } }), { code: 'ERR_CONFIG_INVALID', message: /archive\.url: looks like a key=value/ });
  try {
    loadConfig({ env: { EVENTBUS_ARCHIVE_URL: `host=db password=${PW}` } });
  } catch (err) {
    t.notMatch((err as Error).message, /S3cr3t/);
  }
});
