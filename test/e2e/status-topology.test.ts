// `eventbus status` without the compiled handlers (issue 20): from `--queues` or the provisioned
// topology (ListQueues by queuePrefix, `<q>` paired with `<q>-dlq`), and the oldest message's age
// from CloudWatch (`--cloudwatch`: the emulator has none, so "n/a" with the reason, exit 0) or from a
// running supervisor's eventbus_message_age_seconds (`--metrics-url`). Through the real CLI.
import t, { type Test } from 'tap';
import { CreateQueueCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { opsWorld, type OpsWorld } from '../helpers/ops-world.js';
import { spawnNode, writeConfig } from '../helpers/process.js';
import { AGE_BUCKETS } from '../../dist/metrics/registry.js';

interface Row {
  queue: string;
  queueName: string;
  exists: boolean;
  visible: number | null;
  oldestAgeSec: number | null;
  oldestAgeSource: string | null;
  oldestAgeNote: string | null;
  dlq: { queueName: string; exists: boolean; visible: number | null; oldestAgeSec: number | null; oldestAgeNote: string | null };
}

async function cli(t: Test, args: string[]) {
  const p = spawnNode('bin/eventbus.js', args);
  t.teardown(() => p.kill());
  let stdout = '';
  let stderr = '';
  p.child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  p.child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exit = await p.exited;
  return { code: exit.code, out: p.output(), stdout, stderr };
}

/** The world's config with its handlers folder gone: an operator's machine without the build. */
function withoutHandlers(world: OpsWorld): string {
  const cfg = JSON.parse(readFileSync(world.config, 'utf8')) as Record<string, unknown>;
  return writeConfig({ ...cfg, handlersDir: join(tmpdir(), 'eventbus-no-such-handlers-dir') });
}

const event = (type: string) => JSON.stringify({ specversion: '1.0', id: `ev-${Math.random()}`, source: 'test', type, time: new Date().toISOString(), data: {} });

t.test('no compiled handlers: the queues of the prefix that have a -dlq', async (t) => {
  const world = await opsWorld(t, 'st');
  // Of the prefix but not eventbus's (no -dlq): skipped. Another prefix: not listed.
  await world.emu.sqs.send(new CreateQueueCommand({ QueueName: `${world.prefix}loner` }));
  await world.emu.sqs.send(new CreateQueueCommand({ QueueName: `other-${world.prefix}orders` }));
  await world.emu.sqs.send(new SendMessageCommand({ QueueUrl: world.url('orders'), MessageBody: event('ORDER_PLACED') }));
  await world.emu.sqs.send(new SendMessageCommand({ QueueUrl: world.url('mail', true), MessageBody: event('USER_CREATED') }));
  const config = withoutHandlers(world);

  const json = await cli(t, ['status', '--json', '--config', config]);
  t.equal(json.code, 0, json.out);
  const rows = JSON.parse(json.stdout) as Row[];
  t.same(rows.map((r) => [r.queue, r.queueName, r.dlq.queueName]), [
    ['mail', `${world.prefix}mail`, `${world.prefix}mail-dlq`],
    ['orders', `${world.prefix}orders`, `${world.prefix}orders-dlq`],
  ], 'both handler queues, paired with their DLQs, by name');
  t.equal(rows.find((r) => r.queue === 'orders')!.visible, 1);
  t.equal(rows.find((r) => r.queue === 'mail')!.dlq.visible, 1);
  t.match(rows[0], { oldestAgeSec: null, oldestAgeSource: null, oldestAgeNote: null }, 'the added fields, null when not asked');
  t.match(json.stderr, new RegExp(`no compiled handlers in .*eventbus-no-such-handlers-dir: the queues provisioned with prefix "${world.prefix}" \\(ListQueues\\); skipped 1 without a -dlq: ${world.prefix}loner`));

  const table = await cli(t, ['status', '--config', config, '--fail-on-dlq']);
  t.equal(table.code, 1, 'the mail DLQ holds a message');
  t.match(table.stdout, /^QUEUE +VISIBLE +IN FLIGHT +DELAYED +OLDEST +DLQ VISIBLE +DLQ IN FLIGHT$/m);
  t.match(table.stdout, /^orders +1 +0 +0 +- +0 +0$/m);
  t.match(table.stderr, new RegExp(`DLQs hold messages: ${world.prefix}mail-dlq \\(1\\)`));
});

t.test('--queues names the queues; a missing one exits 1', async (t) => {
  const world = await opsWorld(t, 'sq');
  const config = withoutHandlers(world);
  const one = await cli(t, ['status', '--json', '--queues', 'orders', '--config', config]);
  t.equal(one.code, 0, one.out);
  t.same((JSON.parse(one.stdout) as Row[]).map((r) => [r.queue, r.exists, r.dlq.exists]), [['orders', true, true]]);
  const missing = await cli(t, ['status', '--queues', 'orders,ghost', '--config', config]);
  t.equal(missing.code, 1);
  t.match(missing.stdout, /^ghost +missing/m);
  t.match(missing.stderr, new RegExp(`missing queues: ${world.prefix}ghost, ${world.prefix}ghost-dlq`));
  const bad = await cli(t, ['status', '--queues', 'no spaces!', '--config', config]);
  t.equal(bad.code, 2, 'a bad name is a usage error');
  t.match(bad.stderr, /--queues: "no spaces!" is not a queue name/);
  // With the handlers there, --queues still wins.
  const withHandlers = await cli(t, ['status', '--json', '--queues', 'mail', '--config', world.config]);
  t.same((JSON.parse(withHandlers.stdout) as Row[]).map((r) => r.queue), ['mail']);
});

t.test('--cloudwatch on the emulator: "n/a" per queue with the reason, exit 0', async (t) => {
  const world = await opsWorld(t, 'scw');
  const json = await cli(t, ['status', '--json', '--cloudwatch', '--config', world.config]);
  t.equal(json.code, 0, json.out);
  const rows = JSON.parse(json.stdout) as Row[];
  t.equal(rows.length, 2);
  for (const r of rows) {
    t.equal(r.oldestAgeSec, null);
    t.match(r.oldestAgeNote, /^CloudWatch not available: /, `${r.queue}: the reason`);
    t.match(r.dlq.oldestAgeNote, /^CloudWatch not available: /, `${r.queue}'s DLQ too`);
  }
  const table = await cli(t, ['status', '--cloudwatch', '--config', world.config]);
  t.equal(table.code, 0, table.out);
  t.match(table.stdout, /^orders +0 +0 +0 +n\/a +0 +0$/m);
  t.match(table.stdout, new RegExp(`^OLDEST n/a for ${world.prefix}mail, ${world.prefix}mail-dlq, ${world.prefix}orders, ${world.prefix}orders-dlq: CloudWatch not available: .+`, 'm'));
});

t.test('--metrics-url: the age at receive from a running supervisor', async (t) => {
  const world = await opsWorld(t, 'smx');
  const cfg = JSON.parse(readFileSync(world.config, 'utf8')) as Record<string, unknown>;
  const supConfig = writeConfig({ ...cfg, http: { host: '127.0.0.1', port: 0 } });
  // Sent before the supervisor starts, received at least WAIT_MS later: its age at receive is above 1 s.
  const WAIT_MS = 1_500;
  const sentAt = Date.now();
  await world.emu.sqs.send(new SendMessageCommand({ QueueUrl: world.url('orders'), MessageBody: event('ORDER_PLACED') }));
  await new Promise((r) => setTimeout(r, WAIT_MS));
  const sup = spawnNode('dist/supervisor/index.js', ['--config', supConfig]);
  t.teardown(() => sup.kill());
  const port = Number(/"port":(\d+),"msg":"http listening"/.exec(await sup.waitForOutput(/"port":\d+,"msg":"http listening"/, 60_000))![1]);
  await sup.waitForOutput(/"msg":"supervisor running"/, 60_000);
  const metricsUrl = `http://127.0.0.1:${port}/metrics`;
  // Until the message was handled (its age observed at handler start).
  const deadline = Date.now() + 30_000;
  while (!/eventbus_message_age_seconds_count\{queue="orders"\} [1-9]/.test(await (await fetch(metricsUrl)).text())) {
    if (Date.now() > deadline) throw new Error('the supervisor did not receive the message');
    await new Promise((r) => setTimeout(r, 100));
  }
  const receivedBy = (Date.now() - sentAt) / 1000;
  const json = await cli(t, ['status', '--json', '--metrics-url', metricsUrl, '--config', withoutHandlers(world)]);
  t.equal(json.code, 0, json.out);
  const rows = JSON.parse(json.stdout) as Row[];
  const orders = rows.find((r) => r.queue === 'orders')!;
  t.equal(orders.oldestAgeSource, 'metrics');
  t.ok(AGE_BUCKETS.includes(orders.oldestAgeSec!), `a bucket bound (${orders.oldestAgeSec})`);
  // The bucket holding an age in (WAIT_MS, receivedBy]: its bound is the first >= the age.
  t.ok(orders.oldestAgeSec! >= Math.min(...AGE_BUCKETS.filter((b) => b >= WAIT_MS / 1000)), `bound ${orders.oldestAgeSec} covers an age above ${WAIT_MS} ms`);
  t.ok(orders.oldestAgeSec! <= Math.min(...AGE_BUCKETS.filter((b) => b >= receivedBy)), `and not past the bucket of ${receivedBy} s`);
  t.match(orders.oldestAgeNote, /largest age at receive since the supervisor started, at most/);
  const mail = rows.find((r) => r.queue === 'mail')!;
  t.equal(mail.oldestAgeSec, null);
  t.match(mail.oldestAgeNote, /received no message of this queue/);
  t.match(orders.dlq.oldestAgeNote, /a DLQ is not consumed/);

  const table = await cli(t, ['status', '--metrics-url', metricsUrl, '--config', world.config]);
  t.match(table.stdout, new RegExp(`^orders +0 +0 +0 +<=${orders.oldestAgeSec}s +0 +0$`, 'm'), 'shown as a bound');
  sup.child.kill('SIGTERM');
  t.equal((await sup.exited).code, 0);

  // Nothing listens there any more: n/a with the reason, exit 0.
  const gone = await cli(t, ['status', '--json', '--metrics-url', metricsUrl, '--config', world.config]);
  t.equal(gone.code, 0, gone.out);
  t.match((JSON.parse(gone.stdout) as Row[])[0]!.oldestAgeNote, new RegExp(`${metricsUrl.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} not available: .*ECONNREFUSED`));
  const bad = await cli(t, ['status', '--metrics-url', 'ftp://x/metrics', '--config', world.config]);
  t.equal(bad.code, 2);
  t.match(bad.stderr, /--metrics-url must be http:\/\/ or https:\/\//);
});
