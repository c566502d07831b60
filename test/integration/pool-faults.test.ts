// Regressions found by the fault suite (test/faults) in the thread pool.
import t from 'tap';
import { startBus, waitFor } from '../helpers/bus.js';

const results = async (bus: Awaited<ReturnType<typeof startBus>>) => bus.sup.metrics.registry.getSingleMetricAsString('eventbus_handler_results_total');

t.test('tasks queued on a thread that is ended run on its replacement without spending a receive', async (t) => {
  // Expected: messages that never reached the dying thread succeed on their first receive.
  // Broke: they came back `crashed` and were retried through SQS, so a poison neighbour could push innocent messages into the DLQ.
  const bus = await startBus([{ queue: 'q', events: ['SPIN', 'OK'], timeoutMs: 300, maxReceiveCount: 1 }], {
    config: { threads: 1, tasksPerThread: 4, concurrency: 4, retry: { baseDelaySec: 30, maxDelaySec: 30 } },
  });
  t.teardown(() => bus.stop());
  await bus.publisher.createEvent('SPIN', { spinMs: 60_000 });
  await waitFor('the spinning handler to start', () => bus.started('q').length === 1, 10_000);
  // The only thread is blocked: these are posted to it and wait.
  await bus.publisher.publishBatch(Array.from({ length: 3 }, () => ({ type: 'OK', data: {} })));
  await waitFor('the three handled', () => bus.ended('q').length === 3, 20_000);
  t.same(
    bus.ended('q').map((s) => s.receiveCount),
    [1, 1, 1],
    'each on its first receive',
  );
  const text = await results(bus);
  t.match(text, /event_type="SPIN",result="timeout"\} 1/);
  t.notMatch(text, /event_type="OK",result="crashed"/, 'none of them crashed');
});

t.test('a body nested too deeply for structured clone is an error of its handler, not a dead thread', async (t) => {
  // Expected: result `error` (the fixture handler cannot post it back), the message goes to the DLQ, the pool is untouched.
  // Broke: it was reported as `crashed: worker thread died: Maximum call stack size exceeded`.
  // (Bodies now cross to the thread as strings and are decoded there, so the handler does see it.)
  const bus = await startBus([{ queue: 'q', maxReceiveCount: 1 }], { config: { retry: { baseDelaySec: 1, maxDelaySec: 1 } } });
  t.teardown(() => bus.stop());
  await bus.sendRaw('q', '['.repeat(20_000) + ']'.repeat(20_000));
  await waitFor('an error', async () => /result="error"\} 1/.test(await results(bus)), 15_000);
  t.notMatch(await results(bus), /result="crashed"/);
  const dlq = await waitFor('the message in the DLQ', async () => {
    const m = await bus.receiveAll('q', true);
    return m.length ? m : null;
  }, 15_000);
  t.equal(dlq.length, 1);
  await bus.publisher.createEvent('AFTER', {});
  await waitFor('the pool still works', () => bus.ended('q').length === 1, 10_000);
});
