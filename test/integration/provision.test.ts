// Provisioning against fauxqs: topic, queues, DLQs, queue policy, subscriptions; idempotence, dry run, prune.
import { Writable } from 'node:stream';
import t, { type Test } from 'tap';
import { pino } from 'pino';
import type { Logger } from '../../dist/log.js';
import {
  CreateQueueCommand,
  DeleteMessageBatchCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ListQueuesCommand,
  ReceiveMessageCommand,
  SetQueueAttributesCommand,
} from '@aws-sdk/client-sqs';
import {
  GetSubscriptionAttributesCommand,
  ListSubscriptionsByTopicCommand,
  ListTopicsCommand,
  PublishCommand,
  SetSubscriptionAttributesCommand,
  SubscribeCommand,
  type Subscription,
} from '@aws-sdk/client-sns';
import { formatActions, policySid, provision, type ProvisionAction, type ProvisionResult } from '../../dist/publisher/provision.js';
import { createAwsClients, type AwsClients } from '../../dist/aws.js';
import type { ResolvedHandler } from '../../dist/handlers.js';
import { emulator, uniqueName, type TestEmulator } from '../helpers/emulator.js';
import { resolvedHandler } from '../helpers/resolved-handler.js';

type T = Test;

const MUTATING = new Set([
  'CreateTopicCommand',
  'CreateQueueCommand',
  'SetQueueAttributesCommand',
  'SubscribeCommand',
  'SetSubscriptionAttributesCommand',
  'UnsubscribeCommand',
  'DeleteQueueCommand',
  'DeleteTopicCommand',
  'SetTopicAttributesCommand',
  'TagQueueCommand',
  'TagResourceCommand',
]);

const handler = resolvedHandler;

/** A fresh emulator for one test, stopped at its end. */
async function startEmu(t: T): Promise<TestEmulator> {
  const emu = await emulator();
  t.teardown(() => emu.stop());
  return emu;
}

/** Clients on the emulator that record every command name they send. */
function recording(t: T, emu: TestEmulator): { clients: AwsClients; calls: string[]; mutations: () => string[] } {
  const clients = createAwsClients(emu.aws);
  const calls: string[] = [];
  const mw = (next: (args: unknown) => Promise<unknown>, context: { commandName?: string }) => async (args: unknown) => {
    calls.push(context.commandName ?? '?');
    return next(args);
  };
  clients.sqs.middlewareStack.add(mw as never, { step: 'initialize', name: 'recordCalls' });
  clients.sns.middlewareStack.add(mw as never, { step: 'initialize', name: 'recordCalls' });
  t.teardown(() => {
    clients.sqs.destroy();
    clients.sns.destroy();
  });
  return { clients, calls, mutations: () => calls.filter((c) => MUTATING.has(c)) };
}

/** A pino logger whose JSON lines are kept. */
function captureLog(): { log: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l.trim()) lines.push(JSON.parse(l) as Record<string, unknown>);
      cb();
    },
  });
  return { log: pino<never>({ level: 'info' }, stream), lines };
}

const kinds = (r: ProvisionResult) => r.actions.map((a) => a.kind);
const action = (r: ProvisionResult, resource: string): ProvisionAction | undefined => r.actions.find((a) => a.resource === resource);

async function queueAttrs(emu: TestEmulator, url: string): Promise<Record<string, string>> {
  const out = await emu.sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['All'] }));
  return (out.Attributes ?? {}) as Record<string, string>;
}

async function subscriptions(emu: TestEmulator, topicArn: string): Promise<Subscription[]> {
  const subs: Subscription[] = [];
  let next: string | undefined;
  do {
    const page = await emu.sns.send(new ListSubscriptionsByTopicCommand({ TopicArn: topicArn, NextToken: next }));
    subs.push(...(page.Subscriptions ?? []));
    next = page.NextToken;
  } while (next);
  return subs;
}

async function subscriptionAttrs(emu: TestEmulator, topicArn: string, queueArn: string): Promise<Record<string, string>> {
  const sub = (await subscriptions(emu, topicArn)).find((s) => s.Protocol === 'sqs' && s.Endpoint === queueArn);
  if (!sub?.SubscriptionArn) throw new Error(`no subscription for ${queueArn}`);
  const out = await emu.sns.send(new GetSubscriptionAttributesCommand({ SubscriptionArn: sub.SubscriptionArn }));
  return (out.Attributes ?? {}) as Record<string, string>;
}

