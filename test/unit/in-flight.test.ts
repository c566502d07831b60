// InFlight owns received-not-settled messages: their extension and their release (written once).
// A recording VisibilitySetter stands in for the acker (our own interface, not the SDK).
import t from 'tap';
import { InFlight } from '../../dist/supervisor/in-flight.js';
import { createMetrics } from '../../dist/metrics/registry.js';
import { createLogger } from '../../dist/log.js';

function registry(failRelease = false) {
  const calls: Array<{ handle: string; sec: number }> = [];
  const metrics = createMetrics();
  let release: () => void = () => undefined;
  const inFlight = new InFlight({
    sqs: {
      changeVisibility: async (_q, handle, sec) => {
        calls.push({ handle, sec });
        if (sec === 0 && failRelease) throw new Error('network down');
        if (sec > 0) await new Promise<void>((r) => (release = r)); // an extension on its way until released
      },
    },
    log: createLogger({ level: 'silent' }),
    metrics,
  });
  const q = { queue: 'q', url: 'http://sqs/q' };
  const gauge = async () => (await metrics.inFlight.get()).values.find((v) => v.labels.queue === 'q')?.value ?? 0;
  const released = async () => (await metrics.released.get()).values.find((v) => v.labels.queue === 'q' && v.labels.reason === 'shutdown')?.value ?? 0;
  return { inFlight, calls, q, gauge, released, finishExtension: () => release() };
}

t.test('release hands a message back once (visibility 0), counts it and forgets it', async (t) => {
  const { inFlight, calls, q, gauge, released } = registry();
  const [a, b] = inFlight.addAll(q, [{ messageId: 'a', receiptHandle: 'ha' }, { messageId: 'b', receiptHandle: 'hb' }], 30, Date.now() + 30_000);
  t.equal(await gauge(), 2);
  t.equal(await inFlight.release(a!, 'shutdown'), true);
  t.equal(await inFlight.release(a!, 'shutdown'), false, 'a second release does nothing');
  t.same(calls, [{ handle: 'ha', sec: 0 }]);
  t.equal(await released(), 1);
  t.equal(await gauge(), 1);
  t.equal(await inFlight.quiesce(a!), false, 'the settle path learns it was released');
  inFlight.remove(a!);
  t.equal(await gauge(), 1, 'remove after release does not count twice');
  inFlight.remove(b!);
  t.equal(inFlight.size, 0);
  t.equal(await gauge(), 0);
});

t.test('a message whose delete is on its way is never released', async (t) => {
  // Releasing it would run its handler again after it succeeded.
  const { inFlight, calls, q } = registry();
  const [a, b] = inFlight.addAll(q, [{ messageId: 'a', receiptHandle: 'ha' }, { messageId: 'b', receiptHandle: 'hb' }], 30, Date.now() + 30_000);
  t.equal(inFlight.beginDelete(a!), undefined, 'no extension to wait for');
  t.equal(await inFlight.releaseAll('shutdown'), 1);
  t.same(calls, [{ handle: 'hb', sec: 0 }], 'only the other one');
  inFlight.remove(a!);
  inFlight.remove(b!);
});

t.test('a release waits for an extension on its way, so visibility 0 is the last change SQS sees', async (t) => {
  const { inFlight, calls, q, finishExtension } = registry();
  // Due for extension at once: half its visibility has passed.
  const [a] = inFlight.addAll(q, [{ messageId: 'a', receiptHandle: 'ha' }], 2, Date.now() + 500);
  while (calls.length === 0) await new Promise((r) => setTimeout(r, 5));
  t.same(calls, [{ handle: 'ha', sec: 2 }], 'the extension is on its way');
  const releasing = inFlight.release(a!, 'shutdown');
  await new Promise((r) => setTimeout(r, 20));
  t.equal(calls.length, 1, 'the release waits');
  finishExtension();
  t.equal(await releasing, true);
  t.same(calls.map((c) => c.sec), [2, 0]);
  inFlight.stop();
});

t.test('a failed release is logged, not thrown: the message comes back after its visibility timeout', async (t) => {
  const { inFlight, q, gauge } = registry(true);
  const [a] = inFlight.addAll(q, [{ messageId: 'a', receiptHandle: 'ha' }], 30, Date.now() + 30_000);
  t.equal(await inFlight.release(a!, 'capacity'), true);
  t.equal(await gauge(), 0);
});
