// AWS quotas `eventbus check` holds a topology against, each with where it is published. Defaults
// of an account: several are adjustable through Service Quotas (docs/SCALING.md says which).

/** Filter policies per SNS topic (adjustable). https://docs.aws.amazon.com/sns/latest/dg/subscription-filter-policy-constraints.html */
export const SNS_FILTER_POLICIES_PER_TOPIC = 200;
/** Filter policies per AWS account (adjustable); same page. */
export const SNS_FILTER_POLICIES_PER_ACCOUNT = 10_000;
/**
 * Message attributes an SQS message may carry; SNS drops a message with more than this for a
 * raw-delivery SQS subscription ("discarded as client side errors").
 * https://docs.aws.amazon.com/sns/latest/dg/sns-message-attributes.html
 */
export const MAX_MESSAGE_ATTRIBUTES = 10;
/**
 * In-flight messages per standard queue ("approximately 120,000"); past it ReceiveMessage fails
 * with OverLimit, so the whole queue stops, not only the failing messages.
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/quotas-queues.html
 */
export const SQS_MAX_IN_FLIGHT = 120_000;
/**
 * A FIFO queue without high-throughput mode: 300 transactions per second per API action
 * (SendMessage, ReceiveMessage, DeleteMessage); batches carry up to 3,000 messages per second.
 * https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/troubleshooting-fifo-throttling-issues.html
 */
export const SQS_FIFO_TPS = 300;
/**
 * An SNS FIFO topic whose throughput scope is the topic (the default, and what provision creates):
 * 3,000 messages per second and 20 MB per second.
 * https://docs.aws.amazon.com/cdk/api/v2/docs/aws-cdk-lib.aws_sns.FifoThroughputScope.html
 */
export const SNS_FIFO_TOPIC_MPS = 3_000;

/**
 * SNS Publish requests per second per account and region, by default (adjustable), shared by every
 * service of the account in that region. https://docs.aws.amazon.com/general/latest/gr/sns.html
 * The figures are those of that page's API throttling table as the issue quotes them (300/s in
 * small regions to 30,000/s in us-east-1); docs/SCALING.md says how far they were verified.
 */
export const SNS_PUBLISH_TPS: Readonly<Record<string, number>> = {
  'us-east-1': 30_000,
  'us-west-2': 9_000,
  'eu-west-1': 9_000,
  'us-east-2': 1_500,
  'us-west-1': 1_500,
  'ap-south-1': 1_500,
  'ap-northeast-1': 1_500,
  'ap-northeast-2': 1_500,
  'ap-southeast-1': 1_500,
  'ap-southeast-2': 1_500,
  'ca-central-1': 1_500,
  'eu-central-1': 1_500,
  'eu-west-2': 1_500,
  'eu-west-3': 1_500,
  'sa-east-1': 1_500,
};
/** Every other region (the smallest default of the table). */
export const SNS_PUBLISH_TPS_OTHER = 300;

/** The Publish quota of a region; null region = unknown, the smallest default. */
export function publishTps(region: string | null): { tps: number; known: boolean } {
  const tps = region ? SNS_PUBLISH_TPS[region] : undefined;
  return tps === undefined ? { tps: SNS_PUBLISH_TPS_OTHER, known: false } : { tps, known: true };
}

/** A limit is "close" from this share of it on: a warning before it is an error. */
export const NEAR_SHARE = 0.8;
