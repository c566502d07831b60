// The saturation gauges' reader (src/supervisor/serve/slots.ts): slots per queue and the worker
// threads' event-loop utilization between two scrapes.
import t from 'tap';
import { slotReader } from '../../dist/supervisor/serve/slots.js';

t.test('the thread pool utilization is the mean per thread since the previous reading, within 0..1', async (t) => {
  const capacity = { capOf: () => 4, held: () => 1 } as unknown as Parameters<typeof slotReader>[1];
  let readings: Array<{ id: string; elu: { idle: number; active: number; utilization: number } }> = [];
  const read = slotReader(['q'], capacity, { threadReadings: () => readings });
  t.equal(read().poolUtilization, null, 'no thread yet');
  readings = [
    { id: '1', elu: { idle: 900, active: 100, utilization: 0.1 } },
    { id: '2', elu: { idle: 500, active: 500, utilization: 0.5 } },
  ];
  t.equal(read().poolUtilization, 0.3, 'first reading: each thread\'s whole life');
  readings = [
    { id: '1', elu: { idle: 900, active: 200, utilization: 0 } }, // +100 active, +0 idle: 1
    { id: '2', elu: { idle: 600, active: 500 - 6e-8, utilization: 0 } }, // idle, and a rounding error below zero
  ];
  t.equal(read().poolUtilization, 0.5, 'the deltas: 1 and 0 (clamped), averaged');
  t.same(read().queues, [{ queue: 'q', cap: 4, used: 1 }]);
});
