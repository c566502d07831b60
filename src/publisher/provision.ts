import {
  CreateQueueCommand,
  GetQueueAttributesCommand,
  GetQueueUrlCommand,
  ListQueueTagsCommand,
  SetQueueAttributesCommand,
  TagQueueCommand,
  type QueueAttributeName,
} from '@aws-sdk/client-sqs';
import {
  CreateTopicCommand,
  GetSubscriptionAttributesCommand,
  GetTopicAttributesCommand,
  ListSubscriptionsByTopicCommand,
  ListTagsForResourceCommand,
  SetSubscriptionAttributesCommand,
  SubscribeCommand,
  TagResourceCommand,
  UnsubscribeCommand,
  type Subscription,
} from '@aws-sdk/client-sns';
import type { AwsClients } from '../aws.js';
import { EventBusError, isNotFound, toAwsError } from '../errors.js';
import type { ResolvedHandler } from '../handlers.js';
import type { Logger } from '../log.js';
import { isTopicArn, resolveTopicArn, topicName } from './topic.js';
import type { BucketPlan } from './provision-bucket.js';

/** What provisioning made (or, in a dry run, would make) for one handler. */
export interface QueueTopology {
  /** Logical queue name. */
  queue: string;
  queueName: string;
  url: string;
  arn: string;
  dlqName: string;
  dlqUrl: string;
  dlqArn: string;
  /** null in a dry run when the subscription does not exist yet. */
  subscriptionArn: string | null;
}

/** One step of the plan: what was (or would be) done to one resource. */
export interface ProvisionAction {
  kind: 'create' | 'update' | 'delete' | 'ok';
  /** e.g. 'topic events', 'queue email', 'queue email-dlq', 'queue policy email', 'subscription email'. */
  resource: string;
  detail: string;
}

export interface ProvisionResult {
  topicArn: string;
  /** The FIFO topic of grouped events, which ordered handlers' queues subscribe to. */
  fifoTopicArn: string;
  queues: QueueTopology[];
  actions: ProvisionAction[];
}

export interface ProvisionOptions {
  /** Topic name or ARN. */
  topic: string;
  /** The FIFO topic's name or ARN (config `fifoTopic`); default `<topic>.fifo`. */
  fifoTopic?: string | undefined;
  handlers: ResolvedHandler[];
  /** Only read calls; report what would happen. */
  dryRun?: boolean;
  /** Unsubscribe SQS subscriptions of the topic whose queue no handler owns (never deletes queues). */
  prune?: boolean;
  log?: Logger;
  /** The payloads bucket (README "Large events"): created with its lifecycle rule. Unset: no bucket. */
  payloads?: BucketPlan | null | undefined;
  /**
   * Server-side encryption of the queues and DLQs (config `sqs.kmsKeyId`): a KMS key, or null/unset
   * for SQS-managed keys (SSE-SQS). A queue already encrypted with a KMS key is left so when unset.
   */
  kmsKeyId?: string | null | undefined;
  /** Tags (config `tags`) put on the topics, queues, DLQs and bucket: added or updated, never removed. */
  tags?: Readonly<Record<string, string>> | undefined;
}

/** The message attribute publishers set and subscriptions filter on. */
export const EVENT_TYPE_ATTRIBUTE = 'event-type';
/** DLQ retention: 14 days, the SQS maximum. */
export const DLQ_RETENTION_SEC = 1_209_600;
/** SNS filter-policy limits (AWS SNS quotas). */
export const FILTER_POLICY_MAX_KEYS = 5;
export const FILTER_POLICY_MAX_COMBINATIONS = 150;
export const FILTER_POLICY_MAX_BYTES = 256 * 1024;
/** Placeholder for URLs and ARNs of resources a dry run would create. */
export const NEW_RESOURCE = '(new)';

/** The Sid of the queue-policy statement that lets the topic send; stable so reruns replace, not add. */
export function policySid(topic: string): string {
  // `.fifo` as `-fifo`: a Sid of letters, digits and dashes (the names of standard topics already are).
  return `eventbus-sns-${topicName(topic).replace(/[^A-Za-z0-9_-]/g, '-')}`;
}

/** The subscription filter policy for a handler's events: null = every event (no filter). */
export function filterPolicyFor(events: string[] | null): Record<string, string[]> | null {
  if (events === null) return null;
  return { [EVENT_TYPE_ATTRIBUTE]: [...new Set(events)].sort() };
}

/**
 * Checks a filter policy against the SNS limits (at most 5 keys, at most 150 value combinations:
 * the product of the number of values of every key, and at most 256 KiB) and throws
 * ERR_FILTER_POLICY_LIMIT naming the queue. A key without values would match nothing: also rejected.
 */