/** The filter policy in effect: absent, "" and "{}" all mean none. */
function effectiveFilter(attrs: Record<string, string>): unknown {
  const p = attrs.FilterPolicy;
  if (p === undefined || p === '') return null;
  const v = JSON.parse(p) as object;
  return Object.keys(v).length === 0 ? null : v;
}

async function publish(emu: TestEmulator, topicArn: string, type: string): Promise<void> {
  await emu.sns.send(
    new PublishCommand({
      TopicArn: topicArn,
      Message: JSON.stringify({ type, data: {} }),
      MessageAttributes: { 'event-type': { DataType: 'String', StringValue: type } },
    }),
  );
}

/** Receives (and deletes) everything in a queue; returns the event types, sorted. Asserts the SNS envelope. */
async function drainTypes(t: T, emu: TestEmulator, url: string): Promise<string[]> {
  const types: string[] = [];
  for (;;) {
    const out = await emu.sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
    const msgs = out.Messages ?? [];
    if (msgs.length === 0) break;
    for (const m of msgs) {
      const env = JSON.parse(m.Body ?? '') as { Type?: string; Message?: string; MessageAttributes?: Record<string, { Value?: string }> };
      t.equal(env.Type, 'Notification', 'delivered in the SNS envelope (not raw)');
      types.push(env.MessageAttributes?.['event-type']?.Value ?? '?');
    }
    await emu.sqs.send(
      new DeleteMessageBatchCommand({ QueueUrl: url, Entries: msgs.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle! })) }),
    );
  }
  return types.sort();
}

