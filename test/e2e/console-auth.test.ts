// The console behind http.apiToken (issue 16): without the token the page shows only the token
// prompt and every API route answers 401; on an address others can reach, no token = no start.
import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { emulator, uniqueName } from '../helpers/emulator.js';
import { spawnNode, startSupervisorProcess, writeConfig, writeHandlers } from '../helpers/process.js';
import { launchBrowser, pageTest } from '../helpers/browser.js';
import { loadConfig } from '../../dist/config.js';
import { createHttpApp } from '../../dist/http/server.js';
import { extraRoutes } from '../../dist/http/routes.js';
import { createLogger } from '../../dist/log.js';
import { createMetrics } from '../../dist/metrics/registry.js';

declare const sessionStorage: any; // eslint-disable-line @typescript-eslint/no-explicit-any

const TOKEN = 'console-test-token-3f9a';
const handlersDir = writeHandlers([{ queue: 'orders', events: ['ORDER_PLACED'] }]);

t.test('console.enabled on a non-loopback http.host without a token: the start fails naming http.apiToken, nothing listens', async (t) => {
  const config = writeConfig({ handlersDir, http: { host: '0.0.0.0', port: 0 }, console: { enabled: true } });
  const p = spawnNode('dist/supervisor/index.js', ['--config', config]);
  const exit = await p.exited;
  t.equal(exit.code, 1);
  t.match(p.output(), /^eventbus: invalid config: http\.apiToken must be set: the console \(console\.enabled\) is served on \/console at http\.host 0\.0\.0\.0, which is not loopback .* \[ERR_CONFIG_INVALID\]$/m);
  t.notMatch(p.output(), /http listening/);
  // The same through the environment variable.
  const q = spawnNode('dist/supervisor/index.js', [], { EVENTBUS_HANDLERS_DIR: handlersDir, EVENTBUS_HTTP_HOST: '10.1.2.3', EVENTBUS_CONSOLE_ENABLED: 'true' });
  t.equal((await q.exited).code, 1);
  t.match(q.output(), /http\.apiToken must be set: the console/);
});

t.test('console routes exist only with console.enabled', async (t) => {
  const serve = async (env: Record<string, string>) => {
    const cfg = loadConfig({ env: { EVENTBUS_HTTP_HOST: '127.0.0.1', ...env } });
    const app = createHttpApp();
    const routes = extraRoutes({ config: cfg, metrics: createMetrics(), log: createLogger({ level: 'silent' }), publisher: () => null, console: () => ({ role: 'test', processes: 1, queues: () => [], sampler: null, failures: null, dlq: null, publish: null }) });
    await routes.register(app);
    t.teardown(() => app.close());
    return app;
  };
  const off = await serve({});
  for (const url of ['/console', '/console/', '/console/api/info', '/console/assets/app.js']) t.equal((await off.inject({ url })).statusCode, 404, `${url} with the console off`);
  const on = await serve({ EVENTBUS_CONSOLE_ENABLED: 'true' });
  t.equal((await on.inject({ url: '/console/', headers: { host: '127.0.0.1' } })).statusCode, 200);
  t.equal((await on.inject({ url: '/console', headers: { host: '127.0.0.1' } })).statusCode, 200, 'without the trailing slash too');
  // A public host with a token: allowed (every API call then needs the token).
  t.doesNotThrow(() => loadConfig({ env: { EVENTBUS_CONSOLE_ENABLED: 'true', EVENTBUS_API_TOKEN: TOKEN } }));
});