export function checkFilterPolicy(policy: Record<string, unknown[]> | null, queue: string): void {
  if (policy === null) return;
  const keys = Object.keys(policy);
  if (keys.length > FILTER_POLICY_MAX_KEYS) {
    throw new EventBusError(
      'ERR_FILTER_POLICY_LIMIT',
      `queue ${queue}: filter policy has ${keys.length} keys; SNS allows at most ${FILTER_POLICY_MAX_KEYS}`,
    );
  }
  let combinations = 1;
  for (const key of keys) {
    const values = policy[key];
    const n = Array.isArray(values) ? values.length : 1;
    if (n === 0) {
      throw new EventBusError('ERR_FILTER_POLICY_LIMIT', `queue ${queue}: filter policy key "${key}" lists no values, so the queue would receive nothing`);
    }
    combinations *= n;
  }
  if (combinations > FILTER_POLICY_MAX_COMBINATIONS) {
    throw new EventBusError(
      'ERR_FILTER_POLICY_LIMIT',
      `queue ${queue}: filter policy has ${combinations} value combinations; SNS allows at most ${FILTER_POLICY_MAX_COMBINATIONS} (subscribe fewer event types)`,
    );
  }
  const bytes = Buffer.byteLength(JSON.stringify(policy), 'utf8');
  if (bytes > FILTER_POLICY_MAX_BYTES) {
    throw new EventBusError('ERR_FILTER_POLICY_LIMIT', `queue ${queue}: filter policy is ${bytes} bytes; SNS allows at most ${FILTER_POLICY_MAX_BYTES}`);
  }
}

const SYMBOL: Record<ProvisionAction['kind'], string> = { create: '+', update: '~', delete: '-', ok: '=' };

/** A human plan/summary: one line per action, then a line of counts. */
export function formatActions(actions: ProvisionAction[]): string {
  const lines = actions.map((a) => `${SYMBOL[a.kind]} ${a.kind} ${a.resource}${a.detail ? ` (${a.detail})` : ''}`);
  const count = (k: ProvisionAction['kind']) => actions.filter((a) => a.kind === k).length;
  lines.push(`${count('create')} to create, ${count('update')} to update, ${count('delete')} to delete, ${count('ok')} ok`);
  return lines.join('\n');
}

/** The resource types of ProvisionAction.resource (`<type> <name>`), longest first for matching. */
const RESOURCE_TYPES = ['bucket lifecycle', 'queue policy', 'subscription', 'tags bucket', 'tags queue', 'tags topic', 'bucket', 'queue', 'topic'] as const;

/** One action of `provision --json`: the stable shape documented in README ("Running in production"). */
export interface ProvisionJsonAction {
  kind: ProvisionAction['kind'];
  /** What kind of resource: one of RESOURCE_TYPES. */
  type: string;
  /** Its name (a queue's SQS name, a topic's, a bucket's). */
  name: string;
  /** `<type> <name>`, as in the text output. */
  resource: string;
  detail: string;
}

/** `eventbus provision --json`: what was done, or in a dry run what would be. */
export function provisionJson(r: ProvisionResult, dryRun: boolean) {
  const actions: ProvisionJsonAction[] = r.actions.map((a) => {
    const type = RESOURCE_TYPES.find((t) => a.resource.startsWith(`${t} `)) ?? a.resource.split(' ')[0]!;
    return { kind: a.kind, type, name: a.resource.slice(type.length + 1), resource: a.resource, detail: a.detail };
  });
  const count = (k: ProvisionAction['kind']) => r.actions.filter((a) => a.kind === k).length;
  return {
    dryRun,
    topicArn: r.topicArn,
    fifoTopicArn: r.fifoTopicArn,
    actions,
    counts: { create: count('create'), update: count('update'), delete: count('delete'), ok: count('ok') },
    queues: r.queues,
  };
}

/**
 * Creates or updates the topology of SPEC "Provisioning": the topic; per handler the DLQ, the queue
 * (visibility timeout, redrive), the queue-policy statement that lets the topic send (merged into
 * any existing policy), and the subscription (SNS envelope, FilterPolicy on `event-type`).
 * Every limit is checked before the first call. Idempotent: a rerun reports only 'ok' and mutates nothing.
 */
