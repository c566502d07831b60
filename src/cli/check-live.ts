// Reads what `eventbus check --live` compares: the handlers' queues and DLQs (GetQueueUrl,
// GetQueueAttributes) and the topic's subscriptions (ListSubscriptionsByTopic,
// GetSubscriptionAttributes). Read calls only.
import { GetQueueAttributesCommand, type SQSClient } from '@aws-sdk/client-sqs';
import { GetSubscriptionAttributesCommand, ListSubscriptionsByTopicCommand, type SNSClient } from '@aws-sdk/client-sns';
import type { AwsClients } from '../aws.js';
import type { CheckHandler } from '../check/input.js';
import type { LiveQueue, LiveSnapshot, LiveSubscription } from '../check/live.js';
import { EventBusError, isNotFound, toAwsError } from '../errors.js';
import { isTopicArn, resolveTopicArn } from '../publisher/topic.js';
import { queueUrlOrNull } from './status.js';

async function call<T>(op: string, target: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw toAwsError(op, target, err);
  }
}

async function attributes(sqs: SQSClient, queueName: string, url: string, names: string[]): Promise<Partial<Record<string, string>> | null> {
  try {
    return (await sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: names as never }))).Attributes ?? {};
  } catch (err) {
    if (isNotFound(err)) return null;
    throw toAwsError('GetQueueAttributes', queueName, err);
  }
}

async function readQueue(sqs: SQSClient, h: CheckHandler): Promise<LiveQueue> {
  const missing: LiveQueue = { queue: h.queue, exists: false, arn: null, visibilityTimeoutSec: null, redrive: null, inFlight: null, dlqExists: false, dlqArn: null };
  const [url, dlqUrl] = await Promise.all([queueUrlOrNull(sqs, h.queueName), queueUrlOrNull(sqs, h.dlqName)]);
  const dlq = dlqUrl ? await attributes(sqs, h.dlqName, dlqUrl, ['QueueArn']) : null;
  const base = { ...missing, dlqExists: dlq !== null, dlqArn: dlq?.QueueArn ?? null };
  if (!url) return base;
  const a = await attributes(sqs, h.queueName, url, ['QueueArn', 'VisibilityTimeout', 'RedrivePolicy', 'ApproximateNumberOfMessagesNotVisible']);
  if (!a) return base;
  let redrive: LiveQueue['redrive'] = null;
  try {
    const r = a.RedrivePolicy ? (JSON.parse(a.RedrivePolicy) as { maxReceiveCount?: unknown; deadLetterTargetArn?: unknown }) : null;
    // AWS returns maxReceiveCount as a number; some emulators echo the string that was set.
    if (r) redrive = { maxReceiveCount: Number(r.maxReceiveCount), deadLetterTargetArn: String(r.deadLetterTargetArn) };
  } catch {
    redrive = null;
  }
  const num = (v: string | undefined) => (v === undefined || !Number.isFinite(Number(v)) ? null : Number(v));
  return { ...base, exists: true, arn: a.QueueArn ?? null, visibilityTimeoutSec: num(a.VisibilityTimeout), redrive, inFlight: num(a.ApproximateNumberOfMessagesNotVisible) };
}

/** A stored filter policy: absent, "" and {} all mean none (as provisioning compares them). */
function parsePolicy(s: string | undefined): unknown {
  if (s === undefined || s.trim() === '') return null;
  try {
    const v = JSON.parse(s) as unknown;
    return v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 0 ? null : v;
  } catch {
    return s;
  }
}

async function readSubscriptions(sns: SNSClient, topicArn: string): Promise<LiveSubscription[]> {
  const out: LiveSubscription[] = [];
  let next: string | undefined;
  do {
    const page = await call('ListSubscriptionsByTopic', topicArn, () => sns.send(new ListSubscriptionsByTopicCommand({ TopicArn: topicArn, NextToken: next })));
    for (const s of page.Subscriptions ?? []) {
      // A pending confirmation has no ARN yet, and no attributes to read.
      if (!s.SubscriptionArn?.startsWith('arn:')) continue;
      const arn = s.SubscriptionArn;
      const a = (await call('GetSubscriptionAttributes', arn, () => sns.send(new GetSubscriptionAttributesCommand({ SubscriptionArn: arn })))).Attributes ?? {};
      out.push({ protocol: s.Protocol ?? '', endpoint: s.Endpoint ?? '', filterPolicy: parsePolicy(a.FilterPolicy), rawDelivery: a.RawMessageDelivery === 'true' });
    }
    next = page.NextToken;
  } while (next);
  return out;
}

/** The provisioned topology of these handlers. */
export async function readLive(clients: AwsClients, topic: string, handlers: CheckHandler[]): Promise<LiveSnapshot> {
  let topicArn: string | null = null;
  try {
    topicArn = isTopicArn(topic) ? topic : await resolveTopicArn(clients.sns, topic);
  } catch (err) {
    if (!(err instanceof EventBusError && err.code === 'ERR_TOPIC_NOT_FOUND')) throw err;
  }
  let subscriptions: LiveSubscription[] = [];
  if (topicArn) {
    try {
      subscriptions = await readSubscriptions(clients.sns, topicArn);
    } catch (err) {
      if (!isNotFound((err as { cause?: unknown }).cause)) throw err;
      topicArn = null;
    }
  }
  const queues: LiveQueue[] = [];
  for (const h of handlers) queues.push(await readQueue(clients.sqs, h));
  return { topicArn, queues, subscriptions };
}
