// A real Prometheus scrapes a running supervisor: the counts it stores are the events handled, the
// target is up, and metrics/alerts.yml loads and evaluates cleanly against the real metrics.
import t from 'tap';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startBus, waitFor } from '../helpers/bus.js';
import { freePort } from '../helpers/ports.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ALERTS = join(ROOT, 'metrics', 'alerts.yml');
const N = 20;

function findBinary(name: string): string | null {
  for (const dir of [...(process.env.PATH ?? '').split(delimiter), '/usr/bin', '/usr/local/bin']) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  return null;
}

const prometheus = findBinary('prometheus');
const skip = !prometheus && !process.env.CI ? 'prometheus is not installed (apt-get install prometheus); CI runs this' : false;

interface Prom {
  child: ChildProcess;
  base: string;
  output(): string;
  stop(): Promise<void>;
}

/** Starts Prometheus on 127.0.0.1 scraping `target` every second as job "eventbus", with alerts.yml loaded. */
async function startPrometheus(bin: string, target: string): Promise<Prom> {
  const dir = mkdtempSync(join(tmpdir(), 'eventbus-prom-'));
  const config = join(dir, 'prometheus.yml');
  writeFileSync(
    config,
    [
      'global:',
      '  scrape_interval: 1s',
      '  scrape_timeout: 1s',
      '  evaluation_interval: 1s',
      'rule_files:',
      `  - ${JSON.stringify(ALERTS)}`,
      'scrape_configs:',
      '  - job_name: eventbus',
      '    static_configs:',
      `      - targets: [${JSON.stringify(target)}]`,
      '',
    ].join('\n'),
  );
  const port = await freePort();
  const child = spawn(
    bin,
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '', HOME: dir } },
  );
  let out = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  let stopping: Promise<void> | undefined;
  return {
    child,
    base: `http://127.0.0.1:${port}`,
    output: () => out,
    stop() {
      stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
          await exited;
          clearTimeout(timer);
        }
        rmSync(dir, { recursive: true, force: true });
      })();
      return stopping;
    },
  };
}

async function getJson<T>(url: string): Promise<T | null> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    if (!res.ok) return null;
    return (await res.json()) as T;
  } catch {
    return null;
  }
}

interface QueryResult {
  status: string;
  data: { resultType: string; result: Array<{ metric: Record<string, string>; value: [number, string] }> };
}

async function query(prom: Prom, q: string): Promise<QueryResult['data']['result'] | null> {
  const r = await getJson<QueryResult>(`${prom.base}/api/v1/query?query=${encodeURIComponent(q)}`);
  return r?.status === 'success' ? r.data.result : null;
}

t.test('Prometheus scrapes the supervisor and sees every handled event', { skip }, async (t) => {
  if (!prometheus) return t.fail('prometheus is required in CI: apt-get install -y --no-install-recommends prometheus');

  const bus = await startBus([{ queue: 'scraped' }]);
  t.teardown(() => bus.stop());
  const port = bus.sup.httpPort;
  t.ok(port, 'the supervisor serves HTTP');

  const r = await bus.publisher.publishBatch(Array.from({ length: N }, (_, i) => ({ type: 'USER_CREATED', data: { n: i } })));
  t.equal(r.failed.length, 0, 'all events published');
  await waitFor(`${N} events handled`, () => bus.ended('scraped').length >= N, 30_000);

  const prom = await startPrometheus(prometheus, `127.0.0.1:${port}`);
  t.teardown(() => prom.stop());
  const exitedEarly = () => prom.child.exitCode !== null || prom.child.signalCode !== null;

  await waitFor(
    'Prometheus to be ready',
    async () => {
      if (exitedEarly()) throw new Error(`prometheus exited: ${prom.output()}`);
      try {
        const res = await fetch(`${prom.base}/-/ready`, { signal: AbortSignal.timeout(2_000) });
        return res.ok;
      } catch {
        return false;
      }
    },
    60_000,
    200,
  );

  const successQuery = 'sum(eventbus_handler_results_total{result="success"})';
  let seen = '';
  await waitFor(
    `Prometheus to report ${N} successes`,
    async () => {
      if (exitedEarly()) throw new Error(`prometheus exited: ${prom.output()}`);
      const res = await query(prom, successQuery);
      seen = res?.[0]?.value[1] ?? '';
      return seen === String(N);
    },
    30_000,
    250,
  ).catch((err: Error) => {
    throw new Error(`${err.message} (last value: ${seen || 'none'}; prometheus output: ${prom.output()})`);
  });
  t.equal(seen, String(N), `${successQuery} = ${N}`);

  const received = await query(prom, 'sum by (queue) (eventbus_messages_received_total{job="eventbus"})');
  t.same(received?.map((s) => [s.metric.queue, s.value[1]]), [['scraped', String(N)]], 'received per queue, labelled with the logical name');
  const up = await query(prom, 'up{job="eventbus"}');
  t.same(up?.map((s) => [s.metric.instance, s.value[1]]), [[`127.0.0.1:${port}`, '1']], 'the target is up');

  // The alert rules load, evaluate against the real series without errors, and none fires.
  // (Before the first scrape, absent(up{job="eventbus"}) is briefly pending: wait for it to clear.)
  interface Rules {
    status: string;
    data: { groups: Array<{ name: string; rules: Array<{ name: string; health: string; lastError?: string; state: string; lastEvaluation: string }> }> };
  }
  let rules: Rules['data']['groups'][number]['rules'] = [];
  await waitFor(
    'the alert rules to be evaluated, all inactive',
    async () => {
      const r = await getJson<Rules>(`${prom.base}/api/v1/rules`);
      rules = r?.data.groups.find((g) => g.name === 'eventbus')?.rules ?? [];
      return rules.length > 0 && rules.every((x) => !x.lastEvaluation.startsWith('0001-') && x.health === 'ok' && x.state === 'inactive');
    },
    20_000,
    250,
  ).catch(() => undefined); // the assertions below say what is wrong
  t.same(rules.map((r) => r.name).sort(), ['EventbusBacklogAgeGrowing', 'EventbusDLQNotEmpty', 'EventbusHandlerErrorRatio', 'EventbusNotReady', 'EventbusSQSErrors']);
  for (const r of rules) {
    t.equal(r.health, 'ok', `${r.name} evaluates without error${r.lastError ? `: ${r.lastError}` : ''}`);
    t.equal(r.state, 'inactive', `${r.name} does not fire on a healthy bus`);
  }
});
