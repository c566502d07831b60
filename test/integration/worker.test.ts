// The worker loads handlers once per thread, runs setup once and teardown at shutdown; ctx.publish ids are deterministic.
import t from 'tap';
import { derivedEventId } from '../../dist/event/index.js';
import { startBus, waitFor } from '../helpers/bus.js';

t.test('setup once per thread, teardown at stop', async (t) => {
  const bus = await startBus([{ queue: 'q', events: ['E'] }], { config: { threads: 2, tasksPerThread: 5, concurrency: 10 } });
  await bus.publisher.publishBatch(Array.from({ length: 20 }, () => ({ type: 'E', data: { sleepMs: 20 } })));
  await waitFor('all handled', () => bus.ended('q').length === 20, 15_000);
  const setups = bus.seen.filter((s) => s.kind === 'setup').map((s) => s.thread);
  t.equal(new Set(setups).size, 2, 'setup ran on both threads');
  t.equal(setups.length, 2, 'and once on each');
  const setupThreads = new Set(setups);
  t.ok(bus.ended('q').every((s) => setupThreads.has(s.thread)), 'every message ran on a thread that had run setup');
  await bus.stop();
  await waitFor('teardown', () => bus.seen.filter((s) => s.kind === 'teardown').length === 2, 5_000);
  t.pass('teardown ran on both threads');
});

t.test('ctx.publish: events published from a handler get ids derived from the trigger', async (t) => {
  const bus = await startBus(
    [
      { queue: 'first', events: ['START'] },
      { queue: 'second', events: ['NEXT'] },
    ],
    { config: { retry: { baseDelaySec: 1, maxDelaySec: 1 } } },
  );
  t.teardown(() => bus.stop());
  // Fails once after publishing: the retry publishes again with the same ids.
  const start = await bus.publisher.createEvent('START', { publish: [{ type: 'NEXT', data: { i: 0 } }, { type: 'NEXT', data: { i: 1 } }], fail: 'false', failTimes: 1 });
  await waitFor('four NEXT deliveries', () => bus.ended('second').length === 4, 20_000);
  const ids = bus.ended('second').map((s) => s.id);
  const expected = [derivedEventId(start.id, 'first', 0), derivedEventId(start.id, 'first', 1)];
  t.same([...new Set(ids)].sort(), [...expected].sort(), 'two distinct ids, each published twice');
});
