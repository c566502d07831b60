// `eventbus provision --print-iam`: the least-privilege IAM policies of the workers and of the
// provisioner, generated from the handlers, so that each names exactly our queues and topic.
// deploy/iam/*.json are its output for the example handlers; test/unit/iam.test.ts holds both
// against the code (every SQS/SNS command it sends, and nothing more).
import { EventBusError } from '../errors.js';
import type { ResolvedHandler } from '../handlers.js';
import { isTopicArn } from './topic.js';

export interface PolicyStatement {
  Sid: string;
  Effect: 'Allow';
  Action: string[];
  Resource: string | string[];
  Condition?: Record<string, Record<string, string | string[]>>;
}

export interface PolicyDocument {
  Version: '2012-10-17';
  Statement: PolicyStatement[];
}

export interface IamTarget {
  handlers: readonly Pick<ResolvedHandler, 'queueName' | 'dlqName'>[];
  /** The topic's name or ARN (config `topic`). */
  topic: string;
  /** The FIFO topic's name or ARN (config `fifoTopic`); default `<topic>.fifo`. */
  fifoTopic?: string | undefined;
  /** Needed unless the topic is an ARN (which names them). */
  region?: string | null | undefined;
  account?: string | null | undefined;
  /** `payloads.*` (README "Large events"): with a bucket, its S3 actions are added. */
  payloads?: { bucket: string | null; prefix: string } | null | undefined;
  /** Config `sqs.kmsKeyId`: the workers may use that key (the queues are encrypted with it). */
  kmsKeyId?: string | null | undefined;
}

/**
 * The KMS statement of the workers for queues encrypted with `kmsKeyId`: receiving needs
 * kms:Decrypt, and sending to a DLQ (dead-lettered at once) kms:GenerateDataKey and kms:Decrypt (the
 * SQS Developer Guide, "Key management": producers and consumers). IAM needs the key's ARN: a key id
 * is made one in the topic's region and account; an alias is matched with kms:ResourceAliases.
 */