t.test('first run creates the whole topology; a second run changes nothing', async (t) => {
  const emu = await startEmu(t);
  const rec = recording(t, emu);
  const topic = uniqueName('events');
  const email = handler(uniqueName('email'), { events: ['USER_CREATED', 'USER_COMMENT'] });
  const audit = handler(uniqueName('audit'), { visibilityTimeoutSec: 120, maxReceiveCount: 3 });
  const { log, lines } = captureLog();

  const r1 = await provision(rec.clients, { topic, handlers: [email, audit], log });

  t.same(
    r1.actions.map((a) => `${a.kind} ${a.resource}`),
    [
      `create topic ${topic}`,
      `create topic ${topic}.fifo`,
      `create queue ${email.dlqName}`,
      `create queue ${email.queueName}`,
      `create queue policy ${email.queueName}`,
      `create subscription ${email.queueName}`,
      `create queue ${audit.dlqName}`,
      `create queue ${audit.queueName}`,
      `create queue policy ${audit.queueName}`,
      `create subscription ${audit.queueName}`,
    ],
    'every resource created, in handler order',
  );
  t.equal(action(r1, `queue ${email.queueName}`)?.detail, `VisibilityTimeout=30, redrive to ${email.dlqName} after 5, SSE-SQS`);
  const topics = (await emu.sns.send(new ListTopicsCommand({}))).Topics ?? [];
  t.ok(topics.some((x) => x.TopicArn === r1.topicArn), 'the topic exists with the reported ARN');
  t.match(r1.topicArn, new RegExp(`:${topic}$`));

  // Log: one info line per mutation.
  const provisioned = lines.filter((l) => l.msg === 'provisioned');
  t.equal(provisioned.length, r1.actions.length, 'each mutation is logged');
  t.ok(provisioned.every((l) => l.level === 30 && typeof l.resource === 'string' && l.kind === 'create'));

  for (const [h, vt, mrc] of [
    [email, '30', 5],
    [audit, '120', 3],
  ] as const) {
    const q = r1.queues.find((x) => x.queue === h.queue)!;
    t.ok(q, `topology reported for ${h.queue}`);
    t.equal(q.queueName, h.queueName);
    t.equal(q.dlqName, h.dlqName);
    const url = (await emu.sqs.send(new GetQueueUrlCommand({ QueueName: h.queueName }))).QueueUrl!;
    const dlqUrl = (await emu.sqs.send(new GetQueueUrlCommand({ QueueName: h.dlqName }))).QueueUrl!;
    t.equal(q.url, url);
    t.equal(q.dlqUrl, dlqUrl);
    const attrs = await queueAttrs(emu, url);
    const dlqAttrs = await queueAttrs(emu, dlqUrl);
    t.equal(q.arn, attrs.QueueArn);
    t.equal(q.dlqArn, dlqAttrs.QueueArn);
    t.equal(attrs.VisibilityTimeout, vt, 'visibility timeout from the handler');
    const redrive = JSON.parse(attrs.RedrivePolicy!) as { deadLetterTargetArn: string; maxReceiveCount: unknown };
    t.equal(redrive.deadLetterTargetArn, dlqAttrs.QueueArn, 'redrive to the DLQ');
    t.equal(Number(redrive.maxReceiveCount), mrc, 'after maxReceiveCount receives');
    t.equal(dlqAttrs.MessageRetentionPeriod, '1209600', 'DLQ keeps messages 14 days');

    const policy = JSON.parse(attrs.Policy!) as { Statement: Array<Record<string, any>> };
    t.equal(policy.Statement.length, 1);
    t.same(policy.Statement[0], {
      Sid: policySid(topic),
      Effect: 'Allow',
      Principal: { Service: 'sns.amazonaws.com' },
      Action: 'sqs:SendMessage',
      Resource: q.arn,
      Condition: { ArnEquals: { 'aws:SourceArn': r1.topicArn } },
    });

    const sub = await subscriptionAttrs(emu, r1.topicArn, q.arn);
    t.equal(sub.SubscriptionArn, q.subscriptionArn, 'subscription ARN reported');
    t.equal(sub.RawMessageDelivery, 'false', 'SNS envelope, not raw');
    if (h.events) {
      t.same(JSON.parse(sub.FilterPolicy!), { 'event-type': ['USER_COMMENT', 'USER_CREATED'] }, 'filter on event-type, sorted');
      t.equal(sub.FilterPolicyScope, 'MessageAttributes');
    } else {
      t.equal(sub.FilterPolicy, undefined, 'a handler without events has no filter policy');
    }
  }
  const subsAfterFirst = await subscriptions(emu, r1.topicArn);
  t.equal(subsAfterFirst.length, 2);

  // Second run: nothing to do, no mutating call, no new subscription.
  rec.calls.length = 0;
  lines.length = 0;
  const r2 = await provision(rec.clients, { topic, handlers: [email, audit], log });
  t.same(kinds(r2), Array(10).fill('ok'), 'every action ok on the second run');
  t.same(rec.mutations(), [], 'no mutating call on the second run');
  t.ok(rec.calls.length > 0, 'the second run did look');
  t.equal(lines.filter((l) => l.msg === 'provisioned').length, 0, 'nothing logged as provisioned');
  t.same(r2.queues, r1.queues, 'same URLs, ARNs and subscriptions');
  t.equal(r2.topicArn, r1.topicArn);
  t.same(
    (await subscriptions(emu, r1.topicArn)).map((s) => s.SubscriptionArn).sort(),
    subsAfterFirst.map((s) => s.SubscriptionArn).sort(),
    'no duplicate subscriptions',
  );
  t.match(formatActions(r2.actions), /\n0 to create, 0 to update, 0 to delete, 10 ok$/);
});

