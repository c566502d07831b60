// eventbus_ready follows /readyz and eventbus_build_info names the version (issue 20), scraped from
// a running supervisor's /metrics.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { loadConfig } from '../../dist/config.js';
import { createLogger } from '../../dist/log.js';
import { Supervisor } from '../../dist/supervisor/supervisor.js';
import { BEHAVE, startBus, uniqueName, waitFor } from '../helpers/bus.js';
import { ROOT } from '../helpers/process.js';

const version = (JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { version: string }).version;

async function get(port: number, path: string): Promise<{ status: number; text: string }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`);
  return { status: res.status, text: await res.text() };
}

/** The value of one unlabelled series, or of the one whose labels are exactly `labels`. */
function sample(text: string, name: string, labels = ''): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name}${labels} `));
  return line === undefined ? undefined : Number(line.slice(line.lastIndexOf(' ') + 1));
}

t.test('eventbus_ready is 0 while /readyz is 503 (SQS not answering at start)', async (t) => {
  // A port nobody listens on: the supervisor retries its queue lookup and stays not ready, with HTTP up.
  const dead = createServer();
  await new Promise<void>((resolve) => dead.listen(0, '127.0.0.1', resolve));
  const deadPort = (dead.address() as { port: number }).port;
  await new Promise<void>((resolve) => dead.close(() => resolve()));
  const config = loadConfig({
    env: {},
    overrides: {
      endpoint: `http://127.0.0.1:${deadPort}`,
      region: 'us-east-1',
      topic: uniqueName('topic'),
      queuePrefix: `${uniqueName('q')}-`,
      http: { host: '127.0.0.1', port: 0 },
      threads: 1,
      concurrency: 2,
      logLevel: 'silent',
    },
  });
  const sup = new Supervisor({
    config,
    log: createLogger({ level: 'silent' }),
    aws: { endpoint: config.endpoint, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' } },
    handlers: [
      {
        file: BEHAVE,
        queue: 'q',
        queueName: `${config.queuePrefix}q`,
        dlqName: `${config.queuePrefix}q-dlq`,
        events: null,
        concurrency: 2,
        prefetch: 0,
        ordered: false,
        groupConcurrency: null,
        publishes: null,
        visibilityTimeoutSec: 30,
        timeoutMs: 60_000,
        maxReceiveCount: 5,
      },
    ],
  });
  const started = sup.start().catch(() => undefined);
  t.teardown(async () => {
    await sup.stop('test');
    await started;
  });
  const port = await waitFor('http port', () => sup.httpPort, 20_000);
  t.equal((await get(port, '/readyz')).status, 503, '/readyz: not ready');
  const m = await get(port, '/metrics');
  t.equal(sample(m.text, 'eventbus_ready'), 0, 'eventbus_ready 0');
  t.equal(sample(m.text, 'eventbus_build_info', `{version="${version}",node_version="${process.version}"}`), 1, 'build info while starting');
});

t.test('eventbus_ready is 1 once /readyz is 200; eventbus_build_info carries version and node_version', async (t) => {
  const bus = await startBus([{ queue: 'q', events: ['E'] }]);
  t.teardown(() => bus.stop());
  const port = bus.sup.httpPort!;
  await waitFor('ready', async () => (await get(port, '/readyz')).status === 200 || undefined, 20_000);
  const m = await get(port, '/metrics');
  t.match(m.text, /# TYPE eventbus_ready gauge/);
  t.equal(sample(m.text, 'eventbus_ready'), 1, 'eventbus_ready 1');
  t.match(m.text, /# TYPE eventbus_build_info gauge/);
  t.equal(sample(m.text, 'eventbus_build_info', `{version="${version}",node_version="${process.version}"}`), 1, 'one build_info series with both labels');
  t.equal(m.text.split('\n').filter((l) => l.startsWith('eventbus_build_info{')).length, 1, 'exactly one build_info series');
});

t.test('saturation gauges: a queue\'s slots, those held by running handlers, and how busy the threads were', async (t) => {
  const bus = await startBus(
    [
      { queue: 'slow', events: ['SLOW'], concurrency: 3 },
      { queue: 'spin', events: ['SPIN'], concurrency: 2 },
    ],
    { config: { concurrency: 8, threads: 2 } },
  );
  t.teardown(() => bus.stop());
  const port = bus.sup.httpPort!;
  await waitFor('ready', async () => (await get(port, '/readyz')).status === 200 || undefined, 20_000);
  const idle = (await get(port, '/metrics')).text;
  t.equal(sample(idle, 'eventbus_handler_slots', '{queue="slow"}'), 3, 'the queue\'s cap');
  t.equal(sample(idle, 'eventbus_handler_slots', '{queue="spin"}'), 2);
  // Idle, a queue's long poll holds the slot it receives into (0 between two polls).
  t.ok(sample(idle, 'eventbus_handler_slots_used', '{queue="slow"}')! <= 1, 'nothing running: at most the long poll\'s slot');
  const u0 = sample(idle, 'eventbus_thread_pool_utilization')!;
  t.ok(u0 >= 0 && u0 <= 1, `utilization in [0, 1] (${u0})`);

  // Five 3 s handlers on a cap of 3: three hold slots, two wait in SQS or prefetch (not in the slots).
  for (let i = 0; i < 5; i++) await bus.publisher.createEvent('SLOW', { sleepMs: 3_000 });
  const busy = await waitFor('3 slots used', async () => {
    const text = (await get(port, '/metrics')).text;
    return sample(text, 'eventbus_handler_slots_used', '{queue="slow"}') === 3 ? text : undefined;
  });
  t.equal(sample(busy, 'eventbus_handler_slots', '{queue="slow"}'), 3, 'never above the cap');

  // Handlers that spin (CPU) for 1.5 s on both threads: the threads' loops are busy since the last scrape.
  await get(port, '/metrics'); // a fresh window
  for (let i = 0; i < 2; i++) await bus.publisher.createEvent('SPIN', { spinMs: 1_500 });
  await waitFor('both spins ended', () => bus.seen.filter((s) => (s as { kind?: string; type?: string }).kind === 'end' && (s as { type?: string }).type === 'SPIN').length >= 2 || undefined, 20_000);
  const u = sample((await get(port, '/metrics')).text, 'eventbus_thread_pool_utilization')!;
  t.ok(u > 0.2 && u <= 1, `the threads were busy while the handlers spun (${u.toFixed(2)})`);
});
