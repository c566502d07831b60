// `eventbus provision --json` (issue 20): the plan (--dry-run) and what was done, in the documented
// shape, through the real CLI against the emulator; with tags and a KMS key from the env.
import t from 'tap';
import { GetQueueAttributesCommand, GetQueueUrlCommand } from '@aws-sdk/client-sqs';
import { emulator, uniqueName } from '../helpers/emulator.js';
import { spawnNode, writeConfig, writeHandlers } from '../helpers/process.js';

interface Plan {
  dryRun: boolean;
  topicArn: string;
  fifoTopicArn: string;
  actions: Array<{ kind: string; type: string; name: string; resource: string; detail: string }>;
  counts: { create: number; update: number; delete: number; ok: number };
  queues: Array<{ queue: string; queueName: string; url: string; arn: string; dlqName: string; dlqUrl: string; dlqArn: string; subscriptionArn: string | null }>;
}

t.test('provision --json: plan, apply, rerun', async (t) => {
  const emu = await emulator();
  t.teardown(() => emu.stop());
  const prefix = `${uniqueName('pj')}-`;
  const topic = uniqueName('events');
  const config = writeConfig({ endpoint: emu.endpoint, region: 'us-east-1', queuePrefix: prefix, topic, handlersDir: writeHandlers([{ queue: 'mail', events: ['USER_CREATED'] }]) });
  const env = { EVENTBUS_TAGS: 'team=payments', EVENTBUS_SQS_KMS_KEY_ID: 'alias/eventbus' };
  const run = async (...args: string[]) => {
    const p = spawnNode('bin/eventbus.js', ['provision', '--json', '--config', config, ...args], env);
    let stdout = '';
    p.child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
    const exit = await p.exited;
    t.equal(exit.code, 0, p.output());
    return JSON.parse(stdout) as Plan;
  };

  const plan = await run('--dry-run');
  t.equal(plan.dryRun, true);
  t.equal(plan.topicArn, '(new)', 'a topic the dry run would create has no ARN yet');
  t.same(
    plan.actions.map((a) => [a.kind, a.type, a.name]),
    [
      ['create', 'topic', topic],
      ['create', 'topic', `${topic}.fifo`],
      ['create', 'queue', `${prefix}mail-dlq`],
      ['create', 'queue', `${prefix}mail`],
      ['create', 'queue policy', `${prefix}mail`],
      ['create', 'subscription', `${prefix}mail`],
    ],
  );
  for (const a of plan.actions) t.equal(a.resource, `${a.type} ${a.name}`, 'resource = type name');
  t.match(plan.actions[3]!.detail, /SSE-KMS alias\/eventbus, tags team=payments$/);
  t.same(plan.counts, { create: 6, update: 0, delete: 0, ok: 0 });
  t.same(plan.queues.map((q) => [q.queue, q.queueName, q.url]), [['mail', `${prefix}mail`, '(new)']]);

  const applied = await run();
  t.equal(applied.dryRun, false);
  t.match(applied.topicArn, /^arn:aws:sns:/);
  t.same(applied.counts, { create: 6, update: 0, delete: 0, ok: 0 });
  t.match(applied.queues[0], { queueName: `${prefix}mail`, dlqName: `${prefix}mail-dlq`, subscriptionArn: /^arn:/ });
  const url = (await emu.sqs.send(new GetQueueUrlCommand({ QueueName: `${prefix}mail` }))).QueueUrl!;
  t.equal((await emu.sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['KmsMasterKeyId'] }))).Attributes?.KmsMasterKeyId, 'alias/eventbus');

  const rerun = await run();
  t.same(rerun.counts.create + rerun.counts.update + rerun.counts.delete, 0, 'nothing to do');
  t.same(
    rerun.actions.map((a) => a.type),
    ['topic', 'tags topic', 'topic', 'tags topic', 'queue', 'tags queue', 'queue', 'tags queue', 'queue policy', 'subscription'],
    'the tags checked on every resource',
  );
});