export async function provision(clients: AwsClients, opts: ProvisionOptions): Promise<ProvisionResult> {
  const dryRun = opts.dryRun === true;
  const name = topicName(opts.topic);

  const fifoTopic = opts.fifoTopic ?? `${opts.topic}.fifo`;

  // Everything that can be checked without AWS, for every handler, before the first call.
  if (/\.fifo$/i.test(name)) {
    throw new EventBusError('ERR_FIFO_UNSUPPORTED', `topic "${name}": the topic is a standard topic; FIFO topics are supported as fifoTopic (events published with a groupId)`);
  }
  if (!/\.fifo$/.test(topicName(fifoTopic))) throw new EventBusError('ERR_CONFIG_INVALID', `fifoTopic "${fifoTopic}" must end in .fifo`);
  const policies = new Map<ResolvedHandler, Record<string, string[]> | null>();
  for (const h of opts.handlers) {
    for (const q of [h.queueName, h.dlqName]) {
      // A FIFO queue is an ordered handler's (`ordered: true`), named by the loader; and its queues are FIFO.
      if (/\.fifo$/i.test(q) !== (h.ordered === true)) {
        throw new EventBusError(
          'ERR_FIFO_UNSUPPORTED',
          h.ordered ? `queue "${q}" (handler queue ${h.queue}): an ordered handler's queues end in .fifo` : `queue "${q}" (handler queue ${h.queue}): FIFO queues are for ordered handlers (ordered: true)`,
        );
      }
    }
    const policy = filterPolicyFor(h.events);
    checkFilterPolicy(policy, h.queue);
    policies.set(h, policy);
  }

  const p = new Provisioner(clients, dryRun, opts.log, { kmsKeyId: opts.kmsKeyId ?? null, tags: opts.tags ?? {} });
  const actions: ProvisionAction[] = [];

  // Topics: the standard one, and the FIFO one of events published with a groupId. The FIFO topic is
  // made even when no handler here is ordered: publishers send grouped events to it, and an ordered
  // handler of another service may subscribe to it.
  const topic = await p.ensureTopic(opts.topic);
  actions.push(topic.action);
  if (topic.tags) actions.push(topic.tags);
  const topicArn = topic.arn;
  const fifo = await p.ensureTopic(fifoTopic, true);
  actions.push(fifo.action);
  if (fifo.tags) actions.push(fifo.tags);
  const fifoTopicArn = fifo.arn;

  // Subscriptions already on the topics (none when a dry run would create them).
  const sqsSubsOf = async (t: { arn: string; exists: boolean }) =>
    (t.exists ? await p.listSubscriptions(t.arn) : []).filter((s) => s.Protocol === 'sqs' && s.Endpoint && s.SubscriptionArn?.startsWith('arn:'));
  const sqsSubs = await sqsSubsOf(topic);
  const fifoSubs = await sqsSubsOf(fifo);

  // Per handler; a few at a time, results kept in handler order.
  const perHandler = await mapLimit(opts.handlers, 4, async (h) => {
    const acts: ProvisionAction[] = [];
    // An ordered handler's queue and DLQ are FIFO queues (a FIFO queue's DLQ must be FIFO), on the FIFO topic.
    const fifoQueue = h.ordered === true;
    const via = fifoQueue ? { arn: fifoTopicArn, topic: fifoTopic, subs: fifoSubs } : { arn: topicArn, topic: opts.topic, subs: sqsSubs };
    const dlq = await p.ensureQueue(
      h.dlqName,
      [{ name: 'MessageRetentionPeriod', want: String(DLQ_RETENTION_SEC), label: `MessageRetentionPeriod=${DLQ_RETENTION_SEC} (14 days)` }],
      fifoQueue,
    );
    acts.push(dlq.action);
    const dlqTags = await p.queueTags(h.dlqName, dlq.created ? NEW_RESOURCE : dlq.url);
    if (dlqTags) acts.push(dlqTags);
    const redrive = { deadLetterTargetArn: dlq.arn, maxReceiveCount: h.maxReceiveCount };
    const queue = await p.ensureQueue(h.queueName, [
      { name: 'VisibilityTimeout', want: String(h.visibilityTimeoutSec), label: `VisibilityTimeout=${h.visibilityTimeoutSec}` },
      {
        name: 'RedrivePolicy',
        want: JSON.stringify(redrive),
        equal: (have) => sameRedrive(have, redrive),
        label: `redrive to ${h.dlqName} after ${h.maxReceiveCount}`,
        show: (v) => describeRedrive(v, dlq.arn, h.dlqName),
      },
    ], fifoQueue);
    acts.push(queue.action);
    const queueTags = await p.queueTags(h.queueName, queue.created ? NEW_RESOURCE : queue.url);
    if (queueTags) acts.push(queueTags);
    acts.push(await p.ensureQueuePolicy(h.queueName, queue.url, queue.arn, queue.policy, via.arn, via.topic));
    const sub = via.subs.find((s) => s.Endpoint === queue.arn);
    const subscribed = await p.ensureSubscription(h.queueName, via.arn, queue.arn, sub?.SubscriptionArn ?? null, policies.get(h) ?? null, fifoQueue ? topicName(fifoTopic) : null);
    acts.push(subscribed.action);
    const t: QueueTopology = {
      queue: h.queue,
      queueName: h.queueName,
      url: queue.url,
      arn: queue.arn,
      dlqName: h.dlqName,
      dlqUrl: dlq.url,
      dlqArn: dlq.arn,
      subscriptionArn: subscribed.arn,
    };
    return { t, acts };
  });
  for (const r of perHandler) actions.push(...r.acts);

  // The payloads bucket and its lifecycle rule (the S3 SDK is loaded only when one is configured).
  if (opts.payloads) {
    const { ensureBucket } = await import('./provision-bucket.js');
    actions.push(...(await ensureBucket({ ...opts.payloads, tags: opts.tags ?? {} }, dryRun, (a) => {
      if (a.kind !== 'ok' && !dryRun) opts.log?.info({ resource: a.resource, kind: a.kind, detail: a.detail }, 'provisioned');
      return a;
    })));
  }

  // Subscriptions of queues no handler owns.
  const owned = new Set(perHandler.map((r) => r.t.arn));
  for (const s of [...sqsSubs, ...fifoSubs]) {
    if (owned.has(s.Endpoint!)) continue;
    actions.push(await p.foreignSubscription(s, opts.prune === true));
  }

  return { topicArn, fifoTopicArn, queues: perHandler.map((r) => r.t), actions };
}

