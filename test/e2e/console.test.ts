// The web console in a real browser (issue 16): Debian's chromium driven by playwright-core, against
// the real supervisor (a child process) on the emulator. One supervisor and one browser for the file.
import t from 'tap';
import { copyFileSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { GetQueueAttributesCommand, GetQueueUrlCommand } from '@aws-sdk/client-sqs';
import type { Browser, Page } from 'playwright-core';
import { createPublisher } from '../../dist/publisher/index.js';
import { emulator, uniqueName, waitFor } from '../helpers/emulator.js';
import { ROOT, startSupervisorProcess, writeConfig, writeHandlers } from '../helpers/process.js';
import { launchBrowser, pageTest, screenshot } from '../helpers/browser.js';

// In the page (page.evaluate, waitForFunction): the browser's globals, untyped (no DOM lib here).
declare const document: any, location: any, performance: any; // eslint-disable-line @typescript-eslint/no-explicit-any

// The browser first: without one the file fails before it starts anything.
const browser: Browser = await launchBrowser();
t.teardown(() => browser.close());
const emu = await emulator();
t.teardown(() => emu.stop());
const prefix = `${uniqueName('con')}-`;
const topic = uniqueName('topic');
const work = mkdtempSync(join(tmpdir(), 'eventbus-console-'));
// `letters` rejects (NonRetryableError: dead-lettered at once, with the reason) until this file exists.
const letterFlag = join(work, 'letters-may-succeed');
const handlersDir = writeHandlers([
  { queue: 'orders', events: ['ORDER_PLACED'] },
  { queue: 'audit', events: ['AUDITED'] },
]);
writeFileSync(
  join(handlersDir, 'letters.mjs'),
  `import { existsSync } from 'node:fs';
import { NonRetryableError } from ${JSON.stringify(pathToFileURL(join(ROOT, 'dist', 'index.js')).href)};
export default {
  events: ['LETTER'],
  handle() {
    if (!existsSync(${JSON.stringify(letterFlag)})) throw new NonRetryableError('letters are refused for now');
    return true;
  },
};
`,
);
const config = writeConfig({
  endpoint: emu.endpoint,
  region: 'us-east-1',
  provision: true,
  topic,
  queuePrefix: prefix,
  handlersDir,
  http: { host: '127.0.0.1', port: 0 },
  console: { enabled: true },
  archive: { enabled: true, url: join(work, 'archive.sqlite') },
  retry: { baseDelaySec: 1, maxDelaySec: 1 },
  threads: 2,
  concurrency: 12,
  failureEvents: { enabled: false },
  shutdownTimeoutMs: 5_000,
});
const { sup, base } = await startSupervisorProcess(t, config);
await sup.waitForOutput(/"msg":"supervisor running"/, 60_000);

const publisher = createPublisher({ sns: emu.sns, topic, source: 'console-test' });
const context = await browser.newContext({ viewport: { width: 1360, height: 900 }, colorScheme: 'light' });
const page: Page = await context.newPage();

/** A cell of the overview's row of `queue` (data-col). */
const cell = (queue: string, col: string) => page.locator(`tr[data-queue="${queue}"] td[data-col="${col}"]`);
/** Waits until the page shows `text` in a cell (the page polls every 2 s). */
const cellShows = (queue: string, col: string, text: string, timeout = 20_000) =>
  page.waitForFunction(
    ([q, c, want]) => document.querySelector(`tr[data-queue="${q}"] td[data-col="${c}"]`)?.textContent?.trim() === want,
    [queue, col, text] as const,
    { timeout },
  );

pageTest(t, 'the overview lists every queue and its counts follow the events published', () => page, async (t) => {
  await page.goto(`${base}/console/`);
  await page.locator('tr[data-queue="orders"]').waitFor();
  for (const q of ['orders', 'audit', 'letters', 'archive']) t.equal(await page.locator(`tr[data-queue="${q}"]`).count(), 1, `queue ${q} listed`);
  t.equal((await cell('orders', 'received').textContent())?.trim(), '0', 'nothing received yet');
  // Events arriving while the page is open: the counts change without a reload.
  const navigations: string[] = [];
  page.on('framenavigated', (f) => navigations.push(f.url()));
  await publisher.publishBatch([1, 2, 3].map((n) => ({ type: 'ORDER_PLACED', data: { n } })));
  await publisher.publishBatch([1, 2].map((n) => ({ type: 'AUDITED', data: { n, sleepMs: 20 } })));
  await cellShows('orders', 'received', '3');
  await cellShows('orders', 'succeeded', '3');
  await cellShows('audit', 'succeeded', '2');
  t.equal((await cell('orders', 'failed').textContent())?.trim(), '0');
  t.same(navigations, [], 'updated in place, not reloaded');
  // One chart per queue (uPlot draws on a canvas), and the threads with their load.
  await page.locator('section.card[aria-label="queue orders"] canvas').first().waitFor();
  t.equal(await page.locator('[role="meter"][aria-label^="thread"]').count(), 2, 'both worker threads shown');
});

pageTest(t, "a failing handler's failure is listed with its stack and a link to its event", () => page, async (t) => {
  const marker = `console-boom-${Date.now()}`;
  const event = await publisher.createEvent('ORDER_PLACED', { fail: 'throw', message: marker, failTimes: 1 });
  await page.goto(`${base}/console/#/failures`);
  const row = page.locator(`tr[data-event-id="${event.id}"]`);
  await row.waitFor({ timeout: 20_000 });
  const text = (await row.textContent()) ?? '';
  t.match(text, /orders/);
  t.match(text, /ORDER_PLACED/);
  t.equal((await row.locator('td.bad').textContent())?.trim(), 'error', 'the result');
  t.match(text, marker, 'the error');
  await row.locator('summary', { hasText: 'stack' }).click();
  const stack = (await row.locator('pre').textContent()) ?? '';
  t.match(stack, new RegExp(`Error: ${marker}\\n\\s+at .*behave\\.mjs:\\d+`), 'the stack, with file and line');
  // The link opens the archived event (the archive stores every event; wait for it there).
  await waitFor('the event archived', async () => (await fetch(`${base}/console/api/events/${event.id}`)).status === 200, 20_000);
  await row.locator('a', { hasText: event.id }).click();
  const json = page.locator('pre[aria-label="event JSON"]');
  await json.waitFor();
  t.match((await json.textContent()) ?? '', `"id": "${event.id}"`);
  t.equal(new URL(page.url()).hash, `#/events/${event.id}`);
});

pageTest(t, 'a dead letter is browsed, stays in its DLQ, is redriven from the page and then handled', () => page, async (t) => {
  const event = await publisher.createEvent('LETTER', { to: 'ada' });
  // Dead-lettered at once (rejected): the failure is recorded after the DLQ took it.
  await waitFor(
    'the letter rejected',
    async () => ((await (await fetch(`${base}/console/api/failures?queue=letters`)).json()) as { failures: Array<{ eventId: string }> }).failures.some((f) => f.eventId === event.id),
    20_000,
  );
  await page.goto(`${base}/console/#/dlq/letters`);
  const letter = page.locator('article[data-message-id]', { hasText: event.id });
  await letter.waitFor({ timeout: 20_000 });
  t.match((await letter.textContent()) ?? '', /Dead-letter reason: rejected: NonRetryableError: letters are refused for now/);
  await letter.locator('summary', { hasText: 'event' }).click();
  t.match((await letter.locator('pre').first().textContent()) ?? '', `"type": "LETTER"`);
  // Browsing released it at once: it is visible in the DLQ again (not hidden for 30 s).
  const dlqUrl = (await emu.sqs.send(new GetQueueUrlCommand({ QueueName: `${prefix}letters-dlq` }))).QueueUrl!;
  await waitFor(
    'the dead letter visible again after the browse',
    async () => Number((await emu.sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ['ApproximateNumberOfMessages'] }))).Attributes?.ApproximateNumberOfMessages) === 1,
    3_000,
  );
  writeFileSync(letterFlag, '');
  await letter.getByRole('checkbox').check();
  await page.getByRole('button', { name: 'Redrive selected (1)' }).click();
  const confirm = page.getByRole('alertdialog', { name: 'confirm redrive' });
  await confirm.waitFor();
  t.match((await confirm.textContent()) ?? '', /Move 1 message\(s\) back to letters\?/);
  await confirm.getByRole('button', { name: 'Confirm redrive' }).click();
  await page.getByRole('status').filter({ hasText: 'Redrive: moved 1, failed 0.' }).waitFor();
  await page.getByText(`${prefix}letters-dlq is empty.`).waitFor();
  // Handled this time: the overview counts a success for letters.
  await page.goto(`${base}/console/#/overview`);
  await cellShows('letters', 'succeeded', '1');
  t.equal((await cell('letters', 'failed').textContent())?.trim(), '1', 'the one rejection before');
});

