// Concurrency caps hold inside the handlers; nothing is received without a free slot; a quiet queue is not starved.
import t from 'tap';
import { startBus, waitFor, type HandlerSpec } from '../helpers/bus.js';
import { emulator } from '../helpers/emulator.js';
import { countingProxy } from '../helpers/proxy.js';

/** A supervisor whose SQS calls go through a counting proxy (the test's own calls do not). */
async function busBehindProxy(t: { teardown(fn: () => unknown): void }, handler: HandlerSpec, config: Record<string, unknown>) {
  const emu = await emulator();
  const proxy = await countingProxy(emu.endpoint);
  const bus = await startBus([handler], { emu, supervisorEndpoint: proxy.endpoint, config });
  t.teardown(async () => {
    await bus.stop();
    await proxy.close();
    await emu.stop();
  });
  return { bus, proxy };
}

t.test('per-queue and global caps are never exceeded, and are reached', async (t) => {
  const bus = await startBus(
    [
      { queue: 'a', events: ['A'], concurrency: 3 },
      { queue: 'b', events: ['B'], concurrency: 4 },
    ],
    { config: { concurrency: 5, threads: 2, tasksPerThread: 5 } },
  );
  t.teardown(() => bus.stop());
  const batch = (type: string) => Array.from({ length: 30 }, () => ({ type, data: { sleepMs: 80 } }));
  await Promise.all([bus.publisher.publishBatch(batch('A')), bus.publisher.publishBatch(batch('B'))]);
  await waitFor('all handled', () => bus.ended('a').length === 30 && bus.ended('b').length === 30, 30_000);
  t.ok(bus.peak('a') <= 3, `queue a peak ${bus.peak('a')} <= 3`);
  t.ok(bus.peak('b') <= 4, `queue b peak ${bus.peak('b')} <= 4`);
  t.ok(bus.peak() <= 5, `global peak ${bus.peak()} <= 5`);
  t.equal(bus.peak(), 5, 'the global cap is reached under load');
  t.equal(bus.peak('a'), 3, 'queue a reaches its cap');
});

t.test('prefetch 0: no message is received while no slot is free', async (t) => {
  const bus = await startBus([{ queue: 'q', events: ['HOLD'], concurrency: 2 }], { config: { concurrency: 2, prefetch: 0 } });
  t.teardown(() => bus.stop());
  await bus.publisher.publishBatch(Array.from({ length: 10 }, () => ({ type: 'HOLD', data: { sleepMs: 1500 } })));
  await waitFor('two handlers running', () => bus.running('q') === 2, 10_000);
  await new Promise((r) => setTimeout(r, 500));
  const d = await bus.depth('q');
  t.same(d, { visible: 8, inFlight: 2 }, 'only the two running messages are received');
  t.equal(bus.started('q').length, 2);
  await waitFor('all done', () => bus.ended('q').length === 10, 30_000);
  t.equal(bus.peak('q'), 2);
});

t.test('prefetch: SQS counts running + prefetched in flight, never more; they wait their turn and are all handled', async (t) => {
  const bus = await startBus([{ queue: 'q', events: ['HOLD'], concurrency: 3, prefetch: 2 }], { config: { concurrency: 3 } });
  t.teardown(() => bus.stop());
  await bus.publisher.publishBatch(Array.from({ length: 10 }, () => ({ type: 'HOLD', data: { sleepMs: 1500 } })));
  await waitFor('three handlers running and two prefetched', async () => bus.running('q') === 3 && (await bus.depth('q')).inFlight === 5, 10_000);
  await new Promise((r) => setTimeout(r, 500));
  t.same(await bus.depth('q'), { visible: 5, inFlight: 5 }, 'SQS: 3 running + 2 prefetched in flight, nothing more');
  t.equal(bus.started('q').length, 3, 'the prefetched ones have not started');
  const metrics = await (await fetch(`http://127.0.0.1:${bus.sup.httpPort}/metrics`)).text();
  t.match(metrics, /eventbus_messages_prefetched\{queue="q"\} 2/);
  t.match(metrics, /eventbus_messages_in_flight\{queue="q"\} 5/);
  await waitFor('all done', () => bus.ended('q').length === 10, 30_000);
  t.equal(bus.peak('q'), 3, 'prefetch never raises the running cap');
});

t.test('prefetch host-wide: at most the global cap across queues', async (t) => {
  const bus = await startBus(
    [
      { queue: 'a', events: ['A'], concurrency: 2, prefetch: 2 },
      { queue: 'b', events: ['B'], concurrency: 2, prefetch: 2 },
      { queue: 'c', events: ['C'], concurrency: 2, prefetch: 2 },
    ],
    { config: { concurrency: 3, threads: 1, tasksPerThread: 3 } },
  );
  t.teardown(() => bus.stop());
  for (const type of ['A', 'B', 'C']) await bus.publisher.publishBatch(Array.from({ length: 8 }, () => ({ type, data: { sleepMs: 1500 } })));
  const inFlight = async () => {
    let n = 0;
    for (const q of ['a', 'b', 'c']) n += (await bus.depth(q)).inFlight;
    return n;
  };
  await waitFor('3 running + 3 prefetched', async () => (await inFlight()) === 6, 10_000);
  await new Promise((r) => setTimeout(r, 500));
  t.equal(await inFlight(), 6, 'SQS: 3 running (the global cap) + 3 prefetched (the global cap), not 3 × 2');
  t.equal(bus.running('a') + bus.running('b') + bus.running('c'), 3);
  await waitFor('all done', () => ['a', 'b', 'c'].every((q) => bus.ended(q).length === 8), 60_000);
});