t.test('with http.apiToken', async (t) => {
  const emu = await emulator();
  t.teardown(() => emu.stop());
  const work = mkdtempSync(join(tmpdir(), 'eventbus-console-auth-'));
  const config = writeConfig({
    endpoint: emu.endpoint,
    region: 'us-east-1',
    provision: true,
    topic: uniqueName('topic'),
    queuePrefix: `${uniqueName('auth')}-`,
    handlersDir,
    http: { host: '127.0.0.1', port: 0 },
    console: { enabled: true },
    archive: { enabled: true, url: join(work, 'archive.sqlite') },
    threads: 1,
    shutdownTimeoutMs: 5_000,
  });
  const { sup, base } = await startSupervisorProcess(t, config, { EVENTBUS_API_TOKEN: TOKEN });
  await sup.waitForOutput(/"msg":"supervisor running"/, 60_000);
  t.notMatch(sup.output(), TOKEN, 'the token is never logged');

  t.test('every API route answers 401 without the token, 200 with it', async (t) => {
    const gets = ['info', 'overview', 'failures', 'events', 'events/some-id', 'dlq/orders/messages'];
    for (const path of gets) {
      for (const auth of [undefined, 'Bearer wrong', `Basic ${TOKEN}`]) {
        const r = await fetch(`${base}/console/api/${path}`, { headers: auth ? { authorization: auth } : {} });
        t.equal(r.status, 401, `GET ${path} with ${auth ?? 'no authorization'}`);
        t.equal(r.headers.get('www-authenticate'), 'Bearer');
      }
    }
    for (const path of ['dlq/orders/redrive', 'publish']) {
      const r = await fetch(`${base}/console/api/${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"all":true}' });
      t.equal(r.status, 401, `POST ${path}`);
    }
    // Encoded spellings of the API path are the API too: the router decodes them (review finding).
    for (const path of ['%61pi/info', 'ap%69/overview', '%61%70%69/failures', 'api/%64lq/orders/messages']) {
      const r = await fetch(`${base}/console/${path}`);
      t.equal(r.status, 401, `GET /console/${path} without the token`);
    }
    t.equal((await fetch(`${base}/console/no-such-route`)).status, 404, 'a path no route has: 404, nothing else');
    const encodedPost = await fetch(`${base}/console/%61pi/dlq/orders/redrive`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"all":true}' });
    t.equal(encodedPost.status, 401, 'POST /console/%61pi/dlq/orders/redrive without the token');
    // The page and its files stay open (they hold no data): the prompt must load.
    t.equal((await fetch(`${base}/console/`)).status, 200, 'the page');
    t.equal((await fetch(`${base}/console/assets/app.js`)).status, 200, 'its script');
    // A request another site's page makes (an <img>, a fetch) is refused even with the token.
    const cross = await fetch(`${base}/console/api/info`, { headers: { authorization: `Bearer ${TOKEN}`, 'sec-fetch-site': 'cross-site' } });
    t.equal(cross.status, 403, 'a cross-site GET of the API');
    const ok = await fetch(`${base}/console/api/info`, { headers: { authorization: `Bearer ${TOKEN}` } });
    t.equal(ok.status, 200);
    t.match(await ok.json(), { tokenRequired: true, queues: [{ queue: 'orders' }] });
    // With a token the Host check is the token's job: a proxy's name is fine.
    t.equal((await fetch(`${base}/console/api/overview`, { headers: { authorization: `Bearer ${TOKEN}` } })).status, 200);
  });

  const browser: Browser = await launchBrowser();
  t.teardown(() => browser.close());
  const context = await browser.newContext();
  const page: Page = await context.newPage();

  pageTest(t, 'the page without the token shows only the token prompt; with it, the console (for this tab only)', () => page, async (t) => {
    const statuses: number[] = [];
    page.on('response', (r) => {
      if (r.url().includes('/console/api/')) statuses.push(r.status());
    });
    await page.goto(`${base}/console/`);
    const prompt = page.getByLabel('API token');
    await prompt.waitFor();
    t.equal(await page.locator('nav').count(), 0, 'no navigation');
    t.equal(await page.locator('table').count(), 0, 'no data');
    t.ok(statuses.length > 0 && statuses.every((s) => s === 401), `the page's API calls were refused: ${statuses}`);
    await prompt.fill('not-the-token');
    await page.getByRole('button', { name: 'Open the console' }).click();
    await page.getByRole('alert').filter({ hasText: 'That token was refused.' }).waitFor();
    t.equal(await page.locator('nav').count(), 0, 'still no navigation');
    await prompt.fill(TOKEN);
    await page.getByRole('button', { name: 'Open the console' }).click();
    await page.locator('tr[data-queue="orders"]').waitFor({ timeout: 20_000 });
    t.equal(await page.evaluate(() => sessionStorage.getItem('eventbus-console-token')), TOKEN, 'kept in sessionStorage');
    // Reloaded: the tab keeps it. Another tab (a new context) asks again.
    await page.reload();
    await page.locator('tr[data-queue="orders"]').waitFor({ timeout: 20_000 });
    const other = await (await browser.newContext()).newPage();
    await other.goto(`${base}/console/`);
    await other.getByLabel('API token').waitFor();
    t.equal(await other.locator('nav').count(), 0);
    await other.context().close();
  });
});
