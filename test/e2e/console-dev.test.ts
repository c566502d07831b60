// `npm start` (`eventbus dev`) turns the console on, prints its URL, and lets the page publish a
// test event. --http-port 0 picks a free port (it was ignored: the console sat on 9464 regardless).
import t from 'tap';
import { freePort } from '../helpers/ports.js';
import { spawnNode } from '../helpers/process.js';
import { waitFor } from '../helpers/emulator.js';

t.test('eventbus dev: the console is on, in the banner, and publishes a test event', async (t) => {
  const port = await freePort();
  const dev = spawnNode('bin/eventbus.js', ['dev', '--port', String(port), '--http-port', '0'], { EVENTBUS_LOG_FORMAT: 'json' });
  t.teardown(async () => {
    dev.child.kill('SIGTERM');
    const timer = setTimeout(() => dev.kill(), 15_000);
    await dev.exited;
    clearTimeout(timer);
  });
  const line = await dev.waitForOutput(/console http:\/\/127\.0\.0\.1:\d+\/console /, 60_000);
  const base = /http:\/\/127\.0\.0\.1:\d+\/console/.exec(line)![0];
  t.not(new URL(base).port, '9464', '--http-port 0 took a free port');
  const api = `${base}/api`;
  const info = (await (await fetch(`${api}/info`)).json()) as { publish: boolean; archive: boolean; live: boolean; queues: Array<{ queue: string; events: string[] | null }> };
  t.match(info, { publish: true, archive: true, live: true, tokenRequired: false });
  t.same(info.queues.map((q) => q.queue).sort(), ['archive', 'billing', 'email']);
  const r = await fetch(`${api}/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ type: 'USER_CREATED', data: { email: 'ada@example.com' } }) });
  t.equal(r.status, 200);
  const { published } = (await r.json()) as { published: { id: string } };
  // The email handler ran it, and the archive has it.
  await waitFor('the event archived', async () => (await fetch(`${api}/events/${published.id}`)).status === 200, 20_000);
  await waitFor(
    'email succeeded once',
    async () => ((await (await fetch(`${api}/overview`)).json()) as { queues: Array<{ queue: string; succeeded: number }> }).queues.find((q) => q.queue === 'email')?.succeeded === 1,
    20_000,
  );
  const bad = await fetch(`${api}/publish`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ type: 'not a type!' }) });
  t.equal(bad.status, 400);
});
