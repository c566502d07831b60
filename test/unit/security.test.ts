// Security defaults (issue 14, High): /events never open on an address others can reach, and no
// token that is empty or matched by Unicode whitespace.
import t from 'tap';
import { loadConfig } from '../../dist/config.js';
import { extraRoutes, isLoopbackHost } from '../../dist/http/routes.js';
import { bearerMatches } from '../../dist/archive/index.js';
import { createLogger } from '../../dist/log.js';
import { createMetrics } from '../../dist/metrics/registry.js';

const routes = (env: Record<string, string>) =>
  extraRoutes({ config: loadConfig({ env }), metrics: createMetrics(), log: createLogger({ level: 'silent' }), publisher: () => null });

t.test('an empty or whitespace-only http.apiToken is a config error naming the key', async (t) => {
  // Broke: EVENTBUS_API_TOKEN= counted as set, a token of '' that a crafted bearer could match.
  for (const v of ['', '   ', '\u00a0', '\t']) {
    t.throws(() => loadConfig({ env: { EVENTBUS_API_TOKEN: v } }), { code: 'ERR_CONFIG_INVALID', message: /http\.apiToken: must not be empty or whitespace/ }, JSON.stringify(v));
  }
  t.equal(loadConfig({ env: { EVENTBUS_API_TOKEN: 's3cret' } }).http.apiToken, 's3cret');
});

t.test('with the archive on, a non-loopback http.host without a token fails naming http.apiToken', async (t) => {
  // Broke: http.host defaults to 0.0.0.0 and the token to unset: GET /events served every archived
  // event (user data, webhook bodies) to anyone who could reach the port, without a warning.
  t.throws(() => routes({ EVENTBUS_ARCHIVE: 'true' }), { code: 'ERR_CONFIG_INVALID', message: /http\.apiToken must be set.*http\.host 0\.0\.0\.0/ });
  t.throws(() => routes({ EVENTBUS_ARCHIVE: 'true', EVENTBUS_HTTP_HOST: '10.1.2.3' }), { code: 'ERR_CONFIG_INVALID' });
  t.doesNotThrow(() => routes({ EVENTBUS_ARCHIVE: 'true', EVENTBUS_HTTP_HOST: '0.0.0.0', EVENTBUS_API_TOKEN: 'tok' }), 'with a token');
  t.doesNotThrow(() => routes({ EVENTBUS_ARCHIVE: 'true', EVENTBUS_HTTP_HOST: '127.0.0.1' }), 'on loopback (npm start)');
  t.doesNotThrow(() => routes({ EVENTBUS_HTTP_HOST: '0.0.0.0' }), 'archive off: no /events to protect');
});

t.test('loopback addresses', async (t) => {
  for (const h of ['127.0.0.1', '127.1.2.3', 'localhost', '::1', '[::1]', '::ffff:127.0.0.1']) t.ok(isLoopbackHost(h), h);
  for (const h of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.1', 'example.com', '128.0.0.1']) t.notOk(isLoopbackHost(h), h);
});

t.test('the bearer check: exact token, ASCII spaces only, never an empty token', async (t) => {
  t.ok(bearerMatches('Bearer tok', 'tok'));
  t.ok(bearerMatches('bearer   tok  ', 'tok'), 'scheme case-insensitive, ASCII spaces around');
  t.notOk(bearerMatches('Bearer tok2', 'tok'));
  t.notOk(bearerMatches('Bearer \u00a0', ''), 'a non-breaking space does not match an empty token');
  t.notOk(bearerMatches('Bearer \u00a0tok', 'tok'), 'Unicode spaces are part of the token, not trimmed');
  t.notOk(bearerMatches('Bearer ', ''), 'an empty token never matches');
  t.notOk(bearerMatches(undefined, 'tok'));
  t.notOk(bearerMatches('Basic dG9r', 'tok'));
});
