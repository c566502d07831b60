// `eventbus check --live`: the topology as provisioned (read by src/cli/check-live.ts with
// GetQueueAttributes, ListSubscriptionsByTopic and GetSubscriptionAttributes), compared with what
// the handlers declare, by pure rules like the static ones.
import { canonicalEqual } from '../publisher/provision.js';
import { topicName } from '../publisher/topic.js';
import type { Finding } from './findings.js';
import type { CheckHandler, CheckInput } from './input.js';
import { MAX_MESSAGE_ATTRIBUTES, NEAR_SHARE, SQS_MAX_IN_FLIGHT } from './limits.js';
import { filterPolicyCountFinding, maxReceiveCountFinding } from './rules.js';
import { EVENT_TYPE_ATTRIBUTE } from '../event/index.js';

/** One handler's queue and DLQ as provisioned. */
export interface LiveQueue {
  queue: string;
  exists: boolean;
  arn: string | null;
  visibilityTimeoutSec: number | null;
  /** From the RedrivePolicy; null = no redrive policy. */
  redrive: { maxReceiveCount: number; deadLetterTargetArn: string } | null;
  /** ApproximateNumberOfMessagesNotVisible. */
  inFlight: number | null;
  dlqExists: boolean;
  dlqArn: string | null;
}

/** One subscription of the topic (any protocol, ours or not). */
export interface LiveSubscription {
  protocol: string;
  endpoint: string;
  /** Parsed FilterPolicy; null = none ("", "{}" and absent all mean none). */
  filterPolicy: unknown;
  rawDelivery: boolean;
}

export interface LiveSnapshot {
  /** null: the topic does not exist. */
  topicArn: string | null;
  queues: LiveQueue[];
  subscriptions: LiveSubscription[];
}

export interface LiveRule {
  id: string;
  run(input: CheckInput, live: LiveSnapshot): Finding[];
}

const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

const topic: LiveRule = {
  id: 'live-topic',
  run(input, live) {
    if (live.topicArn !== null) return [];
    return [{ level: 'error', rule: this.id, message: `topic ${input.config.topic} does not exist (run eventbus provision)` }];
  },
};

const queues: LiveRule = {
  id: 'live-queue',
  run(input, live) {
    const out: Finding[] = [];
    for (const h of input.handlers) {
      const q = live.queues.find((x) => x.queue === h.queue);
      const f = (level: Finding['level'], message: string) => out.push({ level, rule: this.id, queue: h.queue, message });
      if (!q || !q.exists) {
        f('error', `queue ${h.queueName} does not exist (run eventbus provision)`);
        continue;
      }
      if (!q.dlqExists) f('error', `DLQ ${h.dlqName} does not exist: dead-lettering at once (NonRetryableError, invalid data) fails (run eventbus provision)`);
      if (q.visibilityTimeoutSec !== null && q.visibilityTimeoutSec !== h.visibilityTimeoutSec) {
        f('warning', `VisibilityTimeout is ${q.visibilityTimeoutSec} s, the handler declares ${h.visibilityTimeoutSec} (drift: eventbus provision sets it)`);
      }
      if (q.redrive === null) {
        f('error', `no RedrivePolicy: a message that keeps failing is retried forever and never reaches ${h.dlqName} (run eventbus provision)`);
      } else {
        const mrc = maxReceiveCountFinding('live-queue', h.queue, q.redrive.maxReceiveCount, 'provisioned ');
        if (mrc) out.push(mrc);
        else if (q.redrive.maxReceiveCount !== h.maxReceiveCount) f('warning', `provisioned maxReceiveCount is ${q.redrive.maxReceiveCount}, the handler declares ${h.maxReceiveCount} (drift: eventbus provision sets it)`);
        if (q.dlqArn !== null && q.redrive.deadLetterTargetArn !== q.dlqArn) f('warning', `RedrivePolicy sends to ${q.redrive.deadLetterTargetArn}, not ${h.dlqName} (drift)`);
      }
      if (q.inFlight !== null) {
        const share = q.inFlight / SQS_MAX_IN_FLIGHT;
        if (share >= NEAR_SHARE) f(share >= 1 ? 'error' : 'warning', `${fmt(q.inFlight)} messages in flight of SQS's ~${fmt(SQS_MAX_IN_FLIGHT)} per queue: past it ReceiveMessage fails with OverLimit`);
      }
    }
    return out;
  },
};

