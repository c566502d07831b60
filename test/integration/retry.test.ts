// A failure (false, throw) is retried with a growing backoff; after maxReceiveCount SQS moves it to the DLQ.
import t from 'tap';
import { fileURLToPath } from 'node:url';
import { ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { startBus, waitFor } from '../helpers/bus.js';

const ALWAYS_FALSE = fileURLToPath(new URL('../../test/fixtures/handlers/always-false.mjs', import.meta.url));

for (const fail of ['false', 'throw'] as const) {
  t.test(`handler failing with ${fail} is retried with backoff, then succeeds`, async (t) => {
    const bus = await startBus([{ queue: 'work', events: ['JOB'] }], { config: { retry: { baseDelaySec: 1, maxDelaySec: 8 } } });
    t.teardown(() => bus.stop());
    await bus.publisher.createEvent('JOB', { fail, failTimes: 2 });
    await waitFor('success on the third receive', () => bus.ended('work').length === 1, 20_000);
    const starts = bus.started('work');
    t.same(
      starts.map((s) => s.receiveCount),
      [1, 2, 3],
      'receiveCount rises with each retry',
    );
    // Equal jitter: the n-th retry waits at least base * 2^(n-1) / 2 seconds.
    const gap1 = starts[1]!.at - starts[0]!.at;
    const gap2 = starts[2]!.at - starts[1]!.at;
    t.ok(gap1 >= 450, `first backoff >= 0.5 s (was ${gap1} ms)`);
    t.ok(gap2 >= 950, `second backoff >= 1 s (was ${gap2} ms)`);
    const results = await bus.sup.metrics.registry.getSingleMetricAsString('eventbus_handler_results_total');
    const expected = fail === 'false' ? 'failure' : 'error';
    t.match(results, new RegExp(`result="${expected}"\\} 2`), `two ${expected} results counted`);
    t.match(results, /result="success"\} 1/);
    await waitFor('queue empty', async () => {
      const d = await bus.depth('work');
      return d.visible + d.inFlight === 0;
    });
  });
}

t.test('a message that keeps failing ends in the DLQ, and failure events are published', async (t) => {
  const bus = await startBus(
    [
      { queue: 'work', events: ['JOB'], maxReceiveCount: 2 },
      { queue: 'failures', events: ['TASK_WORKER_FAILED'] },
    ],
    { config: { retry: { baseDelaySec: 1, maxDelaySec: 1 } } },
  );
  t.teardown(() => bus.stop());
  const event = await bus.publisher.createEvent('JOB', { fail: 'throw', message: 'bad input' });
  await waitFor('two failed receives', () => bus.started('work').length >= 2, 20_000);
  // SQS moves the message on the receive after maxReceiveCount.
  const dlqUrl = await bus.queueUrl('work', true);
  const inDlq = await waitFor(
    'the message in the DLQ',
    async () => {
      const r = await bus.emu.sqs.send(new ReceiveMessageCommand({ QueueUrl: dlqUrl, WaitTimeSeconds: 1, VisibilityTimeout: 60 }));
      return r.Messages?.length ? r.Messages : null;
    },
    20_000,
  );
  t.equal(inDlq.length, 1);
  t.match(JSON.parse(JSON.parse(inDlq[0]!.Body!).Message), { id: event.id, type: 'JOB' }, 'the DLQ holds the original event');
  t.equal(bus.started('work').length, 2, 'the handler ran maxReceiveCount times');

  await waitFor('failure events handled', () => bus.ended('failures').length >= 2, 10_000);
  const f = bus.ended('failures')[0]!;
  t.match(f.data, { queue: 'work', eventType: 'JOB', eventId: event.id, result: 'error', error: /bad input/ });
  t.same(
    bus.ended('failures').map((s) => s.data.receiveCount).sort(),
    [1, 2],
  );
});

t.test('failure events are rate limited per queue and never published for TASK_WORKER_FAILED itself', async (t) => {
  const bus = await startBus(
    [
      { queue: 'work', events: ['JOB'], maxReceiveCount: 1 },
      // Fails every failure event it gets: failures of TASK_WORKER_FAILED that must not be reported.
      { queue: 'failures', events: ['TASK_WORKER_FAILED'], maxReceiveCount: 1, file: ALWAYS_FALSE },
    ],
    { config: { retry: { baseDelaySec: 30, maxDelaySec: 30 }, failureEvents: { enabled: true, maxPerSecond: 2 } } },
  );
  t.teardown(() => bus.stop());
  await bus.publisher.publishBatch(Array.from({ length: 8 }, () => ({ type: 'JOB', data: { fail: 'false' } })));
  await waitFor('8 failures', () => bus.started('work').length >= 8, 10_000);
  const metric = async (name: string, re: RegExp) => Number(re.exec(await bus.sup.metrics.registry.getSingleMetricAsString(name))?.[1] ?? 0);
  const suppressed = (queue: string) => metric('eventbus_failure_events_suppressed_total', new RegExp(`queue="${queue}"\\} (\\d+)`));
  const aboutWork = () => bus.started('failures').filter((s) => s.data?.queue === 'work').length;
  await waitFor('published + suppressed = 8 failures', async () => aboutWork() + (await suppressed('work')) === 8, 10_000);
  const n = await suppressed('work');
  t.ok(n >= 4, `most failure events were suppressed (${n})`);
  t.ok(aboutWork() >= 2, 'the first ones were published');
  const fromWork = 8 - n;
  // Stopping lets every running handler settle and sends every failure event being published, so the
  // counts below are final: a failure event about one of the failures' own failures would be counted
  // as published or as suppressed.
  await bus.stop();
  t.equal(
    await metric('eventbus_handler_results_total', /queue="failures",event_type="TASK_WORKER_FAILED",result="failure"\} (\d+)/),
    fromWork,
    'the failures handler failed every failure event it got',
  );
  t.equal(await metric('eventbus_events_published_total', /event_type="TASK_WORKER_FAILED"\} (\d+)/), fromWork, 'failure events were published for the work queue only');
  t.equal(await suppressed('failures'), 0, 'no failure event about a failure event was even suppressed');
  t.notOk(
    bus.seen.some((s) => s.queue === 'failures' && s.kind === 'start' && s.data?.eventType === 'TASK_WORKER_FAILED'),
    'no failure event about a failure event reached a handler',
  );
});
