// Issue 17: kill -9 of a supervisor running an ordered handler, then a restart. Expected: nothing lost
// (every event handled), and per group the handler never starts a message before an earlier one of
// its group: a message that ran before the kill may run again after it (at-least-once), but never
// after a later message of its group. Counted from the records the handler writes, in both processes.
import t from 'tap';
import { loadHandlers } from '../../dist/handlers.js';
import { provision } from '../../dist/publisher/provision.js';
import { createPublisher } from '../../dist/publisher/index.js';
import { emulator, uniqueName, waitFor } from '../helpers/emulator.js';
import { spawnNode, writeConfig, writeHandlers } from '../helpers/process.js';
import { readHandlerLog, tempFile } from '../helpers/faults.js';

const VISIBILITY_SEC = 3;
const GROUPS = ['A', 'B', 'C', 'D', 'E'];
const PER_GROUP = 30;

t.test('kill -9 during an ordered run: nothing lost, order per group kept after the restart', async (t) => {
  const emu = await emulator();
  t.teardown(() => emu.stop());
  const prefix = `${uniqueName('o')}-`;
  const topic = uniqueName('topic');
  const handlersDir = writeHandlers([{ queue: 'ordered', events: ['ORD'], ordered: true, visibilityTimeout: VISIBILITY_SEC, maxReceiveCount: 1000 }]);
  const handlers = await loadHandlers({ handlersDir, queuePrefix: prefix, concurrency: 10, queues: {} });
  const r = await provision(emu, { topic, handlers });
  const publisher = createPublisher({ sns: emu.sns, topic: r.topicArn, fifoTopic: r.fifoTopicArn, source: 'crash' });
  const entries = [];
  for (let n = 0; n < PER_GROUP; n++) for (const g of GROUPS) entries.push({ type: 'ORD', data: { g, n, sleepMs: 20 + Math.floor(Math.random() * 20) }, groupId: g });
  const out = await publisher.publishBatch(entries);
  t.equal(out.failed.length, 0, 'published');
  const ids = new Set(out.successful.map((s) => s.id));

  const logFile = tempFile('ordered.jsonl');
  const config = writeConfig({
    endpoint: emu.endpoint,
    region: 'us-east-1',
    topic: r.topicArn,
    fifoTopic: r.fifoTopicArn,
    queuePrefix: prefix,
    provision: false,
    handlersDir,
    http: { host: '127.0.0.1', port: 0 },
    concurrency: 10,
    threads: 2,
    logLevel: 'info',
    shutdownTimeoutMs: 5_000,
  });
  const handled = () => new Set(readHandlerLog(logFile).filter((l) => l.kind === 'end').map((l) => l.id));
  const first = spawnNode('dist/supervisor/index.js', ['--config', config], { EVENTBUS_TEST_LOG: logFile });
  t.teardown(() => first.kill());
  await first.waitForOutput(/"msg":"supervisor running"/, 60_000);
  // In the middle of the work, by messages handled (not by time: how fast it drains is not an input).
  const target = 40 + Math.floor(Math.random() * 40);
  await waitFor(`${target} handled`, () => handled().size >= target, 30_000, 10);
  first.child.kill('SIGKILL');
  await first.exited;
  const handledAtKill = handled().size;
  t.ok(handledAtKill < ids.size, `killed mid-run (${handledAtKill} of ${ids.size} handled)`);

  const second = spawnNode('dist/supervisor/index.js', ['--config', config], { EVENTBUS_TEST_LOG: logFile });
  t.teardown(() => second.kill());
  await second.waitForOutput(/"msg":"supervisor running"/, 60_000);
  // What the kill left in flight comes back after its visibility timeout, and holds its group until then.
  await waitFor('every event handled', () => handled().size >= ids.size, 45_000, 100);
  second.child.kill('SIGTERM');
  t.equal((await second.exited).code, 0, 'the restarted supervisor exits 0 on SIGTERM');

  const records = readHandlerLog(logFile);
  t.same([...ids].filter((id) => !handled().has(id)), [], 'nothing lost');
  const pids = new Set(records.filter((l) => l.kind === 'start').map((l) => l.pid));
  t.equal(pids.size, 2, 'both processes handled messages');
  for (const g of GROUPS) {
    const starts = records.filter((l) => l.kind === 'start' && l.data.g === g).map((l) => l.data.n as number);
    const backwards = starts.findIndex((n, i) => i > 0 && n < starts[i - 1]!);
    t.equal(backwards, -1, `group ${g}: no message started after a later one of its group (${starts.join(',')})`);
    t.same([...new Set(starts)], Array.from({ length: PER_GROUP }, (_, i) => i), `group ${g}: every message ran`);
  }
});