t.test('filter policies route events; changed events update the filter (and none means every event)', async (t) => {
  const emu = await startEmu(t);
  const rec = recording(t, emu);
  const topic = uniqueName('events');
  const A = 'A_HAPPENED';
  const B = 'B_HAPPENED';
  const C = 'C_HAPPENED';
  let email = handler(uniqueName('email'), { events: [A, B] });
  let billing = handler(uniqueName('billing'), { events: [B] });
  let audit = handler(uniqueName('audit')); // no events: every event
  const r1 = await provision(rec.clients, { topic, handlers: [email, billing, audit] });
  const urlOf = (h: ResolvedHandler) => r1.queues.find((q) => q.queue === h.queue)!.url;
  const arnOf = (h: ResolvedHandler) => r1.queues.find((q) => q.queue === h.queue)!.arn;

  for (const type of [A, B, C]) await publish(emu, r1.topicArn, type);
  const [e1, b1, a1] = await Promise.all([email, billing, audit].map((h) => drainTypes(t, emu, urlOf(h))));
  t.same(e1, [A, B], 'email gets only its events');
  t.same(b1, [B], 'billing gets only its event');
  t.same(a1, [A, B, C], 'a handler without events receives everything');

  // Change every handler's events: a new list, a filter removed, a filter added.
  email = { ...email, events: [C] };
  billing = { ...billing, events: null };
  audit = { ...audit, events: [A] };
  rec.calls.length = 0;
  const r2 = await provision(rec.clients, { topic, handlers: [email, billing, audit] });
  t.equal(action(r2, `subscription ${email.queueName}`)?.kind, 'update');
  t.equal(action(r2, `subscription ${email.queueName}`)?.detail, `event-type in [${A}, ${B}] -> event-type in [${C}]`);
  t.equal(action(r2, `subscription ${billing.queueName}`)?.kind, 'update');
  t.equal(action(r2, `subscription ${billing.queueName}`)?.detail, `event-type in [${B}] -> every event (no filter)`);
  t.equal(action(r2, `subscription ${audit.queueName}`)?.kind, 'update');
  t.same(
    r2.actions.filter((a) => a.kind !== 'ok').map((a) => a.resource).sort(),
    [email, billing, audit].map((h) => `subscription ${h.queueName}`).sort(),
    'only the subscriptions changed',
  );
  t.ok(rec.mutations().length >= 3 && rec.mutations().every((c) => c === 'SetSubscriptionAttributesCommand'), 'updated in place, not resubscribed');
  t.equal((await subscriptions(emu, r1.topicArn)).length, 3, 'still one subscription per queue');

  t.same(effectiveFilter(await subscriptionAttrs(emu, r1.topicArn, arnOf(email))), { 'event-type': [C] });
  t.equal(effectiveFilter(await subscriptionAttrs(emu, r1.topicArn, arnOf(billing))), null, 'filter removed');
  const auditSub = await subscriptionAttrs(emu, r1.topicArn, arnOf(audit));
  t.same(effectiveFilter(auditSub), { 'event-type': [A] }, 'filter added');
  t.equal(auditSub.FilterPolicyScope ?? 'MessageAttributes', 'MessageAttributes');

  for (const type of [A, B, C]) await publish(emu, r1.topicArn, type);
  const [e2, b2, a2] = await Promise.all([email, billing, audit].map((h) => drainTypes(t, emu, urlOf(h))));
  t.same(e2, [C], 'email follows its new filter');
  t.same(b2, [A, B, C], 'billing without a filter now receives everything');
  t.same(a2, [A], 'audit follows its new filter');

  rec.calls.length = 0;
  const r3 = await provision(rec.clients, { topic, handlers: [email, billing, audit] });
  t.ok(kinds(r3).every((k) => k === 'ok'), 'the removed filter counts as no filter on the next run');
  t.same(rec.mutations(), []);
});

t.test('changed visibility timeout and maxReceiveCount are set with SetQueueAttributes (and a dry run only reports them)', async (t) => {
  const emu = await startEmu(t);
  const rec = recording(t, emu);
  const topic = uniqueName('events');
  const h = handler(uniqueName('email'), { events: ['X'] });
  const r1 = await provision(rec.clients, { topic, handlers: [h] });
  const q = r1.queues[0]!;

  const changed = { ...h, visibilityTimeoutSec: 45, maxReceiveCount: 2 };
  rec.calls.length = 0;
  const plan = await provision(rec.clients, { topic, handlers: [changed], dryRun: true });
  t.equal(action(plan, `queue ${h.queueName}`)?.kind, 'update', 'the dry run reports the update');
  t.same(rec.mutations(), [], 'the dry run changes nothing');
  t.equal((await queueAttrs(emu, q.url)).VisibilityTimeout, '30');

  rec.calls.length = 0;
  const r2 = await provision(rec.clients, { topic, handlers: [changed] });
  const upd = action(r2, `queue ${h.queueName}`);
  t.equal(upd?.kind, 'update');
  t.equal(upd?.detail, `VisibilityTimeout 30 -> 45, RedrivePolicy to ${h.dlqName} after 5 -> to ${h.dlqName} after 2`);
  t.same(rec.mutations(), ['SetQueueAttributesCommand'], 'one SetQueueAttributes, nothing else');
  t.same(
    r2.actions.filter((a) => a.kind !== 'ok').map((a) => a.resource),
    [`queue ${h.queueName}`],
  );
  const attrs = await queueAttrs(emu, q.url);
  t.equal(attrs.VisibilityTimeout, '45');
  const redrive = JSON.parse(attrs.RedrivePolicy!) as { deadLetterTargetArn: string; maxReceiveCount: unknown };
  t.equal(Number(redrive.maxReceiveCount), 2);
  t.equal(redrive.deadLetterTargetArn, q.dlqArn, 'still the same DLQ');

  // Drift made by hand is put back; only what differs is set.
  await emu.sqs.send(new SetQueueAttributesCommand({ QueueUrl: q.url, Attributes: { VisibilityTimeout: '99' } }));
  const r3 = await provision(rec.clients, { topic, handlers: [changed] });
  t.equal(action(r3, `queue ${h.queueName}`)?.detail, 'VisibilityTimeout 99 -> 45');
  t.equal((await queueAttrs(emu, q.url)).VisibilityTimeout, '45');
  const r4 = await provision(rec.clients, { topic, handlers: [changed] });
  t.ok(kinds(r4).every((k) => k === 'ok'));
});

