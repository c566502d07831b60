import t from 'tap';
import { LoadModel, PREFETCH_FROM_MS } from '../../dist/supervisor/run/load-model.js';

const model = () => new LoadModel({ notStarted: () => false, belowSettlingBound: () => true });

t.test('prefetch: before the first outcome, and while handlers hold their slot a while; not for handlers faster than that', async (t) => {
  const m = model();
  t.ok(m.prefetches('q'), 'unknown handlers: prefetch (a first batch of slow handlers must not wait a round trip)');
  m.started('q', 3);
  for (let i = 0; i < 3; i++) m.finished('q', 0.05);
  t.notOk(m.prefetches('q'), 'noop-fast handlers free their slot before a receive could return: no prefetch');
  for (let i = 0; i < 40; i++) {
    m.started('q', 1);
    m.finished('q', 20);
  }
  t.ok(m.prefetches('q'), `handlers of 20 ms (mean >= ${PREFETCH_FROM_MS} ms): prefetch`);
  t.ok(m.prefetches('other'), 'per queue');
});
