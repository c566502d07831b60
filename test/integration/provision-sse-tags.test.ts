// Encryption at rest and tags on what provision creates (issue 20): SSE-SQS by default, SSE-KMS
// with sqs.kmsKeyId, config tags on topics, queues and DLQs; reruns converge (dry run shows the
// drift, changes nothing), tags are added or updated and never removed. Asserted through the
// emulator's GetQueueAttributes/ListQueueTags/ListTagsForResource; where fauxqs does not keep or
// take a setting (SetQueueAttributes SqsManagedSseEnabled, S3 bucket tags), the requests sent are
// read through a recording proxy.
import t, { type Test } from 'tap';
import { CreateQueueCommand, GetQueueAttributesCommand, ListQueueTagsCommand, TagQueueCommand } from '@aws-sdk/client-sqs';
import { ListTagsForResourceCommand } from '@aws-sdk/client-sns';
import { provision, type ProvisionResult } from '../../dist/publisher/provision.js';
import { createAwsClients } from '../../dist/aws.js';
import type { ResolvedHandler } from '../../dist/handlers.js';
import { emulator, uniqueName, type TestEmulator } from '../helpers/emulator.js';
import { resolvedHandler } from '../helpers/resolved-handler.js';
import { recordingProxy } from '../helpers/recording-proxy.js';

const handler = (queue: string): ResolvedHandler => resolvedHandler(queue, { events: ['USER_CREATED'] });

async function world(t: Test): Promise<{ emu: TestEmulator; topic: string; h: ResolvedHandler }> {
  const emu = await emulator();
  t.teardown(() => emu.stop());
  return { emu, topic: uniqueName('events'), h: handler(uniqueName('mail')) };
}

const SSE = ['SqsManagedSseEnabled', 'KmsMasterKeyId'] as const;
async function encryption(emu: TestEmulator, url: string) {
  return (await emu.sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: [...SSE] }))).Attributes ?? {};
}
const queueTags = async (emu: TestEmulator, url: string) => (await emu.sqs.send(new ListQueueTagsCommand({ QueueUrl: url }))).Tags ?? {};
const topicTags = async (emu: TestEmulator, arn: string) =>
  Object.fromEntries(((await emu.sns.send(new ListTagsForResourceCommand({ ResourceArn: arn }))).Tags ?? []).map((x) => [x.Key, x.Value]));
const kinds = (r: ProvisionResult) => [...new Set(r.actions.map((a) => a.kind))];
const find = (r: ProvisionResult, resource: string) => r.actions.find((a) => a.resource === resource);

const TAGS = { team: 'payments', 'cost-center': '42' };

t.test('a new topology: queues and DLQs with SSE-SQS, everything tagged; a rerun is all ok', async (t) => {
  const { emu, topic, h } = await world(t);
  const r = await provision(emu, { topic, handlers: [h], tags: TAGS });
  const q = r.queues[0]!;
  for (const url of [q.url, q.dlqUrl]) {
    t.same(await encryption(emu, url), { SqsManagedSseEnabled: 'true' }, 'SSE-SQS, no KMS key');
    t.same(await queueTags(emu, url), TAGS, 'tagged at CreateQueue');
  }
  t.same(await topicTags(emu, r.topicArn), TAGS, 'the topic tagged at CreateTopic');
  t.same(await topicTags(emu, r.fifoTopicArn), TAGS, 'the FIFO topic too');
  t.match(find(r, `queue ${h.queueName}`)?.detail, /SSE-SQS, tags cost-center=42, team=payments$/);
  const again = await provision(emu, { topic, handlers: [h], tags: TAGS });
  t.same(kinds(again), ['ok'], 'nothing to change');
  t.equal(find(again, `tags queue ${h.dlqName}`)?.detail, 'cost-center=42, team=payments');
  t.ok(find(again, `tags topic ${topic}`), 'the topic tags checked');
  // No tags configured: no tag calls, no tag actions.
  const untagged = await provision(emu, { topic, handlers: [h] });
  t.notOk(untagged.actions.some((a) => a.resource.startsWith('tags ')), 'no tags: no tag actions');
});

t.test('tags converge: ours added or updated, others kept; the dry run shows it and changes nothing', async (t) => {
  const { emu, topic, h } = await world(t);
  const first = await provision(emu, { topic, handlers: [h], tags: { team: 'old' } });
  const url = first.queues[0]!.url;
  await emu.sqs.send(new TagQueueCommand({ QueueUrl: url, Tags: { owner: 'alice' } }));
  const plan = await provision(emu, { topic, handlers: [h], tags: TAGS, dryRun: true });
  t.equal(find(plan, `tags queue ${h.queueName}`)?.kind, 'update');
  t.equal(find(plan, `tags queue ${h.queueName}`)?.detail, 'add cost-center=42, team old -> payments');
  t.equal(find(plan, `tags topic ${topic}`)?.detail, 'add cost-center=42, team old -> payments');
  t.same(await queueTags(emu, url), { team: 'old', owner: 'alice' }, 'the dry run changed nothing');
  const applied = await provision(emu, { topic, handlers: [h], tags: TAGS });
  t.equal(find(applied, `tags queue ${h.queueName}`)?.kind, 'update');
  t.same(await queueTags(emu, url), { ...TAGS, owner: 'alice' }, 'ours set, the foreign tag kept');
  t.same(await topicTags(emu, first.topicArn), TAGS);
  // A tag dropped from the config is not removed (only what we set is ours to change, and we never untag).
  const fewer = await provision(emu, { topic, handlers: [h], tags: { team: 'payments' } });
  t.same(kinds(fewer), ['ok']);
  t.same(await queueTags(emu, url), { ...TAGS, owner: 'alice' });
});