t.test('the queue policy statement is merged: foreign statements are kept, a stale one of ours is replaced', async (t) => {
  const emu = await startEmu(t);
  const topic = uniqueName('events');
  const h = handler(uniqueName('email'));
  const foreign = {
    Sid: 'someone-else',
    Effect: 'Allow',
    Principal: { AWS: 'arn:aws:iam::123456789012:root' },
    Action: ['sqs:ReceiveMessage', 'sqs:DeleteMessage'],
    Resource: '*',
  };
  const created = await emu.sqs.send(
    new CreateQueueCommand({
      QueueName: h.queueName,
      Attributes: { Policy: JSON.stringify({ Version: '2012-10-17', Id: 'my-policy', Statement: foreign }) },
    }),
  );
  const url = created.QueueUrl!;

  const r1 = await provision(emu, { topic, handlers: [h] });
  const pol = action(r1, `queue policy ${h.queueName}`);
  t.equal(pol?.kind, 'update', 'an existing policy is updated, not created');
  t.match(pol?.detail, /add statement/);
  t.match(pol?.detail, /kept 1 other statement/);
  let policy = JSON.parse((await queueAttrs(emu, url)).Policy!) as { Id?: string; Version?: string; Statement: Array<Record<string, any>> };
  t.equal(policy.Id, 'my-policy', 'the document Id is kept');
  t.equal(policy.Version, '2012-10-17');
  t.same(policy.Statement.map((s) => s.Sid).sort(), [policySid(topic), 'someone-else'].sort());
  t.same(policy.Statement.find((s) => s.Sid === 'someone-else'), foreign, 'the foreign statement is kept as is');

  const r2 = await provision(emu, { topic, handlers: [h] });
  t.equal(action(r2, `queue policy ${h.queueName}`)?.kind, 'ok', 'equal statement: no change');

  // Someone edits our statement (another source ARN, Action as a one-element array): it is replaced.
  const ours = policy.Statement.find((s) => s.Sid === policySid(topic))!;
  const stale = { ...ours, Action: ['sqs:SendMessage'], Condition: { ArnEquals: { 'aws:SourceArn': 'arn:aws:sns:us-east-1:000000000000:other' } } };
  await emu.sqs.send(
    new SetQueueAttributesCommand({ QueueUrl: url, Attributes: { Policy: JSON.stringify({ ...policy, Statement: [foreign, stale] }) } }),
  );
  const r3 = await provision(emu, { topic, handlers: [h] });
  t.equal(action(r3, `queue policy ${h.queueName}`)?.kind, 'update');
  t.match(action(r3, `queue policy ${h.queueName}`)?.detail, /replace statement/);
  policy = JSON.parse((await queueAttrs(emu, url)).Policy!) as typeof policy;
  t.equal(policy.Statement.length, 2, 'replaced, not added');
  t.same(policy.Statement.find((s) => s.Sid === 'someone-else'), foreign);
  t.same(policy.Statement.find((s) => s.Sid === policySid(topic))?.Condition, { ArnEquals: { 'aws:SourceArn': r1.topicArn } });

  // A one-element array vs a string is the same statement: no churn.
  const equivalent = { ...policy.Statement.find((s) => s.Sid === policySid(topic))!, Action: ['sqs:SendMessage'] };
  await emu.sqs.send(
    new SetQueueAttributesCommand({ QueueUrl: url, Attributes: { Policy: JSON.stringify({ ...policy, Statement: [foreign, equivalent] }) } }),
  );
  const r4 = await provision(emu, { topic, handlers: [h] });
  t.ok(kinds(r4).every((k) => k === 'ok'), 'equivalent policy is ok');
});