pageTest(t, 'the events page filters by type and pages through the archive', () => page, async (t) => {
  const type = `PAGED_${Date.now()}`;
  const sent: string[] = [];
  for (let i = 0; i < 25; i += 10) {
    const batch = Array.from({ length: Math.min(10, 25 - i) }, (_, k) => ({ type, data: { i: i + k } }));
    const r = await publisher.publishBatch(batch);
    t.equal(r.failed.length, 0);
    sent.push(...r.successful.map((s) => s.id));
  }
  await waitFor('25 events archived', async () => ((await (await fetch(`${base}/console/api/events?type=${type}&limit=100`)).json()) as { events: unknown[] }).events.length === 25, 20_000);
  await page.goto(`${base}/console/#/events`);
  await page.getByLabel('Type(s)').fill(type);
  await page.getByLabel('Per page').selectOption('10');
  await page.getByRole('button', { name: 'Apply' }).click();
  const rows = page.locator('table[aria-label="events"] tbody tr[data-event-id]');
  const idsOnPage = async (n: number) => {
    await page.waitForFunction((n) => document.querySelectorAll('table[aria-label="events"] tbody tr[data-event-id]').length === n, n);
    return rows.evaluateAll((els) => els.map((e) => e.getAttribute('data-event-id')!));
  };
  const seen: string[] = [];
  const p1 = await idsOnPage(10);
  seen.push(...p1);
  await page.getByRole('button', { name: 'Next page' }).click();
  await page.waitForFunction((first) => document.querySelector('table[aria-label="events"] tbody tr[data-event-id]')?.getAttribute('data-event-id') !== first, p1[0]);
  seen.push(...(await idsOnPage(10)));
  await page.getByRole('button', { name: 'Next page' }).click();
  seen.push(...(await idsOnPage(5)));
  t.ok(await page.getByRole('button', { name: 'Next page' }).isDisabled(), 'no page after the last');
  t.same([...seen].sort(), [...sent].sort(), 'every event once, none repeated or skipped');
  await page.getByRole('button', { name: 'Previous page' }).click();
  t.equal((await idsOnPage(10)).length, 10, 'back to the second page');
  // One event's JSON.
  const first = rows.first();
  await first.getByRole('button', { name: 'JSON' }).click();
  t.match((await page.locator('table[aria-label="events"] pre').textContent()) ?? '', `"type": "${type}"`);
});