t.test('sqs.kmsKeyId: SSE-KMS on create; a changed key converges; without a key a KMS queue is kept', async (t) => {
  const { emu, topic, h } = await world(t);
  const r = await provision(emu, { topic, handlers: [h], kmsKeyId: 'alias/eventbus' });
  const q = r.queues[0]!;
  for (const url of [q.url, q.dlqUrl]) t.same(await encryption(emu, url), { KmsMasterKeyId: 'alias/eventbus' });
  t.match(find(r, `queue ${h.queueName}`)?.detail, /SSE-KMS alias\/eventbus$/);
  t.same(kinds(await provision(emu, { topic, handlers: [h], kmsKeyId: 'alias/eventbus' })), ['ok'], 'rerun: ok');

  const plan = await provision(emu, { topic, handlers: [h], kmsKeyId: 'alias/other', dryRun: true });
  t.same(
    plan.actions.filter((a) => a.kind === 'update').map((a) => [a.resource, a.detail]),
    [
      [`queue ${h.dlqName}`, 'encryption SSE-KMS alias/eventbus -> SSE-KMS alias/other'],
      [`queue ${h.queueName}`, 'encryption SSE-KMS alias/eventbus -> SSE-KMS alias/other'],
    ],
  );
  t.same(await encryption(emu, q.url), { KmsMasterKeyId: 'alias/eventbus' }, 'the dry run changed nothing');
  await provision(emu, { topic, handlers: [h], kmsKeyId: 'alias/other' });
  for (const url of [q.url, q.dlqUrl]) t.same(await encryption(emu, url), { KmsMasterKeyId: 'alias/other' }, 'converged');
  const unset = await provision(emu, { topic, handlers: [h] });
  t.same(kinds(unset), ['ok'], 'no key configured: a KMS-encrypted queue is not weakened to SSE-SQS');
  t.same(await encryption(emu, q.url), { KmsMasterKeyId: 'alias/other' });
});

t.test('an unencrypted queue gets SSE-SQS (SetQueueAttributes, as sent; fauxqs refuses the attribute there)', async (t) => {
  const { emu, topic, h } = await world(t);
  await emu.sqs.send(new CreateQueueCommand({ QueueName: h.queueName, Attributes: { SqsManagedSseEnabled: 'false' } }));
  const plan = await provision(emu, { topic, handlers: [h], dryRun: true });
  t.equal(find(plan, `queue ${h.queueName}`)?.kind, 'update');
  t.match(find(plan, `queue ${h.queueName}`)?.detail, /encryption unencrypted -> SSE-SQS \(SqsManagedSseEnabled=true\)$/);
  const proxy = await recordingProxy(emu.endpoint);
  t.teardown(() => proxy.close());
  const clients = createAwsClients({ ...emu.aws, endpoint: proxy.endpoint });
  t.teardown(() => {
    clients.sqs.destroy();
    clients.sns.destroy();
  });
  // fauxqs 1.9.2 takes SqsManagedSseEnabled on CreateQueue only (docs/fauxqs.md); AWS takes it on both.
  await t.rejects(provision(clients, { topic, handlers: [h] }), { code: 'ERR_AWS', message: new RegExp(`SetQueueAttributes.*${h.queueName}`) });
  const sets = proxy.requests('SetQueueAttributes').map((r) => r.body as { QueueUrl: string; Attributes: Record<string, string> });
  const set = sets.find((s) => s.QueueUrl.endsWith(`/${h.queueName}`) && 'SqsManagedSseEnabled' in s.Attributes);
  t.same(set?.Attributes, { RedrivePolicy: set?.Attributes.RedrivePolicy, SqsManagedSseEnabled: 'true' }, 'the drift fixed in one call: SSE-SQS on, nothing else about encryption');
  t.notOk(sets.some((s) => 'KmsMasterKeyId' in s.Attributes), 'no KMS key sent');
});

t.test('the payloads bucket gets the tags (PutBucketTagging, as sent: fauxqs does not keep bucket tags)', async (t) => {
  const { emu, topic, h } = await world(t);
  const proxy = await recordingProxy(emu.endpoint);
  t.teardown(() => proxy.close());
  const bucket = uniqueName('payloads').toLowerCase();
  const plan = { bucket, prefix: 'eventbus/', retentionDays: 14, s3: { ...emu.aws, endpoint: proxy.endpoint } };
  const dry = await provision(emu, { topic, handlers: [h], payloads: plan, tags: TAGS, dryRun: true });
  t.same(find(dry, `tags bucket ${bucket}`), { kind: 'create', resource: `tags bucket ${bucket}`, detail: 'add cost-center=42, add team=payments' });
  t.equal(proxy.requests().filter((r) => r.method === 'PUT').length, 0, 'the dry run put nothing');
  const r = await provision(emu, { topic, handlers: [h], payloads: plan, tags: TAGS });
  t.equal(find(r, `tags bucket ${bucket}`)?.kind, 'create');
  const puts = proxy.requests().filter((x) => x.method === 'PUT' && /[?&]tagging/.test(x.url));
  t.equal(puts.length, 1, 'one PutBucketTagging');
  t.match(puts[0]!.url, new RegExp(`^/${bucket}/?\\?tagging`), "on the bucket");
  for (const [k, v] of Object.entries(TAGS)) t.match(puts[0]!.text, `<Tag><Key>${k}</Key><Value>${v}</Value></Tag>`, `${k} in the TagSet`);
  t.equal(puts[0]!.status, 200, 'the emulator accepted it');
  // On a rerun the set is read first (GetBucketTagging), to merge: PutBucketTagging replaces the whole set.
  await provision(emu, { topic, handlers: [h], payloads: plan, tags: TAGS });
  t.ok(proxy.requests().some((x) => x.method === 'GET' && /[?&]tagging/.test(x.url)), 'GetBucketTagging before a put');
});