t.test('a dry run on a fresh emulator creates nothing and lists the create actions', async (t) => {
  const emu = await startEmu(t);
  const rec = recording(t, emu);
  const topic = uniqueName('events');
  const email = handler(uniqueName('email'), { events: ['USER_CREATED'] });
  const audit = handler(uniqueName('audit'));
  const r = await provision(rec.clients, { topic, handlers: [email, audit], dryRun: true });

  t.same(kinds(r), Array(10).fill('create'), 'everything would be created');
  t.equal(r.topicArn, '(new)');
  t.same(r.queues.map((q) => [q.url, q.arn, q.dlqUrl, q.dlqArn, q.subscriptionArn]), [
    ['(new)', '(new)', '(new)', '(new)', null],
    ['(new)', '(new)', '(new)', '(new)', null],
  ]);
  t.same(rec.mutations(), [], 'no mutating call');
  t.ok(rec.calls.includes('ListTopicsCommand'), 'the topic was looked up with ListTopics');
  t.same((await emu.sqs.send(new ListQueuesCommand({}))).QueueUrls ?? [], [], 'no queue exists');
  t.same((await emu.sns.send(new ListTopicsCommand({}))).Topics ?? [], [], 'no topic exists');
  const plan = formatActions(r.actions);
  t.match(plan, `+ create topic ${topic}`);
  t.match(plan, `+ create topic ${topic}.fifo (SNS FIFO topic`);
  t.match(plan, `+ create queue ${email.queueName} (VisibilityTimeout=30, redrive to ${email.dlqName} after 5, SSE-SQS)`);
  t.match(plan, `+ create subscription ${email.queueName} (event-type in [USER_CREATED], SNS envelope)`);
  t.match(plan, `+ create subscription ${audit.queueName} (every event (no filter), SNS envelope)`);
  t.match(plan, /10 to create, 0 to update, 0 to delete, 0 ok$/);
});

t.test('prune unsubscribes a queue no handler owns, and keeps the queue', async (t) => {
  const emu = await startEmu(t);
  const topic = uniqueName('events');
  const h = handler(uniqueName('email'));
  const r1 = await provision(emu, { topic, handlers: [h] });

  const orphanName = uniqueName('orphan');
  const orphanUrl = (await emu.sqs.send(new CreateQueueCommand({ QueueName: orphanName }))).QueueUrl!;
  const orphanArn = (await queueAttrs(emu, orphanUrl)).QueueArn!;
  await emu.sns.send(new SubscribeCommand({ TopicArn: r1.topicArn, Protocol: 'sqs', Endpoint: orphanArn, ReturnSubscriptionArn: true }));
  t.equal((await subscriptions(emu, r1.topicArn)).length, 2);

  const r2 = await provision(emu, { topic, handlers: [h] });
  t.same(action(r2, `subscription ${orphanName}`), {
    kind: 'ok',
    resource: `subscription ${orphanName}`,
    detail: 'not owned by any handler (use --prune to remove)',
  });
  t.equal((await subscriptions(emu, r1.topicArn)).length, 2, 'without prune the subscription stays');

  const plan = await provision(emu, { topic, handlers: [h], prune: true, dryRun: true });
  t.equal(action(plan, `subscription ${orphanName}`)?.kind, 'delete', 'the dry run reports the delete');
  t.equal((await subscriptions(emu, r1.topicArn)).length, 2, 'and deletes nothing');

  const r3 = await provision(emu, { topic, handlers: [h], prune: true });
  t.equal(action(r3, `subscription ${orphanName}`)?.kind, 'delete');
  const left = await subscriptions(emu, r1.topicArn);
  t.same(left.map((s) => s.Endpoint), [r1.queues[0]!.arn], "only the handler's subscription is left");
  t.equal((await emu.sqs.send(new GetQueueUrlCommand({ QueueName: orphanName }))).QueueUrl, orphanUrl, 'the queue is never deleted');

  const r4 = await provision(emu, { topic, handlers: [h], prune: true });
  t.ok(kinds(r4).every((k) => k === 'ok'), 'nothing left to prune');
});

