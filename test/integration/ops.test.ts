// Operations: /metrics counts match what the handlers saw; queue and DLQ depth gauges; /readyz follows SQS health.
import t from 'tap';
import { startBus, waitFor } from '../helpers/bus.js';
import { emulator } from '../helpers/emulator.js';
import { countingProxy } from '../helpers/proxy.js';

const value = (text: string, re: RegExp) => Number(re.exec(text)?.[1] ?? NaN);

t.test('/metrics after a known run matches what the handlers saw', async (t) => {
  const bus = await startBus([{ queue: 'm', events: ['OK', 'BAD'], maxReceiveCount: 1 }], {
    config: { retry: { baseDelaySec: 1, maxDelaySec: 1 } },
    supervisor: { queueStatsIntervalMs: 200 },
  });
  t.teardown(() => bus.stop());
  await bus.publisher.publishBatch([
    ...Array.from({ length: 10 }, () => ({ type: 'OK', data: {} })),
    ...Array.from({ length: 3 }, () => ({ type: 'BAD', data: { fail: 'false' } })),
  ]);
  await waitFor('13 handled', () => bus.started('m').length === 13, 15_000);
  // The failed three move to the DLQ on their next receive; the gauge shows them there.
  const text = await waitFor(
    'the DLQ gauge to show 3',
    async () => {
      const r = await fetch(`http://127.0.0.1:${bus.sup.httpPort}/metrics`);
      const body = await r.text();
      return value(body, /eventbus_queue_messages\{queue="m-dlq",state="visible"\} (\d+)/) === 3 ? body : null;
    },
    20_000,
  );
  t.equal(value(text, /eventbus_handler_results_total\{queue="m",event_type="OK",result="success"\} (\d+)/), 10);
  t.equal(value(text, /eventbus_handler_results_total\{queue="m",event_type="BAD",result="failure"\} (\d+)/), 3);
  t.equal(value(text, /eventbus_messages_received_total\{queue="m"\} (\d+)/), bus.started('m').length, 'received = handler starts');
  t.equal(value(text, /eventbus_messages_deleted_total\{queue="m"\} (\d+)/), bus.ended('m').length, 'deleted = successes');
  t.equal(value(text, /eventbus_handler_duration_seconds_count\{queue="m"\} (\d+)/), 13);
  t.equal(value(text, /eventbus_message_age_seconds_count\{queue="m"\} (\d+)/), 13);
  t.equal(value(text, /eventbus_messages_in_flight\{queue="m"\} (\d+)/), 0);
  t.equal(value(text, /eventbus_queue_messages\{queue="m",state="visible"\} (\d+)/), 0);
  t.match(text, /process_cpu_user_seconds_total/, 'default process metrics');
  t.equal(value(text, /eventbus_events_published_total\{event_type="TASK_WORKER_FAILED"\} (\d+)/), 3, 'failure events counted as published');
});

t.test('/readyz turns 503 while SQS fails for longer than the threshold, and 200 when it recovers', async (t) => {
  const emu = await emulator();
  const proxy = await countingProxy(emu.endpoint);
  const bus = await startBus([{ queue: 'r', events: ['R'] }], { emu, supervisorEndpoint: proxy.endpoint, config: { readiness: { sqsFailureSec: 1 } } });
  t.teardown(async () => {
    await bus.stop();
    await proxy.close();
    await emu.stop();
  });
  const readyz = async () => {
    const r = await fetch(`http://127.0.0.1:${bus.sup.httpPort}/readyz`);
    return { status: r.status, body: (await r.json()) as { reason: string | null } };
  };
  t.equal((await readyz()).status, 200, 'ready');
  const downAt = Date.now();
  proxy.setDown(true);
  const failing = await waitFor('503', async () => {
    const r = await readyz();
    return r.status === 503 ? r : null;
  });
  t.match(failing.body.reason, /SQS calls failing for \d+ s/);
  // Issue 14 (Low): state only; an SQS error text can carry the account id and role ARN (was: the error appended).
  t.notMatch(failing.body.reason, /Error\b|ECONNRESET|socket hang up|arn:aws/, `no error text in /readyz: ${failing.body.reason}`);
  await new Promise((r) => setTimeout(r, 2000));
  // Every ReceiveMessage request while down is counted (the SDK's own retries too). After its n-th
  // failure in a row (n from 0) the poller waits at least 50 * 2^n ms (callRetryDelayMs: equal jitter
  // below 100 * 2^n), so in downMs at most 1 + log2(downMs / 50 + 1) receives start (+ 10 ms for
  // timer rounding), each at most maxAttempts (3) requests: 18 in 3 s, where a poller without backoff
  // makes 20 or more a second (the SDK's retry delays are below 50 and 100 ms).
  const downMs = Date.now() - downAt;
  const attempts = proxy.refused('ReceiveMessage');
  const bound = 3 * (1 + Math.floor(Math.log2((downMs + 10) / 50 + 1)));
  t.ok(attempts > 0, `receives were attempted and refused while SQS was down (${attempts})`);
  t.ok(attempts <= bound, `no tight retry loop while SQS is down: ${attempts} receive requests in ${downMs} ms (backoff allows ${bound})`);
  proxy.setDown(false);
  await waitFor('200 again', async () => (await readyz()).status === 200, 30_000);
  await bus.publisher.createEvent('R', {});
  await waitFor('work flows again', () => bus.ended('r').length === 1, 15_000);
  t.pass('recovered by itself');
});
