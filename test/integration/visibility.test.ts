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