/** A GET with this Host header (fetch does not send one of its own choosing). */
function statusWithHost(url: string, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { host } }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    req.end();
  });
}

pageTest(t, 'the page is small, fast, keyboard-usable and served with a strict policy', () => page, async (t) => {
  const res = await page.goto(`${base}/console/`);
  const h = res!.headers();
  t.match(h['content-security-policy'], /default-src 'self'; script-src 'self'/);
  t.notMatch(h['content-security-policy'], /unsafe-inline|unsafe-eval/);
  t.equal(h['x-content-type-options'], 'nosniff');
  t.equal(h['referrer-policy'], 'no-referrer');
  await page.locator('tr[data-queue="orders"]').waitFor();
  const bytes = await page.evaluate(() => {
    const nav = performance.getEntriesByType('navigation')[0];
    const res: Array<{ name: string; encodedBodySize: number }> = performance.getEntriesByType('resource');
    return nav.encodedBodySize + res.filter((r) => !r.name.includes('/console/api/')).reduce((n, r) => n + r.encodedBodySize, 0);
  });
  t.ok(bytes > 0 && bytes < 200 * 1024, `the page and its files: ${bytes} bytes (< 200 KB)`);
  const fcp = await page.evaluate(() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime ?? null);
  t.ok(fcp !== null && fcp < 1_000, `first contentful paint at ${fcp} ms (< 1 s)`);
  // By keyboard: Tab to the Failures link, Enter.
  await page.locator('body').focus();
  for (let i = 0; i < 10; i++) {
    await page.keyboard.press('Tab');
    if ((await page.evaluate(() => document.activeElement?.textContent)) === 'Failures') break;
  }
  t.equal(await page.evaluate(() => document.activeElement?.textContent), 'Failures', 'reached by Tab');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => location.hash === '#/failures');
  t.equal(await page.locator('nav a[aria-current="page"]').textContent(), 'Failures');
});

