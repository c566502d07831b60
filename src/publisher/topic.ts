import type { SNSClient } from '@aws-sdk/client-sns';
import { snsSdk } from './sns-sdk.js';
import { EventBusError, toAwsError } from '../errors.js';

/** True for an SNS topic ARN. */
export function isTopicArn(s: string): boolean {
  return s.startsWith('arn:');
}

/** The topic name of an ARN or a name. */
export function topicName(topic: string): string {
  return isTopicArn(topic) ? (topic.split(':').pop() ?? topic) : topic;
}

/**
 * Resolves a topic name to its ARN with ListTopics (an ARN is returned as is).
 * Configure the ARN in production: listing needs sns:ListTopics and pages through every topic.
 */
export async function resolveTopicArn(sns: SNSClient, topic: string): Promise<string> {
  if (isTopicArn(topic)) return topic;
  let next: string | undefined;
  do {
    let page;
    try {
      page = await sns.send(new (await snsSdk()).ListTopicsCommand({ NextToken: next }));
    } catch (err) {
      throw toAwsError('ListTopics', topic, err);
    }
    for (const t of page.Topics ?? []) {
      if (t.TopicArn && topicName(t.TopicArn) === topic) return t.TopicArn;
    }
    next = page.NextToken;
  } while (next);
  throw new EventBusError('ERR_TOPIC_NOT_FOUND', `SNS topic "${topic}" does not exist (run: eventbus provision)`);
}
