// A receive's messages run as one pool task, but each settles on its own: a slow message does not
// hold its finished neighbours (their slots, their deletes).
import t from 'tap';
import { startBus, waitFor } from '../helpers/bus.js';

t.test('finished messages of a batch are deleted while a slow one of the same batch still runs', async (t) => {
  // Expected: the fast messages are deleted and their slots reused while the slow ones run.
  // Broke (would break): outcomes returned only with the whole task, so 9 messages waited for the 10th.
  const bus = await startBus([{ queue: 'q', events: ['MIX'], concurrency: 10 }], { config: { concurrency: 10, threads: 1, tasksPerThread: 10 } });
  t.teardown(() => bus.stop());
  const events = Array.from({ length: 20 }, (_, i) => ({ type: 'MIX', data: { sleepMs: i < 2 ? 6_000 : 50 } }));
  await bus.publisher.publishBatch(events.slice(0, 10));
  await bus.publisher.publishBatch(events.slice(10));
  await waitFor('18 fast ones handled', () => bus.ended('q').filter((s) => s.data && (s.data as { sleepMs: number }).sleepMs === 50).length === 18, 5_000);
  t.equal(bus.running('q'), 2, 'the two slow ones still run');
  await waitFor('fast ones deleted', async () => (await bus.depth('q')).inFlight === 2, 3_000);
  t.same(await bus.depth('q'), { visible: 0, inFlight: 2 }, 'only the slow messages are still in flight');
  await waitFor('all handled', () => bus.ended('q').length === 20, 20_000);
  t.equal(bus.started('q').length, 20, 'each started once');
});
