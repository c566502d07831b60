// `eventbus check` as users and CI run it: the real CLI on the example handlers (no errors, exit 0),
// on a folder of handlers that trigger errors (exit 1, one line each), and --live against fauxqs
// after the topology drifted from the declarations.
import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DeleteQueueCommand, GetQueueUrlCommand, SetQueueAttributesCommand } from '@aws-sdk/client-sqs';
import { ListSubscriptionsByTopicCommand, SetSubscriptionAttributesCommand } from '@aws-sdk/client-sns';
import { loadHandlers } from '../../dist/handlers.js';
import { provision } from '../../dist/publisher/provision.js';
import { emulator, uniqueName } from '../helpers/emulator.js';
import { ROOT, spawnNode, writeConfig, writeHandlers } from '../helpers/process.js';

interface Finding {
  level: 'error' | 'warning' | 'info';
  rule: string;
  queue?: string;
  message: string;
}

async function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number | null; stdout: string; out: string }> {
  const p = spawnNode('bin/eventbus.js', ['check', ...args], env);
  let stdout = '';
  p.child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
  const exit = await p.exited;
  return { code: exit.code, stdout, out: p.output() };
}

t.test('the example handlers pass: no errors, exit 0 (text and --json)', async (t) => {
  const env = { EVENTBUS_HANDLERS_DIR: join(ROOT, 'dist', 'handlers') };
  const text = await cli([], env);
  t.equal(text.code, 0, text.out);
  t.notMatch(text.stdout, /^error /m, 'no error lines');
  t.match(text.stdout, /^info filter-policies-per-topic: 2 of 200 filter policies on topic events \(1%\)$/m);
  t.match(text.stdout, /^warning unreceived-type: EMAIL_SENT \(published by handler email\)/m, 'EMAIL_SENT has no receiver without the archive');
  t.match(text.stdout, /^check: 0 errors, \d+ warnings?, \d+ infos? \(2 handlers, topic events\)$/m);
  const json = await cli(['--json'], env);
  t.equal(json.code, 0, json.out);
  const report = JSON.parse(json.stdout) as { ok: boolean; live: boolean; summary: { errors: number }; findings: Finding[] };
  t.equal(report.ok, true);
  t.equal(report.live, false);
  t.equal(report.summary.errors, 0);
  // With the archive on (as under npm start), the archive receives EMAIL_SENT: not even a warning.
  const archived = await cli(['--json'], { ...env, EVENTBUS_ARCHIVE: 'true' });
  const a = JSON.parse(archived.stdout) as { summary: { errors: number; warnings: number } };
  t.same([archived.code, a.summary.errors, a.summary.warnings], [0, 0, 0], archived.out);
});

