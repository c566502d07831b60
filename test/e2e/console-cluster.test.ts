// The console of a cluster (processes > 1, issue 16): the primary serves it with the children's
// metrics aggregated and their failures forwarded over IPC; its dead letters work as without one.
import t from 'tap';
import { createPublisher } from '../../dist/publisher/index.js';
import { emulator, uniqueName, waitFor } from '../helpers/emulator.js';
import { startSupervisorProcess, writeConfig, writeHandlers } from '../helpers/process.js';

interface Failure {
  eventId: string;
  queue: string;
  result: string;
  stack: string | null;
  child?: number;
}

t.test('the primary serves the console for its children', async (t) => {
  const emu = await emulator();
  t.teardown(() => emu.stop());
  const topic = uniqueName('topic');
  const config = writeConfig({
    endpoint: emu.endpoint,
    region: 'us-east-1',
    topic,
    queuePrefix: `${uniqueName('cc')}-`,
    provision: true,
    handlersDir: writeHandlers([{ queue: 'work', events: ['WORK'], concurrency: 4 }]),
    processes: 2,
    concurrency: 4,
    threads: 1,
    http: { host: '127.0.0.1', port: 0 },
    console: { enabled: true },
    failureEvents: { enabled: false },
    shutdownTimeoutMs: 5000,
  });
  const { sup: p, base } = await startSupervisorProcess(t, config, {}, 30_000);
  const api = `${base}/console/api`;
  await waitFor('two children running', () => (p.output().match(/"msg":"child running"/g) ?? []).length >= 2, 30_000);
  const get = async <T>(path: string): Promise<T> => (await (await fetch(`${api}/${path}`)).json()) as T;

  const info = await get<{ role: string; processes: number; queues: Array<{ queue: string; cap: number }> }>('info');
  t.match(info, { role: 'cluster primary', processes: 2, queues: [{ queue: 'work', cap: 4 }] });

  const publisher = createPublisher({ sns: emu.sns, topic, source: 'test' });
  await publisher.publishBatch(Array.from({ length: 6 }, (_, i) => ({ type: 'WORK', data: { i } })));
  const boom = await publisher.createEvent('WORK', { fail: 'throw', message: 'cluster boom', failTimes: 1 });
  const rejected = await publisher.createEvent('WORK', { fail: 'reject', message: 'no way' });
  // The children's counters, added up by the primary.
  await waitFor(
    'the overview counts every child',
    async () => {
      const o = await get<{ queues: Array<{ queue: string; received: number; succeeded: number; failed: number }> }>('overview');
      const w = o.queues.find((q) => q.queue === 'work');
      return w && w.succeeded >= 7 && w.failed >= 2 && w.received >= 9;
    },
    20_000,
  );
  // Failures, forwarded from the child they happened in.
  const failures = await waitFor(
    'both failures forwarded',
    async () => {
      const f = (await get<{ failures: Failure[] }>('failures?queue=work')).failures;
      return f.some((x) => x.eventId === boom.id) && f.some((x) => x.eventId === rejected.id) ? f : null;
    },
    20_000,
  );
  const thrown = failures.find((f) => f.eventId === boom.id)!;
  t.equal(thrown.result, 'error');
  t.match(thrown.stack, /^Error: cluster boom\n\s+at .*behave\.mjs:\d+/);
  t.ok(thrown.child === 0 || thrown.child === 1, `from child ${thrown.child}`);
  // Dead letters through the primary's own SQS client.
  const dlq = await waitFor(
    'the rejected event in the DLQ',
    async () => {
      const d = await get<{ messages: Array<{ messageId: string; event: { id: string }; deadLetterReason: string }> }>('dlq/work/messages');
      return d.messages.find((m) => m.event.id === rejected.id);
    },
    20_000,
  );
  t.match(dlq.deadLetterReason, /^rejected: NonRetryableError: no way/);
  const r = await fetch(`${api}/dlq/work/redrive`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ messageIds: [dlq.messageId] }) });
  t.equal(r.status, 200);
  t.match(await r.json(), { moved: 1, failed: 0, movedIds: [dlq.messageId] });
});
