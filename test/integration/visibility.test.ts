// A handler running 3x longer than its visibility timeout is never delivered twice: the supervisor extends.
import t from 'tap';
import { startBus, waitFor } from '../helpers/bus.js';

t.test('visibility is extended while the handler runs', async (t) => {
  const bus = await startBus([{ queue: 'slow', events: ['SLOW'], visibilityTimeoutSec: 1 }]);
  t.teardown(() => bus.stop());
  await bus.publisher.createEvent('SLOW', { sleepMs: 3500 });
  await bus.publisher.createEvent('SLOW', { sleepMs: 3500 });
  await waitFor('both done', () => bus.ended('slow').length === 2, 15_000);
  // Another receive would show up as a second start; give SQS time to hand it out.
  await new Promise((r) => setTimeout(r, 2000));
  t.equal(bus.started('slow').length, 2, 'each message started once');
  const ext = await bus.sup.metrics.registry.getSingleMetricAsString('eventbus_visibility_extensions_total');
  const n = Number(/queue="slow"\} (\d+)/.exec(ext)?.[1] ?? 0);
  t.ok(n >= 8, `extended several times (${n})`);
  const d = await bus.depth('slow');
  t.same(d, { visible: 0, inFlight: 0 }, 'both deleted');
});

t.test('prefetched messages waiting past their visibility timeout are extended, not delivered again', async (t) => {
  // Two slots, two prefetch slots: two messages wait a 2.5 s handler run behind a 1 s visibility timeout.
  const bus = await startBus([{ queue: 'wait', events: ['WAIT'], visibilityTimeoutSec: 1, concurrency: 2, prefetch: 2 }], { config: { concurrency: 2 } });
  t.teardown(() => bus.stop());
  await bus.publisher.publishBatch(Array.from({ length: 4 }, () => ({ type: 'WAIT', data: { sleepMs: 2500 } })));
  await waitFor('all four received (two running, two prefetched)', async () => (await bus.depth('wait')).inFlight === 4 && bus.started('wait').length === 2, 10_000);
  await waitFor('all done', () => bus.ended('wait').length === 4, 20_000);
  await new Promise((r) => setTimeout(r, 1500));
  const ids = bus.started('wait').map((s) => s.id);
  t.equal(ids.length, 4, 'each message started once');
  t.equal(new Set(ids).size, 4, 'no message started twice');
  const ext = await bus.sup.metrics.registry.getSingleMetricAsString('eventbus_visibility_extensions_total');
  t.ok(Number(/queue="wait"\} (\d+)/.exec(ext)?.[1] ?? 0) >= 4, 'the waiting messages were extended');
  t.same(await bus.depth('wait'), { visible: 0, inFlight: 0 }, 'all deleted');
});
