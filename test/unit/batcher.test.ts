import t from 'tap';
import { Batcher } from '../../dist/supervisor/settle/batcher.js';

function recorder(hold?: (pending: number) => boolean, maxLingerMs?: number) {
  const calls: Array<{ at: number; items: number[] }> = [];
  const started = Date.now();
  const b = new Batcher<number>({
    maxBatch: 10,
    lingerMs: 10,
    ...(hold ? { hold, maxLingerMs: maxLingerMs ?? 0 } : {}),
    maxAttempts: 1,
    retryDelayMs: () => 0,
    isRetryable: () => false,
    async send(items) {
      calls.push({ at: Date.now() - started, items });
      return items.map(() => null);
    },
  });
  return { b, calls };
}

t.test('a part batch goes out after the linger; a full one at once', async (t) => {
  const { b, calls } = recorder();
  const first = [b.add(1), b.add(2)];
  await new Promise((r) => setTimeout(r, 3));
  t.equal(calls.length, 0, 'waits for company');
  await Promise.all(first);
  t.same(calls.map((c) => c.items), [[1, 2]]);
  await Promise.all(Array.from({ length: 10 }, (_, i) => b.add(10 + i)));
  t.equal(calls.length, 2);
  t.equal(calls[1]!.items.length, 10, 'ten entries: sent without waiting for the linger');
});

t.test('while hold says more are coming, a part batch waits for them, up to maxLingerMs', async (t) => {
  // Expected: completions 2 ms apart (CPU-bound handlers on 2 threads) share one delete call.
  // Broke: a 5 ms linger sent them in calls of 3-4.
  const asked: number[] = [];
  const { b, calls } = recorder((pending) => (asked.push(pending), true), 2_000);
  const done: Array<Promise<void>> = [];
  for (let i = 0; i < 10; i++) {
    done.push(b.add(i));
    await new Promise((r) => setTimeout(r, 4));
  }
  await Promise.all(done);
  t.equal(calls.length, 1, 'ten entries spread over 40 ms or more went out in one call');
  t.equal(calls[0]!.items.length, 10);
  t.ok(asked.length >= 2 && asked.every((n) => n > 0 && n < 10), `hold was asked with the pending count (${asked.join(',')})`);

  // Bounded: the hold never lets go, the call still goes out at maxLingerMs.
  const r = recorder(() => true, 40);
  const started = Date.now();
  await r.b.add(1);
  const waited = Date.now() - started;
  t.ok(waited >= 38 && waited < 1_000, `sent at maxLingerMs (${waited} ms)`);

  // A hold that says no: out at the plain linger.
  const n = recorder(() => false, 10_000);
  const s2 = Date.now();
  await n.b.add(1);
  t.ok(Date.now() - s2 < 500, 'not held');
});