t.test('subscription drift (raw delivery, body scope) is put back', async (t) => {
  const emu = await startEmu(t);
  const topic = uniqueName('events');
  const h = handler(uniqueName('email'), { events: ['X'] });
  const r1 = await provision(emu, { topic, handlers: [h] });
  const subArn = r1.queues[0]!.subscriptionArn!;
  await emu.sns.send(new SetSubscriptionAttributesCommand({ SubscriptionArn: subArn, AttributeName: 'RawMessageDelivery', AttributeValue: 'true' }));
  await emu.sns.send(new SetSubscriptionAttributesCommand({ SubscriptionArn: subArn, AttributeName: 'FilterPolicyScope', AttributeValue: 'MessageBody' }));

  const r2 = await provision(emu, { topic, handlers: [h] });
  const upd = action(r2, `subscription ${h.queueName}`);
  t.equal(upd?.kind, 'update');
  t.match(upd?.detail, /RawMessageDelivery true -> false/);
  t.match(upd?.detail, /FilterPolicyScope MessageBody -> MessageAttributes/);
  const attrs = (await emu.sns.send(new GetSubscriptionAttributesCommand({ SubscriptionArn: subArn }))).Attributes ?? {};
  t.equal(attrs.RawMessageDelivery, 'false');
  t.equal(attrs.FilterPolicyScope, 'MessageAttributes');
  t.same(JSON.parse(attrs.FilterPolicy!), { 'event-type': ['X'] });

  await publish(emu, r1.topicArn, 'X');
  t.same(await drainTypes(t, emu, r1.queues[0]!.url), ['X'], 'delivered in the envelope again');
});

t.test('a topic given as an ARN is looked up, not listed', async (t) => {
  const emu = await startEmu(t);
  const rec = recording(t, emu);
  const h = handler(uniqueName('email'));
  const r1 = await provision(rec.clients, { topic: uniqueName('events'), handlers: [h] });
  rec.calls.length = 0;
  const r2 = await provision(rec.clients, { topic: r1.topicArn, handlers: [h] });
  t.ok(kinds(r2).every((k) => k === 'ok'), 'same topology through the ARN');
  t.equal(r2.topicArn, r1.topicArn);
  t.ok(rec.calls.includes('GetTopicAttributesCommand'));
  t.notOk(rec.calls.includes('ListTopicsCommand'));
});

t.test('limits and FIFO names fail before any AWS call', async (t) => {
  const emu = await startEmu(t);
  const rec = recording(t, emu);
  const topic = uniqueName('events');
  const ok = handler(uniqueName('ok'), { events: ['A'] });
  const many = handler(uniqueName('many'), { events: Array.from({ length: 151 }, (_, i) => `EVENT_${i}`) });

  await t.rejects(provision(rec.clients, { topic, handlers: [ok, many] }), {
    code: 'ERR_FILTER_POLICY_LIMIT',
    message: new RegExp(`queue ${many.queue}: .*151 value combinations`),
  });
  await t.rejects(provision(rec.clients, { topic, handlers: [ok, many], dryRun: true }), { code: 'ERR_FILTER_POLICY_LIMIT' });

  const fifo = handler('orders.fifo', { queueName: 'orders.fifo', dlqName: 'orders-dlq.fifo' });
  await t.rejects(provision(rec.clients, { topic, handlers: [ok, fifo] }), { code: 'ERR_FIFO_UNSUPPORTED', message: /orders\.fifo/ });
  await t.rejects(provision(rec.clients, { topic: `${topic}.fifo`, handlers: [ok] }), { code: 'ERR_FIFO_UNSUPPORTED', message: /FIFO topics/ });
  await t.rejects(provision(rec.clients, { topic: `arn:aws:sns:us-east-1:000000000000:${topic}.fifo`, handlers: [ok] }), {
    code: 'ERR_FIFO_UNSUPPORTED',
  });

  t.same(rec.calls, [], 'not a single call was made');
  t.same((await emu.sqs.send(new ListQueuesCommand({}))).QueueUrls ?? [], [], 'no queue was created');
  t.same((await emu.sns.send(new ListTopicsCommand({}))).Topics ?? [], [], 'no topic was created');
});