t.test('a folder of handlers that cannot work: exit 1, one line per finding', async (t) => {
  const dir = writeHandlers([
    { queue: 'short', visibilityTimeout: 2, timeoutMs: 60_000, events: ['ORDER_PLACED'] },
    { queue: 'once', maxReceiveCount: 1, events: ['ORDER_PLACED'] },
    { queue: 'wide', concurrency: 50, events: ['ORDER_PLACED'] },
    { queue: 'mail', events: ['USER_CREATED'], publishes: ['MAIL_SENT'] },
  ]);
  writeFileSync(join(dir, 'broken.mjs'), 'export default { handle() {}, maxRecieveCount: 3 };\n');
  const manifest = join(dir, '_orders.json');
  writeFileSync(manifest, JSON.stringify({ service: 'orders-api', events: { ORDER_PLACED: { ratePerSec: 2000, maxBytes: 300_000 } } }));
  const config = writeConfig({ handlersDir: dir, concurrency: 10, region: 'eu-central-1', failureEvents: { enabled: false } });
  const r = await cli(['--config', config, '--publishes', manifest]);
  t.equal(r.code, 1, r.out);
  const lines = r.stdout.trim().split('\n');
  t.match(lines, [
    /^error handler-invalid: handler .*broken\.mjs: unknown key "maxRecieveCount" \(did you mean "maxReceiveCount"\?\)$/,
    /^error event-size: ORDER_PLACED: data up to 300,000 bytes \(orders-api \(_orders\.json\)\) makes a 300,\d{3}-byte SNS message; SNS allows 262,144/,
    /^error publish-rate: declared publishing: 2,000 events\/s against 1,500 Publish\/s by default in region eu-central-1/,
  ]);
  const errors = lines.filter((l) => l.startsWith('error '));
  t.match(errors.join('\n'), /^error visibility-timeout \[short\]: visibilityTimeout 2 s is below/m);
  t.match(errors.join('\n'), /^error max-receive-count \[once\]: maxReceiveCount 1/m);
  t.match(errors.join('\n'), /^error in-flight-outage \[wide\]: at 2,000 events\/s/m);
  t.match(r.stdout, /^warning caps \[wide\]: concurrency 50 is above the host's concurrency 10/m);
  t.match(r.stdout, /^warning unreceived-type: MAIL_SENT \(published by handler mail\)/m);
  t.match(r.stdout, /^warning unpublished-type: USER_CREATED \(received by mail\)/m);
  t.match(lines.at(-1), /^check: 7 errors, \d+ warnings, \d+ infos \(4 handlers, topic events, 1 publishers manifest\)$/);
  // --json carries the same findings.
  const json = await cli(['--config', config, '--publishes', manifest, '--json']);
  const report = JSON.parse(json.stdout) as { ok: boolean; findings: Finding[] };
  t.equal(json.code, 1);
  t.equal(report.ok, false);
  t.equal(report.findings.length, lines.length - 1, 'a finding per line');
  t.match(report.findings.find((f) => f.rule === 'max-receive-count'), { level: 'error', queue: 'once' });
});

t.test('usage: a bad manifest exits 2 naming the key', async (t) => {
  const dir = writeHandlers([{ queue: 'a' }]);
  const bad = join(dir, '_bad.json');
  writeFileSync(bad, JSON.stringify({ events: { A: { rate: 1 } } }));
  const r = await cli(['--publishes', bad], { EVENTBUS_HANDLERS_DIR: dir });
  t.equal(r.code, 2, r.out);
  t.match(r.out, /publishers manifest .*_bad\.json: unknown key "events\.A\.rate"/);
  const missing = await cli(['--publishes', join(dir, 'nope.json')], { EVENTBUS_HANDLERS_DIR: dir });
  t.equal(missing.code, 2);
  t.match(missing.out, /nope\.json: ENOENT/);
});

t.test('--live: drift between the declarations and what is provisioned', async (t) => {
  const emu = await emulator();
  t.teardown(() => emu.stop());
  const prefix = `${uniqueName('chk')}-`;
  const topic = uniqueName('topic');
  const decl = [
    { queue: 'orders', events: ['ORDER_PLACED'], visibilityTimeout: 30, maxReceiveCount: 5 },
    { queue: 'mail', events: ['USER_CREATED'] },
    { queue: 'gone' },
  ];
  const dir = writeHandlers(decl);
  const handlers = await loadHandlers({ handlersDir: dir, queuePrefix: prefix, concurrency: 10, queues: {} });
  const topo = await provision(emu, { topic, handlers });
  const config = writeConfig({ endpoint: emu.endpoint, region: 'us-east-1', queuePrefix: prefix, topic, handlersDir: dir, concurrency: 10, failureEvents: { enabled: false } });

  const clean = await cli(['--config', config, '--live', '--json']);
  const c = JSON.parse(clean.stdout) as { live: boolean; findings: Finding[] };
  t.equal(clean.code, 0, clean.out);
  t.equal(c.live, true);
  t.same(c.findings.filter((f) => f.rule.startsWith('live-') && f.level !== 'info'), [], 'freshly provisioned: no drift');
  t.match(c.findings.find((f) => f.rule === 'live-filter-policies-per-topic'), { level: 'info', message: /^2 of 200 filter policies on topic .*, as provisioned; 3 subscriptions in all/ });

  // Drift: a visibility timeout and a maxReceiveCount changed by hand, a filter policy removed,
  // raw delivery turned on, and one queue (with its DLQ) deleted.
  const q = (name: string) => topo.queues.find((x) => x.queue === name)!;
  await emu.sqs.send(
    new SetQueueAttributesCommand({
      QueueUrl: q('orders').url,
      Attributes: { VisibilityTimeout: '5', RedrivePolicy: JSON.stringify({ deadLetterTargetArn: q('orders').dlqArn, maxReceiveCount: 1 }) },
    }),
  );
  await emu.sns.send(new SetSubscriptionAttributesCommand({ SubscriptionArn: q('mail').subscriptionArn!, AttributeName: 'FilterPolicy', AttributeValue: '{}' }));
  await emu.sns.send(new SetSubscriptionAttributesCommand({ SubscriptionArn: q('mail').subscriptionArn!, AttributeName: 'RawMessageDelivery', AttributeValue: 'true' }));
  await emu.sqs.send(new DeleteQueueCommand({ QueueUrl: q('gone').url }));
  await emu.sqs.send(new DeleteQueueCommand({ QueueUrl: q('gone').dlqUrl }));
  await t.rejects(emu.sqs.send(new GetQueueUrlCommand({ QueueName: `${prefix}gone` })), 'the queue is gone');
  t.ok((await emu.sns.send(new ListSubscriptionsByTopicCommand({ TopicArn: topo.topicArn }))).Subscriptions?.length);

  const drift = await cli(['--config', config, '--live']);
  t.equal(drift.code, 1, drift.out);
  const out = drift.stdout;
  t.match(out, /^error live-queue \[gone\]: queue .*gone does not exist \(run eventbus provision\)$/m);
  t.match(out, /^error live-queue \[orders\]: provisioned maxReceiveCount 1/m);
  t.match(out, /^warning live-queue \[orders\]: VisibilityTimeout is 5 s, the handler declares 30/m);
  t.match(out, /^warning live-subscription \[mail\]: filter policy is null, the handler wants \{"event-type":\["USER_CREATED"\]\}/m);
  t.match(out, /^warning live-subscription \[mail\]: raw message delivery/m);
  t.match(out, /^info live-filter-policies-per-topic: 1 of 200 filter policies on topic/m);
  t.match(out, /^info live-account-quotas: account quotas .*`aws service-quotas list-service-quotas --service-code sns`/m);
  // The static rules still run beside the live ones.
  t.match(out, /^info filter-policies-per-topic: 2 of 200/m);
});
