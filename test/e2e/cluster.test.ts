// Cluster mode: children share the work and the caps, metrics aggregate, a killed child is replaced and nothing is lost.
import t from 'tap';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPublisher } from '../../dist/publisher/index.js';
import { emulator, uniqueName, waitFor } from '../helpers/emulator.js';
import { readLog, spawnNode, writeConfig, writeHandlers } from '../helpers/process.js';

const metricValue = (text: string, re: RegExp) => Number(re.exec(text)?.[1] ?? NaN);

t.test('two children: both take work, metrics add up, kill -9 of a child loses nothing', async (t) => {
  const emu = await emulator();
  t.teardown(() => emu.stop());
  const topic = uniqueName('topic');
  const logFile = join(mkdtempSync(join(tmpdir(), 'eventbus-log-')), 'handled.jsonl');
  const config = writeConfig({
    endpoint: emu.endpoint,
    region: 'us-east-1',
    topic,
    queuePrefix: `${uniqueName('c')}-`,
    provision: true,
    handlersDir: writeHandlers([{ queue: 'work', events: ['WORK'], visibilityTimeout: 2, concurrency: 4 }]),
    processes: 2,
    concurrency: 4,
    threads: 1,
    http: { host: '127.0.0.1', port: 0 },
    shutdownTimeoutMs: 5000,
  });
  const p = spawnNode('dist/supervisor/index.js', ['--config', config], { EVENTBUS_TEST_LOG: logFile });
  t.teardown(() => p.kill());
  const listening = await p.waitForOutput(/"port":\d+,"msg":"http listening"/, 30_000);
  const http = `http://127.0.0.1:${/"port":(\d+)/.exec(listening)![1]}`;
  await waitFor('two children running', () => (p.output().match(/"msg":"child running"/g) ?? []).length >= 2, 30_000);
  await waitFor('ready', async () => (await fetch(`${http}/readyz`)).status === 200, 15_000);
  const publisher = createPublisher({ sns: emu.sns, topic, source: 'test' });
  for (let i = 0; i < 4; i++) await publisher.publishBatch(Array.from({ length: 10 }, () => ({ type: 'WORK', data: { sleepMs: 200 } })));
  await waitFor('40 handled', () => readLog(logFile).filter((l) => l.kind === 'end').length >= 40, 30_000);
  const pids = new Set(readLog(logFile).filter((l) => l.kind === 'end').map((l) => l.pid));
  t.equal(pids.size, 2, 'both children took work');

  const metrics = await waitFor('aggregated metrics', async () => {
    const text = await (await fetch(`${http}/metrics`)).text();
    return metricValue(text, /eventbus_messages_deleted_total\{queue="work"\} (\d+)/) === 40 ? text : null;
  });
  t.equal(metricValue(metrics, /eventbus_handler_results_total\{queue="work",event_type="WORK",result="success"\} (\d+)/), 40, 'results add up over both children');
  t.equal(metricValue(metrics, /eventbus_messages_received_total\{queue="work"\} (\d+)/), 40);
  // Gauges that must not add up over the children (issue 20): ready is the minimum, build info one series of 1.
  t.equal(metricValue(metrics, /^eventbus_ready (\d+)$/m), 1, 'eventbus_ready 1 while the host is ready');
  const buildInfo = metrics.split('\n').filter((l) => l.startsWith('eventbus_build_info{'));
  t.equal(buildInfo.length, 1, 'one eventbus_build_info series');
  t.match(buildInfo[0], / 1$/, 'eventbus_build_info is 1, not the number of processes');

  // Kill one child while it holds messages: they come back after their 2 s visibility timeout.
  const r = await publisher.publishBatch(Array.from({ length: 12 }, () => ({ type: 'WORK', data: { sleepMs: 1500 } })));
  await waitFor('work running', () => readLog(logFile).filter((l) => l.kind === 'start').length >= 44, 15_000);
  const victim = readLog(logFile).filter((l) => l.kind === 'start').pop()!.pid!;
  process.kill(victim, 'SIGKILL');
  await p.waitForOutput(/"msg":"child died; restarting"/, 10_000);
  await waitFor('a third child running', () => (p.output().match(/"msg":"child running"/g) ?? []).length >= 3, 30_000);
  const ids = new Set(r.successful.map((s) => s.id));
  await waitFor(
    'all 12 handled',
    () => {
      const done = new Set(readLog(logFile).filter((l) => l.kind === 'end' && ids.has(l.id!)).map((l) => l.id));
      return done.size === 12;
    },
    40_000,
  );
  t.pass('every message was handled after the kill');
  const after = await (await fetch(`${http}/metrics`)).text();
  t.equal(metricValue(after, /eventbus_child_restarts_total (\d+)/), 1, 'the restart is counted');

  p.child.kill('SIGTERM');
  const exit = await p.exited;
  t.equal(exit.code, 0, 'the primary exits 0 after the children drained');
  t.match(p.output(), /"msg":"cluster stopped"/);
});