t.test('a flooded queue does not starve a quiet one', async (t) => {
  const bus = await startBus(
    [
      { queue: 'flood', events: ['FLOOD'], concurrency: 4 },
      { queue: 'quiet', events: ['QUIET'], concurrency: 4 },
    ],
    { config: { concurrency: 4, threads: 2, tasksPerThread: 2 } },
  );
  t.teardown(() => bus.stop());
  for (let i = 0; i < 10; i++) await bus.publisher.publishBatch(Array.from({ length: 10 }, () => ({ type: 'FLOOD', data: { sleepMs: 300 } })));
  await waitFor('flood saturating the cap', () => bus.running('flood') >= 3, 10_000);
  const sentAt = Date.now();
  await bus.publisher.publishBatch(Array.from({ length: 6 }, () => ({ type: 'QUIET', data: { sleepMs: 300 } })));
  await waitFor('quiet handled', () => bus.ended('quiet').length === 6, 20_000);
  t.comment(`quiet done ${Date.now() - sentAt} ms after it was sent`);
  const floodLeft = 100 - bus.ended('flood').length;
  t.ok(floodLeft > 40, `quiet finished while the flood still had ${floodLeft} of 100 to go`);
  t.ok(bus.peak('quiet') >= 2, `quiet got a fair share of slots (peak ${bus.peak('quiet')})`);
  t.ok(bus.peak() <= 4, 'global cap held');
  await waitFor('flood done', () => bus.ended('flood').length === 100, 30_000);
});

t.test('a queue with more than 10 free slots runs several receives at once', async (t) => {
  const { bus, proxy } = await busBehindProxy(t, { queue: 'wide', events: ['W'], concurrency: 30 }, { concurrency: 30, threads: 2, tasksPerThread: 15 });
  for (let i = 0; i < 6; i++) await bus.publisher.publishBatch(Array.from({ length: 10 }, () => ({ type: 'W', data: { sleepMs: 1000 } })));
  await waitFor('all handled', () => bus.ended('wide').length === 60, 30_000);
  t.ok(proxy.maxConcurrent('ReceiveMessage') >= 2, `receives overlapped (${proxy.maxConcurrent('ReceiveMessage')} at once)`);
  t.ok(proxy.maxConcurrent('ReceiveMessage') <= 3, 'at most one receive per 10 slots of the cap');
  t.ok(bus.peak('wide') > 10, `more than one receive's worth ran at once (peak ${bus.peak('wide')})`);
  t.ok(bus.peak('wide') <= 30, 'within the cap');
});

t.test('a trickle does not hold a batch of slots in its long polls; a backlog still gets full receives', async (t) => {
  // Expected: a busy queue's first lane long-polls asking for twice what its last receive got, so a
  // trickle of single messages asks for 1-2 slots per (up to 1 s) long poll, and a backlog ramps to 10.
  // Broke (review): a busy long poll took 10 slots for up to 1 s on every receive of a trickle.
  const { bus, proxy } = await busBehindProxy(t, { queue: 'trickle', events: ['T'], concurrency: 20 }, { concurrency: 20, threads: 1, tasksPerThread: 20 });
  for (let i = 0; i < 12; i++) {
    await bus.publisher.createEvent('T', {});
    await new Promise((r) => setTimeout(r, 150));
  }
  await waitFor('trickle handled', () => bus.ended('trickle').length === 12, 20_000);
  const trickle = proxy.receives();
  const busyPolls = trickle.filter((r) => r.waitSec === 1);
  t.ok(busyPolls.length >= 3, `busy long polls happened (${busyPolls.length} of ${trickle.length} receives)`);
  // A short poll (a lane the ramp added) may ask for 10: it returns at once. A long poll holds what it asked for up to 1 s.
  const longPolls = trickle.filter((r) => r.waitSec > 0);
  t.ok(longPolls.every((r) => r.max <= 2), `every long poll of the trickle asked for at most 2 (${trickle.map((r) => `${r.max}/${r.waitSec}s`).join(' ')})`);
  for (let i = 0; i < 5; i++) await bus.publisher.publishBatch(Array.from({ length: 10 }, () => ({ type: 'T', data: {} })));
  await waitFor('backlog handled', () => bus.ended('trickle').length === 62, 20_000);
  const backlog = proxy.receives().slice(trickle.length);
  t.ok(backlog.some((r) => r.max === 10), `the backlog ramped to receives of 10 (${backlog.map((r) => r.max).join(' ')})`);
});
