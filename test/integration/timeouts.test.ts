// Timeouts abort the handler's signal; a handler that never yields has its thread replaced; a dying thread is `crashed`.
import t from 'tap';
import { startBus, waitFor } from '../helpers/bus.js';

const results = async (bus: Awaited<ReturnType<typeof startBus>>) => bus.sup.metrics.registry.getSingleMetricAsString('eventbus_handler_results_total');

t.test('a handler past timeoutMs sees its signal abort and the result is timeout; the thread stays', async (t) => {
  const bus = await startBus([{ queue: 'q', events: ['T'], timeoutMs: 300, maxReceiveCount: 1 }], { config: { retry: { baseDelaySec: 30, maxDelaySec: 30 } } });
  t.teardown(() => bus.stop());
  await waitFor('both threads set up', () => bus.seen.filter((s) => s.kind === 'setup').length >= 2);
  await bus.publisher.createEvent('T', { sleepMs: 10_000 }); // honours the signal: rejects at 300 ms
  await waitFor('a timeout', async () => /result="timeout"\} 1/.test(await results(bus)), 15_000);
  t.equal(bus.ended('q').length, 0, 'the handler did not finish');
  await new Promise((r) => setTimeout(r, 500));
  t.equal(new Set(bus.seen.filter((s) => s.kind === 'setup').map((s) => s.thread)).size, 2, 'no thread was replaced');
});

t.test('a handler that ignores its aborted signal has its thread ended after the grace', async (t) => {
  const bus = await startBus([{ queue: 'q', events: ['T'], timeoutMs: 300, maxReceiveCount: 1 }], { config: { retry: { baseDelaySec: 30, maxDelaySec: 30 } } });
  t.teardown(() => bus.stop());
  await waitFor('both threads set up', () => bus.seen.filter((s) => s.kind === 'setup').length >= 2);
  await bus.publisher.createEvent('T', { ignoreSignalMs: 10_000 });
  await waitFor('a timeout', async () => /result="timeout"\} 1/.test(await results(bus)), 15_000);
  await waitFor('a replacement thread', () => new Set(bus.seen.filter((s) => s.kind === 'setup').map((s) => s.thread)).size === 3, 10_000);
  t.equal(bus.ended('q').length, 0, 'the abandoned handler never finished: its thread is gone');
});

t.test('a handler that never yields has its thread replaced; other work goes on', async (t) => {
  const bus = await startBus(
    [
      { queue: 'spin', events: ['SPIN'], timeoutMs: 300, maxReceiveCount: 1 },
      { queue: 'ok', events: ['OK'] },
    ],
    { config: { threads: 2, tasksPerThread: 2, concurrency: 4, retry: { baseDelaySec: 30, maxDelaySec: 30 } } },
  );
  t.teardown(() => bus.stop());
  await waitFor('both threads set up', () => bus.seen.filter((s) => s.kind === 'setup').length >= 2);
  const original = new Set(bus.seen.filter((s) => s.kind === 'setup').map((s) => s.thread));
  await bus.publisher.createEvent('SPIN', { spinMs: 60_000 });
  await waitFor('the spinning handler to start', () => bus.started('spin').length === 1, 10_000);
  const spinThread = bus.started('spin')[0]!.thread;
  await waitFor('its timeout', async () => /queue="spin",event_type="SPIN",result="timeout"\} 1/.test(await results(bus)), 15_000);
  // The pool is whole again: messages keep flowing on a new thread.
  await bus.publisher.publishBatch(Array.from({ length: 6 }, () => ({ type: 'OK', data: {} })));
  await waitFor('ok messages handled', () => bus.ended('ok').length === 6, 15_000);
  const threads = new Set(bus.ended('ok').map((s) => s.thread));
  t.notOk(threads.has(spinThread), 'the spinning thread is gone');
  await waitFor('a new thread set up', () => bus.seen.some((s) => s.kind === 'setup' && !original.has(s.thread)), 10_000);
  t.pass('a replacement thread loaded the handlers and ran setup');
});

t.test('process.exit inside a handler is `crashed`, retried, and the pool recovers', async (t) => {
  const bus = await startBus([{ queue: 'q', events: ['X'], maxReceiveCount: 3 }], { config: { threads: 1, tasksPerThread: 4, concurrency: 4, retry: { baseDelaySec: 1, maxDelaySec: 1 } } });
  t.teardown(() => bus.stop());
  await bus.publisher.createEvent('X', { fail: 'exit', failTimes: 1 });
  await waitFor('handled on the second receive', () => bus.ended('q').length === 1, 20_000);
  t.same(
    bus.started('q').map((s) => s.receiveCount),
    [1, 2],
  );
  t.match(await results(bus), /result="crashed"\} 1/);
});