function kmsStatement(keyId: string, partition: string, region: string, account: string): PolicyStatement {
  const Action = ['kms:Decrypt', 'kms:GenerateDataKey'];
  if (/^arn:[^:]+:kms:[^:]*:\d{12}:key\//.test(keyId)) return { Sid: 'EncryptedQueuesKey', Effect: 'Allow', Action, Resource: keyId };
  const alias = /^(?:arn:([^:]+):kms:([^:]*):(\d{12}):)?(alias\/.+)$/.exec(keyId);
  if (alias) {
    const [, p = partition, r = region, a = account, name] = alias;
    return { Sid: 'EncryptedQueuesKey', Effect: 'Allow', Action, Resource: `arn:${p}:kms:${r}:${a}:key/*`, Condition: { 'ForAnyValue:StringEquals': { 'kms:ResourceAliases': name! } } };
  }
  return { Sid: 'EncryptedQueuesKey', Effect: 'Allow', Action, Resource: `arn:${partition}:kms:${region}:${account}:key/${keyId}` };
}

const ACCOUNT_RE = /^\d{12}$/;
const REGION_RE = /^[a-z]{2}(-[a-z]+)+-\d$/;

/** The partition, region and account of the ARNs: the topic ARN's, else the ones given. */
export function arnContext(t: IamTarget): { partition: string; region: string; account: string; topicArn: string } {
  if (isTopicArn(t.topic)) {
    const [, partition, , region, account, name] = t.topic.split(':');
    if (!partition || !region || !account || !name) throw new EventBusError('ERR_USAGE', `topic ${t.topic} is not an SNS topic ARN (arn:aws:sns:<region>:<account>:<name>)`);
    if (t.account && t.account !== account) throw new EventBusError('ERR_USAGE', `--account ${t.account} differs from the account of topic ${t.topic}`);
    return { partition, region, account, topicArn: t.topic };
  }
  const account = t.account ?? '';
  const region = t.region ?? '';
  if (!ACCOUNT_RE.test(account)) throw new EventBusError('ERR_USAGE', `the account id is needed for the ARNs: pass --account <12 digits> or configure topic as an ARN (got "${account}")`);
  if (!REGION_RE.test(region)) throw new EventBusError('ERR_USAGE', `the region is needed for the ARNs: set config region or AWS_REGION, or configure topic as an ARN (got "${region}")`);
  return { partition: 'aws', region, account, topicArn: `arn:aws:sns:${region}:${account}:${t.topic}` };
}

/**
 * The worker policy (`node dist/supervisor`) and the provisioner policy (`eventbus provision`).
 * Worker: receive, delete and extend on the handler queues only (never the DLQs, never other
 * queues of the prefix); read the DLQs' depth and send to them (dead-lettered at once); publish to the topic and
 * the FIFO topic (events with a groupId). Provisioner: create and
 * configure the handler queues and DLQs; the topic; subscribe only `sqs` endpoints that are our
 * queues (condition keys sns:Protocol and sns:Endpoint); read, change and remove subscriptions of
 * the topic only. `sns:ListTopics` (no resource-level permissions: `"*"`) only for a topic
 * configured by name, the one case the code lists topics.
 */
export function iamPolicies(t: IamTarget): { worker: PolicyDocument; provisioner: PolicyDocument } {
  const { partition, region, account, topicArn } = arnContext(t);
  const fifoTopic = t.fifoTopic ?? `${t.topic}.fifo`;
  const fifoTopicArn = isTopicArn(fifoTopic) ? fifoTopic : `arn:${partition}:sns:${region}:${account}:${fifoTopic}`;
  const topics = [topicArn, fifoTopicArn];
  const sqsArn = (name: string) => `arn:${partition}:sqs:${region}:${account}:${name}`;
  const queues = [...new Set(t.handlers.map((h) => sqsArn(h.queueName)))].sort();
  const dlqs = [...new Set(t.handlers.map((h) => sqsArn(h.dlqName)))].sort();
  if (queues.length === 0) throw new EventBusError('ERR_USAGE', 'no handlers: the policies would name no queue (check handlersDir)');
  // Only a topic configured by name is looked up with ListTopics (src/publisher/topic.ts).
  const listTopics: PolicyStatement[] = isTopicArn(t.topic) && isTopicArn(fifoTopic) ? [] : [{ Sid: 'ResolveTopicByName', Effect: 'Allow', Action: ['sns:ListTopics'], Resource: '*' }];
  // Large events: workers write (ctx.publish, failure events, webhooks) and read (consume) payloads
  // under the prefix only; the provisioner creates the bucket and sets its lifecycle rule. HeadBucket
  // is authorised by s3:ListBucket. No s3:DeleteObject anywhere: the lifecycle rule expires payloads.
  const bucket = t.payloads?.bucket ?? null;
  const bucketArn = bucket ? `arn:${partition}:s3:::${bucket}` : '';
  const workerS3: PolicyStatement[] = bucket
    ? [{ Sid: 'OffloadedPayloads', Effect: 'Allow', Action: ['s3:GetObject', 's3:PutObject'], Resource: `${bucketArn}/${t.payloads!.prefix}*` }]
    : [];
  const provisionerS3: PolicyStatement[] = bucket
    ? [
        {
          Sid: 'ProvisionPayloadsBucket',
          Effect: 'Allow',
          Action: ['s3:CreateBucket', 's3:GetBucketTagging', 's3:GetLifecycleConfiguration', 's3:ListBucket', 's3:PutBucketTagging', 's3:PutLifecycleConfiguration'],
          Resource: bucketArn,
        },
      ]
    : [];
  const workerKms: PolicyStatement[] = t.kmsKeyId ? [kmsStatement(t.kmsKeyId, partition, region, account)] : [];
  return {
    worker: {
      Version: '2012-10-17',
      Statement: [
        {
          Sid: 'ConsumeHandlerQueues',
          Effect: 'Allow',
          Action: ['sqs:ChangeMessageVisibility', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl', 'sqs:ReceiveMessage'],
          Resource: queues,
        },
        // SendMessage: a message rejected by its handler (NonRetryableError) or failing its schema is
        // dead-lettered at once, by the worker, not by SQS's redrive.
        { Sid: 'DeadLetterQueues', Effect: 'Allow', Action: ['sqs:GetQueueAttributes', 'sqs:GetQueueUrl', 'sqs:SendMessage'], Resource: dlqs },
        // Both topics: an event with a groupId goes to the FIFO topic too (ordered handlers).
        { Sid: 'PublishEvents', Effect: 'Allow', Action: ['sns:Publish'], Resource: topics },
        ...workerS3,
        ...workerKms,
        ...listTopics,
      ],
    },
    provisioner: {
      Version: '2012-10-17',
      Statement: [
        {
          Sid: 'ProvisionHandlerQueues',
          Effect: 'Allow',
          // TagQueue: tags on CreateQueue need it too; ListQueueTags: tags are converged, never removed.
          Action: ['sqs:CreateQueue', 'sqs:GetQueueAttributes', 'sqs:GetQueueUrl', 'sqs:ListQueueTags', 'sqs:SetQueueAttributes', 'sqs:TagQueue'],
          Resource: [...queues, ...dlqs].sort(),
        },
        {
          Sid: 'ProvisionTopic',
          Effect: 'Allow',
          Action: ['sns:CreateTopic', 'sns:GetTopicAttributes', 'sns:ListSubscriptionsByTopic', 'sns:ListTagsForResource', 'sns:TagResource'],
          Resource: topics,
        },
        {
          Sid: 'SubscribeHandlerQueuesOnly',
          Effect: 'Allow',
          Action: ['sns:Subscribe'],
          Resource: topics,
          Condition: { StringEquals: { 'sns:Protocol': 'sqs', 'sns:Endpoint': queues } },
        },
        {
          // A subscription's ARN is `<topic ARN>:<id>`; the topic ARN is listed too, since SNS
          // authorises the topic owner's calls on a subscription against its topic.
          Sid: 'ManageSubscriptionsOfTheTopic',
          Effect: 'Allow',
          Action: ['sns:GetSubscriptionAttributes', 'sns:SetSubscriptionAttributes', 'sns:Unsubscribe'],
          Resource: topics.flatMap((arn) => [arn, `${arn}:*`]),
        },
        ...provisionerS3,
        ...listTopics,
      ],
    },
  };
}