interface WantedAttribute {
  name: QueueAttributeName;
  want: string;
  equal?: (have: string | undefined) => boolean;
  /** The wanted setting for humans, e.g. `VisibilityTimeout=30`. */
  label: string;
  /** A value (existing or wanted) for humans in an update; default: as is. */
  show?: (value: string | undefined) => string;
}

interface EnsuredQueue {
  /** Created by this run (with our tags), or to be created by a dry run. */
  created: boolean;
  url: string;
  arn: string;
  /** The queue's Policy attribute (undefined for none or a new queue). */
  policy: string | undefined;
  action: ProvisionAction;
}

class Provisioner {
  readonly #c: AwsClients;
  readonly #dryRun: boolean;
  readonly #log: Logger | undefined;
  readonly #kmsKeyId: string | null;
  readonly #tags: Readonly<Record<string, string>>;

  constructor(clients: AwsClients, dryRun: boolean, log: Logger | undefined, settings: { kmsKeyId: string | null; tags: Readonly<Record<string, string>> }) {
    this.#c = clients;
    this.#dryRun = dryRun;
    this.#log = log;
    this.#kmsKeyId = settings.kmsKeyId;
    this.#tags = settings.tags;
  }

  /** Runs one SDK call, wrapping its failure with the operation and target. */
  async #call<T>(op: string, target: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      throw toAwsError(op, target, err);
    }
  }

  /** Records a mutation: logs it (the call was made) and returns the action. */
  #done(action: ProvisionAction): ProvisionAction {
    if (action.kind !== 'ok' && !this.#dryRun) this.#log?.info({ resource: action.resource, kind: action.kind, detail: action.detail }, 'provisioned');
    return action;
  }

  async ensureTopic(topic: string, fifo = false): Promise<{ arn: string; exists: boolean; action: ProvisionAction; tags: ProvisionAction | null }> {
    const name = topicName(topic);
    const resource = `topic ${name}`;
    const kind = fifo ? 'SNS FIFO topic (ContentBasedDeduplication off: the event id deduplicates)' : 'SNS topic';
    let arn: string | null = null;
    if (isTopicArn(topic)) {
      // An ARN: one read call instead of paging through every topic of the account.
      try {
        await this.#c.sns.send(new GetTopicAttributesCommand({ TopicArn: topic }));
        arn = topic;
      } catch (err) {
        if (!isNotFound(err)) throw toAwsError('GetTopicAttributes', topic, err);
      }
    } else {
      try {
        arn = await resolveTopicArn(this.#c.sns, name);
      } catch (err) {
        if (!(err instanceof EventBusError && err.code === 'ERR_TOPIC_NOT_FOUND')) throw err;
      }
    }
    if (arn) return { arn, exists: true, action: { kind: 'ok', resource, detail: arn }, tags: await this.#topicTags(name, arn) };
    const tagged = Object.keys(this.#tags).length ? `, tags ${describeTags(this.#tags)}` : '';
    if (this.#dryRun) return { arn: NEW_RESOURCE, exists: false, action: { kind: 'create', resource, detail: `${kind}${tagged}` }, tags: null };
    // CreateTopic is idempotent: a topic another host created meanwhile is returned as is.
    const attributes = fifo ? { Attributes: { FifoTopic: 'true', ContentBasedDeduplication: 'false' } } : {};
    const tags = Object.keys(this.#tags).length ? { Tags: Object.entries(this.#tags).map(([Key, Value]) => ({ Key, Value })) } : {};
    const out = await this.#call('CreateTopic', name, () => this.#c.sns.send(new CreateTopicCommand({ Name: name, ...attributes, ...tags })));
    const created = out.TopicArn;
    if (!created) throw toAwsError('CreateTopic', name, new Error('no TopicArn in the response'));
    if (isTopicArn(topic) && created !== topic) {
      throw new EventBusError(
        'ERR_TOPIC_NOT_FOUND',
        `SNS topic ${topic} does not exist, and these credentials/region create ${created} instead: configure the topic by name, or fix the region/account`,
      );
    }
    return { arn: created, exists: true, action: this.#done({ kind: 'create', resource, detail: `${kind} ${created}${tagged}` }), tags: null };
  }

  /** Adds or updates our tags on an existing topic (ListTagsForResource, TagResource); null when there are none to set. */
  async #topicTags(name: string, arn: string): Promise<ProvisionAction | null> {
    if (Object.keys(this.#tags).length === 0) return null;
    const got = await this.#call('ListTagsForResource', arn, () => this.#c.sns.send(new ListTagsForResourceCommand({ ResourceArn: arn })));
    const have = Object.fromEntries((got.Tags ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));
    const resource = `tags topic ${name}`;
    const diff = tagDiff(have, this.#tags);
    if (!diff) return { kind: 'ok', resource, detail: describeTags(this.#tags) };
    if (!this.#dryRun) {
      await this.#call('TagResource', arn, () => this.#c.sns.send(new TagResourceCommand({ ResourceArn: arn, Tags: Object.entries(diff.set).map(([Key, Value]) => ({ Key, Value })) })));
    }
    return this.#done({ kind: 'update', resource, detail: diff.detail });
  }

  /** Adds or updates our tags on an existing queue (ListQueueTags, TagQueue); null when there are none to set. */
  async queueTags(queueName: string, url: string): Promise<ProvisionAction | null> {
    if (Object.keys(this.#tags).length === 0 || url === NEW_RESOURCE) return null;
    const got = await this.#call('ListQueueTags', queueName, () => this.#c.sqs.send(new ListQueueTagsCommand({ QueueUrl: url })));
    const resource = `tags queue ${queueName}`;
    const diff = tagDiff(got.Tags ?? {}, this.#tags);
    if (!diff) return { kind: 'ok', resource, detail: describeTags(this.#tags) };
    if (!this.#dryRun) await this.#call('TagQueue', queueName, () => this.#c.sqs.send(new TagQueueCommand({ QueueUrl: url, Tags: diff.set })));
    return this.#done({ kind: 'update', resource, detail: diff.detail });
  }

  /** The encryption wanted for a new queue: SSE-KMS with the configured key, else SSE-SQS. */
  #encryptionOnCreate(): Record<string, string> {
    return this.#kmsKeyId ? { KmsMasterKeyId: this.#kmsKeyId } : { SqsManagedSseEnabled: 'true' };
  }

  /**
   * The change that brings an existing queue's encryption in line, or null: with a KMS key, its
   * KmsMasterKeyId; without one, SSE-SQS on an unencrypted queue, and a queue already encrypted with
   * some KMS key is kept (eventbus never weakens encryption set elsewhere). A backend that reports
   * neither attribute (an emulator) is left as is.
   */
  #encryptionDrift(got: Partial<Record<string, string>>): { attrs: Record<string, string>; detail: string } | null {
    const key = got.KmsMasterKeyId ?? '';
    const sqsManaged = got.SqsManagedSseEnabled;
    const now = key ? `SSE-KMS ${key}` : sqsManaged === 'true' ? 'SSE-SQS' : sqsManaged === undefined ? 'not reported' : 'unencrypted';
    if (this.#kmsKeyId) {
      if (key === this.#kmsKeyId) return null;
      return { attrs: { KmsMasterKeyId: this.#kmsKeyId }, detail: `encryption ${now} -> SSE-KMS ${this.#kmsKeyId}` };
    }
    if (key || sqsManaged === 'true' || sqsManaged === undefined) return null;
    return { attrs: { SqsManagedSseEnabled: 'true' }, detail: `encryption ${now} -> SSE-SQS (SqsManagedSseEnabled=true)` };
  }

  async listSubscriptions(topicArn: string): Promise<Subscription[]> {
    const subs: Subscription[] = [];
    let next: string | undefined;
    do {
      const page = await this.#call('ListSubscriptionsByTopic', topicArn, () =>
        this.#c.sns.send(new ListSubscriptionsByTopicCommand({ TopicArn: topicArn, NextToken: next })),
      );
      subs.push(...(page.Subscriptions ?? []));
      next = page.NextToken;
    } while (next);
    return subs;
  }

  /** Looks a queue up; creates it, or sets only the attributes that differ. */
  async ensureQueue(queueName: string, wanted: WantedAttribute[], fifo = false): Promise<EnsuredQueue> {
    const resource = `queue ${queueName}`;
    // FifoQueue is set only at creation (SQS cannot change it; a .fifo name is always a FIFO queue).
    const encryption = this.#kmsKeyId ? `SSE-KMS ${this.#kmsKeyId}` : 'SSE-SQS';
    const tagged = Object.keys(this.#tags).length ? [`tags ${describeTags(this.#tags)}`] : [];
    const describeAll = [...(fifo ? ['FIFO'] : []), ...wanted.map((w) => w.label), encryption].join(', ');
    let url: string | undefined;
    try {
      url = (await this.#c.sqs.send(new GetQueueUrlCommand({ QueueName: queueName }))).QueueUrl;
    } catch (err) {
      if (!isNotFound(err)) throw toAwsError('GetQueueUrl', queueName, err);
    }
    if (!url) {
      const action: ProvisionAction = { kind: 'create', resource, detail: [describeAll, ...tagged].join(', ') };
      if (this.#dryRun) return { created: true, url: NEW_RESOURCE, arn: NEW_RESOURCE, policy: undefined, action };
      const attrs: Record<string, string> = { ...Object.fromEntries(wanted.map((w) => [w.name, w.want])), ...this.#encryptionOnCreate() };
      if (fifo) attrs.FifoQueue = 'true';
      const tags = Object.keys(this.#tags).length ? { tags: { ...this.#tags } } : {};
      const created = await this.#call('CreateQueue', queueName, () =>
        this.#c.sqs.send(new CreateQueueCommand({ QueueName: queueName, Attributes: attrs, ...tags })),
      );
      const newUrl = created.QueueUrl;
      if (!newUrl) throw toAwsError('CreateQueue', queueName, new Error('no QueueUrl in the response'));
      const got = await this.#attributes(queueName, newUrl, ['QueueArn', 'Policy']);
      return { created: true, url: newUrl, arn: required(got, 'QueueArn', queueName), policy: got.Policy, action: this.#done(action) };
    }
    const foundUrl = url;
    const got = await this.#attributes(queueName, foundUrl, ['QueueArn', 'Policy', ...wanted.map((w) => w.name), 'SqsManagedSseEnabled', 'KmsMasterKeyId']);
    const arn = required(got, 'QueueArn', queueName);
    const diff = wanted.filter((w) => !(w.equal ? w.equal(got[w.name]) : got[w.name] === w.want));
    const sse = this.#encryptionDrift(got);
    if (diff.length === 0 && !sse) return { created: false, url: foundUrl, arn, policy: got.Policy, action: { kind: 'ok', resource, detail: describeAll } };
    const show = (w: WantedAttribute, v: string | undefined) => (w.show ? w.show(v) : (v ?? 'unset'));
    const detail = [...diff.map((w) => `${w.name} ${show(w, got[w.name])} -> ${show(w, w.want)}`), ...(sse ? [sse.detail] : [])].join(', ');
    const action: ProvisionAction = { kind: 'update', resource, detail };
    if (!this.#dryRun) {
      const attrs = { ...Object.fromEntries(diff.map((w) => [w.name, w.want])), ...sse?.attrs };
      await this.#call('SetQueueAttributes', queueName, () => this.#c.sqs.send(new SetQueueAttributesCommand({ QueueUrl: foundUrl, Attributes: attrs })));
    }
    return { created: false, url: foundUrl, arn, policy: got.Policy, action: this.#done(action) };
  }

  async #attributes(queueName: string, url: string, names: QueueAttributeName[]): Promise<Partial<Record<string, string>>> {
    const out = await this.#call('GetQueueAttributes', queueName, () =>
      this.#c.sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: [...new Set(names)] })),
    );
    return out.Attributes ?? {};
  }

  /** Merges our statement (stable Sid) into the queue policy: other statements are kept. */
  async ensureQueuePolicy(queueName: string, url: string, queueArn: string, current: string | undefined, topicArn: string, topic: string): Promise<ProvisionAction> {
    const resource = `queue policy ${queueName}`;
    const sid = policySid(topic);
    const ours: PolicyStatement = {
      Sid: sid,
      Effect: 'Allow',
      Principal: { Service: 'sns.amazonaws.com' },
      Action: 'sqs:SendMessage',
      Resource: queueArn,
      Condition: { ArnEquals: { 'aws:SourceArn': topicArn } },
    };
    let doc: PolicyDocument | null = null;
    if (current !== undefined && current.trim() !== '') {
      try {
        doc = JSON.parse(current) as PolicyDocument;
      } catch (err) {
        throw new EventBusError('ERR_AWS', `queue ${queueName}: its Policy attribute is not valid JSON, so the statement for the topic cannot be merged into it; fix or remove the policy`, { cause: err });
      }
      if (!doc || typeof doc !== 'object' || Array.isArray(doc)) {
        throw new EventBusError('ERR_AWS', `queue ${queueName}: its Policy attribute is not a JSON policy document; fix or remove the policy`);
      }
    }
    const statements: PolicyStatement[] = doc?.Statement === undefined ? [] : Array.isArray(doc.Statement) ? doc.Statement : [doc.Statement];
    const others = statements.filter((s) => s?.Sid !== sid);
    const existing = statements.find((s) => s?.Sid === sid);
    const detail = `allow topic ${topicName(topic)} to send (Sid ${sid})`;
    if (existing && canonicalEqual(existing, ours)) return { kind: 'ok', resource, detail };
    const kept = others.length ? `, kept ${others.length} other statement${others.length === 1 ? '' : 's'}` : '';
    const action: ProvisionAction = doc
      ? { kind: 'update', resource, detail: `${existing ? 'replace' : 'add'} statement: ${detail}${kept}` }
      : { kind: 'create', resource, detail };
    if (!this.#dryRun) {
      const merged: PolicyDocument = { ...(doc ?? {}), Version: doc?.Version ?? '2012-10-17', Statement: [...others, ours] };
      await this.#call('SetQueueAttributes', `${queueName} (Policy)`, () =>
        this.#c.sqs.send(new SetQueueAttributesCommand({ QueueUrl: url, Attributes: { Policy: JSON.stringify(merged) } })),
      );
    }
    return this.#done(action);
  }

  /**
   * Subscribes the queue with the SNS envelope and the filter policy, or brings an existing
   * subscription in line: FilterPolicyScope, FilterPolicy (compared parsed), RawMessageDelivery false.
   */
  async ensureSubscription(
    queueName: string,
    topicArn: string,
    queueArn: string,
    existingArn: string | null,
    policy: Record<string, string[]> | null,
    /** The FIFO topic's name, for an ordered handler's queue (shown in the plan). */
    fifoTopic: string | null = null,
  ): Promise<{ arn: string | null; action: ProvisionAction }> {
    const resource = `subscription ${queueName}`;
    const describe = `${fifoTopic ? `to ${fifoTopic}, ` : ''}${describePolicy(policy)}, SNS envelope`;
    if (!existingArn) {
      const action: ProvisionAction = { kind: 'create', resource, detail: describe };
      if (this.#dryRun) return { arn: null, action };
      const attributes: Record<string, string> = { RawMessageDelivery: 'false' };
      if (policy) {
        attributes.FilterPolicy = JSON.stringify(policy);
        attributes.FilterPolicyScope = 'MessageAttributes';
      }
      const out = await this.#call('Subscribe', queueName, () =>
        this.#c.sns.send(new SubscribeCommand({ TopicArn: topicArn, Protocol: 'sqs', Endpoint: queueArn, Attributes: attributes, ReturnSubscriptionArn: true })),
      );
      return { arn: out.SubscriptionArn ?? null, action: this.#done(action) };
    }
    const got = await this.#call('GetSubscriptionAttributes', existingArn, () =>
      this.#c.sns.send(new GetSubscriptionAttributesCommand({ SubscriptionArn: existingArn })),
    );
    const attrs = got.Attributes ?? {};
    const havePolicy = parseFilterPolicy(attrs.FilterPolicy);
    const changes: Array<{ name: string; value: string; detail: string }> = [];
    // Scope first, so the new policy is never applied to the wrong scope.
    if (policy && (attrs.FilterPolicyScope ?? 'MessageAttributes') !== 'MessageAttributes') {
      changes.push({ name: 'FilterPolicyScope', value: 'MessageAttributes', detail: `FilterPolicyScope ${attrs.FilterPolicyScope} -> MessageAttributes` });
    }
    if (!canonicalEqual(havePolicy, policy)) {
      // Removing a filter policy: AWS documents SetSubscriptionAttributes FilterPolicy "{}" for it
      // (the SetSubscriptionAttributes CLI example "removes the FilterPolicy attribute"); AWS also
      // accepts "" (moto matched that against AWS, getmoto/moto#7251). fauxqs stores either value as
      // given and treats both as no filter ("" is falsy, {} matches every message), and then returns
      // FilterPolicy "{}" from GetSubscriptionAttributes, where AWS omits the attribute: so "",
      // "{}" and a missing attribute all count as "no filter policy" here.
      changes.push({
        name: 'FilterPolicy',
        value: policy ? JSON.stringify(policy) : '{}',
        detail: `${describePolicy(havePolicy)} -> ${describePolicy(policy)}`,
      });
    }
    if ((attrs.RawMessageDelivery ?? 'false') !== 'false') {
      changes.push({ name: 'RawMessageDelivery', value: 'false', detail: `RawMessageDelivery ${attrs.RawMessageDelivery} -> false (SNS envelope)` });
    }
    if (changes.length === 0) return { arn: existingArn, action: { kind: 'ok', resource, detail: describe } };
    if (!this.#dryRun) {
      for (const c of changes) {
        await this.#call('SetSubscriptionAttributes', `${existingArn} (${c.name})`, () =>
          this.#c.sns.send(new SetSubscriptionAttributesCommand({ SubscriptionArn: existingArn, AttributeName: c.name, AttributeValue: c.value })),
        );
      }
    }
    return { arn: existingArn, action: this.#done({ kind: 'update', resource, detail: changes.map((c) => c.detail).join(', ') }) };
  }

  /** A subscription of the topic to a queue no handler owns: unsubscribed with prune, else reported. */
  async foreignSubscription(s: Subscription, prune: boolean): Promise<ProvisionAction> {
    const arn = s.SubscriptionArn!;
    const resource = `subscription ${queueNameOfArn(s.Endpoint!)}`;
    if (!prune) return { kind: 'ok', resource, detail: 'not owned by any handler (use --prune to remove)' };
    if (!this.#dryRun) {
      await this.#call('Unsubscribe', arn, () => this.#c.sns.send(new UnsubscribeCommand({ SubscriptionArn: arn })));
    }
    return this.#done({ kind: 'delete', resource, detail: `not owned by any handler: unsubscribe ${arn} (the queue is kept)` });
  }
}

/** `k=v, k2=v2`, sorted by key. */
export function describeTags(tags: Readonly<Record<string, string>>): string {
  return Object.keys(tags)
    .sort()
    .map((k) => `${k}=${tags[k]}`)
    .join(', ');
}

/** Our tags that are missing or differ on a resource (others are never touched), or null. */
export function tagDiff(have: Readonly<Record<string, string>>, want: Readonly<Record<string, string>>): { set: Record<string, string>; detail: string } | null {
  const set: Record<string, string> = {};
  const parts: string[] = [];
  for (const k of Object.keys(want).sort()) {
    if (have[k] === want[k]) continue;
    set[k] = want[k]!;
    parts.push(have[k] === undefined ? `add ${k}=${want[k]}` : `${k} ${have[k]} -> ${want[k]}`);
  }
  return parts.length ? { set, detail: parts.join(', ') } : null;
}

interface PolicyStatement {
  Sid?: string;
  [k: string]: unknown;
}
interface PolicyDocument {
  Version?: string;
  Id?: string;
  Statement?: PolicyStatement | PolicyStatement[];
  [k: string]: unknown;
}

function required(attrs: Partial<Record<string, string>>, name: string, queueName: string): string {
  const v = attrs[name];
  if (!v) throw toAwsError('GetQueueAttributes', queueName, new Error(`no ${name} in the response`));
  return v;
}

function parseJson(s: string | undefined): unknown {
  if (s === undefined) return undefined;
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
}

function sameRedrive(have: string | undefined, want: { deadLetterTargetArn: string; maxReceiveCount: number }): boolean {
  const r = parseJson(have) as { deadLetterTargetArn?: unknown; maxReceiveCount?: unknown } | undefined;
  // AWS returns maxReceiveCount as a number; some emulators echo the string that was set.
  return !!r && typeof r === 'object' && r.deadLetterTargetArn === want.deadLetterTargetArn && Number(r.maxReceiveCount) === want.maxReceiveCount;
}

/** `to <dlq name> after <n>` for a RedrivePolicy value; the DLQ a dry run would create is shown by name. */
function describeRedrive(value: string | undefined, dlqArn: string, dlqName: string): string {
  const r = parseJson(value) as { deadLetterTargetArn?: unknown; maxReceiveCount?: unknown } | undefined;
  if (!r || typeof r !== 'object') return value ? `"${value}"` : 'unset';
  const arn = r.deadLetterTargetArn;
  const target = arn === dlqArn ? dlqName : typeof arn === 'string' ? queueNameOfArn(arn) : String(arn);
  return `to ${target} after ${String(r.maxReceiveCount)}`;
}

/** A stored filter policy: absent, "" and {} all mean no filter (see ensureSubscription). */
function parseFilterPolicy(s: string | undefined): unknown {
  if (s === undefined || s.trim() === '') return null;
  const v = parseJson(s);
  if (v === undefined) return s; // not JSON: differs from anything we want, so it is replaced
  if (v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 0) return null;
  return v;
}

function describePolicy(p: unknown): string {
  if (p === null) return 'every event (no filter)';
  const values = (p as Record<string, unknown>)[EVENT_TYPE_ATTRIBUTE];
  const keys = typeof p === 'object' ? Object.keys(p as object) : [];
  if (Array.isArray(values) && keys.length === 1 && values.every((v) => typeof v === 'string')) {
    return `${EVENT_TYPE_ATTRIBUTE} in [${values.join(', ')}]`;
  }
  return `FilterPolicy ${typeof p === 'string' ? p : JSON.stringify(p)}`;
}

/** The resource name at the end of an ARN (for messages only: ARNs are never built from names). */
function queueNameOfArn(arn: string): string {
  return arn.split(':').pop() || arn;
}

/**
 * Structural equality for JSON policies: object keys in any order, and a one-element array equal to
 * its element (IAM allows "Action": "x" and ["x"]; services may store either).
 */
export function canonicalEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

function canonical(v: unknown): unknown {
  if (Array.isArray(v)) {
    const items = v.map(canonical);
    return items.length === 1 ? items[0] : items;
  }
  if (v && typeof v === 'object') {
    return Object.fromEntries(
      Object.keys(v as object)
        .sort()
        .map((k) => [k, canonical((v as Record<string, unknown>)[k])]),
    );
  }
  return v;
}

/** Maps with at most `limit` calls of `fn` running at once; results in input order. */
async function mapLimit<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const worker = async () => {
    while (!failed && next < items.length) {
      const i = next++;
      try {
        out[i] = await fn(items[i]!);
      } catch (err) {
        failed = true; // the others finish their current item and stop
        throw err;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