pageTest(t, "the overview after the file's traffic: docs/console-overview.png", () => page, async (t) => {
  // The README's picture of the overview, taken every run (npm run docs:console copies it to docs/).
  await page.goto(`${base}/console/#/overview`);
  await cellShows('letters', 'succeeded', '1');
  await cellShows('letters', 'dlq', '0'); // the redriven letter left its DLQ (depths are read every 2 s)
  await page.waitForFunction(() => document.querySelectorAll('section.card canvas').length >= 4);
  await page.evaluate(() => document.activeElement?.blur());
  const shot = await screenshot(page, 'overview');
  t.ok(shot.endsWith('overview.png'));
  if (process.env.EVENTBUS_UPDATE_DOCS === '1') {
    mkdirSync(join(ROOT, 'docs'), { recursive: true });
    copyFileSync(shot, join(ROOT, 'docs', 'console-overview.png'));
  }
});

t.test('without a token the console refuses other Host names and cross-site actions', async (t) => {
  const post = (headers: Record<string, string>, body = '{"all":true}') => fetch(`${base}/console/api/dlq/letters/redrive`, { method: 'POST', headers, body });
  // DNS rebinding: a name of the attacker's that resolves to 127.0.0.1.
  for (const path of ['/console/', '/console/assets/app.js', '/console/api/info', '/console/api/overview']) {
    t.equal(await statusWithHost(`${base}${path}`, 'evil.example'), 403, `${path} with Host evil.example`);
  }
  t.equal(await statusWithHost(`${base}/console/api/info`, 'evil.example:80'), 403, 'with a port');
  t.equal(await statusWithHost(`${base}/console/api/info`, 'localhost:1'), 200, 'localhost is loopback');
  t.equal(await statusWithHost(`${base}/console/api/info`, '[::1]:1'), 200, '::1 is loopback');
  t.equal((await post({ 'content-type': 'application/json', origin: 'http://evil.example' })).status, 403, 'another Origin');
  t.equal((await post({ 'content-type': 'application/json', 'sec-fetch-site': 'cross-site' })).status, 403, 'Sec-Fetch-Site cross-site');
  t.equal((await post({ 'content-type': 'text/plain' })).status, 415, 'a form-like body (no preflight) is refused');
  t.equal((await post({ 'content-type': 'application/json' }, '{"messageIds":[]}')).status, 400, 'a bad body is a 400');
  t.equal((await fetch(`${base}/console/api/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"type":"X"}' })).status, 404, 'no publish form outside npm start');
});