/** The handler's attribute count for its types (for raw-delivery subscriptions). */
function maxAttributes(input: CheckInput, h: CheckHandler): number {
  let most = 1;
  for (const [type, pubs] of input.publishers) {
    if (h.events !== null && !h.events.includes(type)) continue;
    most = Math.max(most, new Set([EVENT_TYPE_ATTRIBUTE, ...pubs.flatMap((p) => p.attributes)]).size);
  }
  return most;
}

const subscriptions: LiveRule = {
  id: 'live-subscription',
  run(input, live) {
    if (live.topicArn === null) return [];
    const out: Finding[] = [];
    for (const h of input.handlers) {
      const q = live.queues.find((x) => x.queue === h.queue);
      if (!q?.exists || !q.arn) continue;
      const f = (level: Finding['level'], message: string) => out.push({ level, rule: this.id, queue: h.queue, message });
      const sub = live.subscriptions.find((s) => s.protocol === 'sqs' && s.endpoint === q.arn);
      if (!sub) {
        f('error', `queue ${h.queueName} is not subscribed to topic ${topicName(input.config.topic)}: it receives nothing (run eventbus provision)`);
        continue;
      }
      if (!canonicalEqual(sub.filterPolicy, h.filterPolicy)) {
        f('warning', `filter policy is ${JSON.stringify(sub.filterPolicy)}, the handler wants ${JSON.stringify(h.filterPolicy)} (drift: eventbus provision sets it; AWS applies a change within minutes)`);
      }
      if (sub.rawDelivery) {
        const n = maxAttributes(input, h);
        if (n > MAX_MESSAGE_ATTRIBUTES) f('error', `raw message delivery with up to ${n} message attributes: SNS drops messages with more than ${MAX_MESSAGE_ATTRIBUTES} for raw SQS subscriptions`);
        else f('warning', 'raw message delivery: eventbus provisions the SNS envelope (the supervisor reads both; provision sets it back)');
      }
    }
    return out;
  },
};

const policiesOnTopic: LiveRule = {
  id: 'live-filter-policies-per-topic',
  run(input, live) {
    if (live.topicArn === null) return [];
    const withPolicy = live.subscriptions.filter((s) => s.filterPolicy !== null);
    const ours = new Set(live.queues.map((q) => q.arn).filter(Boolean));
    const others = withPolicy.filter((s) => !(s.protocol === 'sqs' && ours.has(s.endpoint))).length;
    return [filterPolicyCountFinding(this.id, withPolicy.length, topicName(input.config.topic), `, as provisioned${others ? `, ${others} of them not eventbus handlers'` : ''}; ${live.subscriptions.length} subscriptions in all`)];
  },
};

const accountQuotas: LiveRule = {
  id: 'live-account-quotas',
  run() {
    return [
      {
        level: 'info',
        rule: this.id,
        message:
          'account quotas (SNS Publish/s per region, filter policies per account, SQS in-flight per queue) are not readable with SQS or SNS calls: ' +
          '`aws service-quotas list-service-quotas --service-code sns` (and `sqs`) lists the applied values',
      },
    ];
  },
};

/** Every live rule, in report order. */
export const LIVE_RULES: readonly LiveRule[] = [topic, queues, subscriptions, policiesOnTopic, accountQuotas];

export function runLiveRules(input: CheckInput, live: LiveSnapshot, rules: readonly LiveRule[] = LIVE_RULES): Finding[] {
  return rules.flatMap((r) => r.run(input, live));
}
