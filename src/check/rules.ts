// The rules of `eventbus check`: each a small pure function of the CheckInput that returns its
// findings. A new setting (tracing, S3 payloads, FIFO) adds one more entry to RULES.
import { HANDLER_GRACE_MS } from '../handlers.js';
import { retryDelaySec } from '../backoff.js';
import { encodeEvent, buildEvent, SNS_MAX_BYTES, EVENT_TYPE_ATTRIBUTE } from '../event/index.js';
import { FILTER_POLICY_MAX_BYTES, FILTER_POLICY_MAX_COMBINATIONS, FILTER_POLICY_MAX_KEYS } from '../publisher/provision.js';
import { topicName } from '../publisher/topic.js';
import type { Finding } from './findings.js';
import type { CheckHandler, CheckInput } from './input.js';
import { MAX_MESSAGE_ATTRIBUTES, NEAR_SHARE, SNS_FIFO_TOPIC_MPS, SNS_FILTER_POLICIES_PER_TOPIC, SQS_FIFO_TPS, SQS_MAX_IN_FLIGHT, publishTps } from './limits.js';

/** One rule: an id (the `rule` of its findings), what it checks, and the check itself. */
export interface Rule {
  id: string;
  describe: string;
  run(input: CheckInput): Finding[];
}

/**
 * The extender sends a message's extension when half its visibility timeout is left, and retries a
 * failed one 1 s later (src/supervisor/in-flight.ts): half the timeout must hold one failure, the
 * retry and its round trip, so a handler that outlives its visibility timeout needs at least this.
 */
export const MIN_EXTENDED_VISIBILITY_SEC = 4;

const pct = (n: number, of: number) => `${Math.round((n / of) * 100)}%`;
const fmt = (n: number) => Math.round(n).toLocaleString('en-US');

/** Filter policies on one topic: error over the quota, warning from NEAR_SHARE of it, else the figure. */
export function filterPolicyCountFinding(rule: string, count: number, topic: string, detail: string): Finding {
  const limit = SNS_FILTER_POLICIES_PER_TOPIC;
  const head = `${count} of ${limit} filter policies on topic ${topic} (${pct(count, limit)})${detail}`;
  if (count > limit) {
    return {
      level: 'error',
      rule,
      message: `${head}: SNS lets the subscriptions past ${limit} be created but not their filter policies; shard the topic by domain or ask for a quota increase (docs/SCALING.md)`,
    };
  }
  if (count >= limit * NEAR_SHARE) return { level: 'warning', rule, message: `${head}: near the per-topic quota; plan a topic per domain or a quota increase (docs/SCALING.md)` };
  return { level: 'info', rule, message: head };
}

const filterPoliciesPerTopic: Rule = {
  id: 'filter-policies-per-topic',
  describe: `subscriptions with a filter policy on the topic, against SNS's ${SNS_FILTER_POLICIES_PER_TOPIC} per topic`,
  run({ handlers, config }) {
    const filtered = handlers.filter((h) => h.filterPolicy !== null).length;
    const all = handlers.length - filtered;
    return [filterPolicyCountFinding(this.id, filtered, topicName(config.topic), all ? `; ${all === 1 ? '1 handler takes' : `${all} handlers take`} every event (no filter policy)` : '')];
  },
};

const filterPolicyShape: Rule = {
  id: 'filter-policy-limits',
  describe: `keys (${FILTER_POLICY_MAX_KEYS}), value combinations (${FILTER_POLICY_MAX_COMBINATIONS}) and size of each filter policy`,
  run({ handlers }) {
    const out: Finding[] = [];
    for (const h of handlers) {
      const p = h.filterPolicy;
      if (p === null) continue;
      const keys = Object.keys(p).length;
      const combinations = Object.values(p).reduce((n, v) => n * (Array.isArray(v) ? v.length : 1), 1);
      const bytes = Buffer.byteLength(JSON.stringify(p), 'utf8');
      const f = (level: Finding['level'], message: string) => out.push({ level, rule: this.id, queue: h.queue, message });
      if (keys > FILTER_POLICY_MAX_KEYS) f('error', `filter policy has ${keys} keys; SNS allows ${FILTER_POLICY_MAX_KEYS}`);
      if (combinations > FILTER_POLICY_MAX_COMBINATIONS) {
        f('error', `filter policy has ${combinations} value combinations; SNS allows ${FILTER_POLICY_MAX_COMBINATIONS} (split the handler, or take every event and filter in code)`);
      } else if (combinations >= FILTER_POLICY_MAX_COMBINATIONS * NEAR_SHARE) {
        f('warning', `filter policy has ${combinations} of ${FILTER_POLICY_MAX_COMBINATIONS} value combinations`);
      }
      if (bytes > FILTER_POLICY_MAX_BYTES) f('error', `filter policy is ${bytes} bytes; SNS allows ${FILTER_POLICY_MAX_BYTES}`);
    }
    return out;
  },
};

/** Attribute names of a published type: `event-type` plus what its publishers declare. */
function attributesOf(input: CheckInput, type: string): string[] {
  const names = new Set([EVENT_TYPE_ATTRIBUTE]);
  for (const p of input.publishers.get(type) ?? []) for (const a of p.attributes) names.add(a);
  return [...names];
}

const messageAttributes: Rule = {
  id: 'message-attributes',
  describe: `message attributes per published type, against ${MAX_MESSAGE_ATTRIBUTES}`,
  run(input) {
    const out: Finding[] = [];
    for (const type of [...input.publishers.keys()].sort()) {
      const names = attributesOf(input, type);
      if (names.length <= MAX_MESSAGE_ATTRIBUTES) continue;
      out.push({
        level: 'warning',
        rule: this.id,
        message:
          `${type} carries ${names.length} message attributes (${names.join(', ')}); SQS allows ${MAX_MESSAGE_ATTRIBUTES}: eventbus's subscriptions (SNS envelope) ` +
          'keep them in the body, but SNS drops such messages for any raw-delivery SQS subscription of the topic',
      });
    }
    return out;
  },
};

/** Bytes SNS counts for an event of `type` whose data serialises to `dataBytes`, with these attributes. */
export function estimatedEventBytes(type: string, dataBytes: number, source: string, attributes: readonly string[]): number {
  const extra = Object.fromEntries(attributes.filter((a) => a !== EVENT_TYPE_ATTRIBUTE).map((a) => [a, '']));
  // A real id and time; `null` data stands for the data, whose size is given.
  const { size } = encodeEvent(buildEvent(type, null, source, { id: '00000000-0000-5000-8000-000000000000', time: new Date(0) }), extra);
  return size - 'null'.length + dataBytes;
}

const eventSize: Rule = {
  id: 'event-size',
  describe: `largest declared event of each type (publishers manifest maxBytes), against SNS's ${SNS_MAX_BYTES} bytes`,
  run(input) {
    const out: Finding[] = [];
    for (const type of [...input.publishers.keys()].sort()) {
      const sized = (input.publishers.get(type) ?? []).filter((p) => p.maxBytes !== null);
      if (sized.length === 0) continue;
      const maxData = Math.max(...sized.map((p) => p.maxBytes!));
      const bytes = estimatedEventBytes(type, maxData, input.config.source, attributesOf(input, type));
      const by = sized.map((p) => p.by).join(', ');
      const head = `${type}: data up to ${fmt(maxData)} bytes (${by}) makes a ${fmt(bytes)}-byte SNS message`;
      if (bytes > SNS_MAX_BYTES) {
        if (input.claimCheckBytes !== null && input.claimCheckBytes < SNS_MAX_BYTES) {
          out.push({ level: 'info', rule: this.id, message: `${head}: over SNS's ${fmt(SNS_MAX_BYTES)}, sent through the claim check (over ${fmt(input.claimCheckBytes)} bytes)` });
        } else {
          out.push({ level: 'error', rule: this.id, message: `${head}; SNS allows ${fmt(SNS_MAX_BYTES)} (ERR_EVENT_TOO_LARGE at publish): put the payload in S3 and publish a reference` });
        }
      } else if (bytes >= SNS_MAX_BYTES * NEAR_SHARE) {
        out.push({ level: 'warning', rule: this.id, message: `${head}, ${pct(bytes, SNS_MAX_BYTES)} of SNS's ${fmt(SNS_MAX_BYTES)}` });
      }
    }
    return out;
  },
};

/** Handlers that receive `type` (a filter naming it, or no filter). */
function receivers(handlers: readonly CheckHandler[], type: string): CheckHandler[] {
  return handlers.filter((h) => h.events === null || h.events.includes(type));
}

const unpublishedTypes: Rule = {
  id: 'unpublished-type',
  describe: 'event types handlers subscribe to that no known publisher publishes',
  run(input) {
    const out: Finding[] = [];
    const subscribed = new Map<string, string[]>();
    for (const h of input.handlers) for (const t of h.events ?? []) subscribed.set(t, [...(subscribed.get(t) ?? []), h.queue]);
    const undeclared = input.handlers.filter((h) => h.publishes === null && h.builtIn === undefined).map((h) => h.queue);
    const manifests = input.manifests.length > 0;
    for (const [type, queues] of [...subscribed].sort(([a], [b]) => a.localeCompare(b))) {
      if (input.publishers.has(type)) continue;
      out.push({
        // Without a manifest the check knows only the handlers and eventbus itself: a hint, not a warning.
        level: manifests ? 'warning' : 'info',
        rule: this.id,
        message:
          `${type} (received by ${queues.join(', ')}): no handler declares it in publishes${manifests ? ', no publishers manifest lists it' : ' and no publishers manifest was given (--publishes FILE)'}` +
          `${undeclared.length ? ` (handlers without publishes may send it: ${undeclared.join(', ')})` : ''}`,
      });
    }
    return out;
  },
};

const unreceivedTypes: Rule = {
  id: 'unreceived-type',
  describe: 'published event types no handler receives',
  run(input) {
    const out: Finding[] = [];
    for (const [type, pubs] of [...input.publishers].sort(([a], [b]) => a.localeCompare(b))) {
      if (receivers(input.handlers, type).length > 0) continue;
      const builtInOnly = pubs.every((p) => p.kind === 'built-in');
      out.push({
        level: builtInOnly ? 'info' : 'warning',
        rule: this.id,
        message:
          `${type} (published by ${pubs.map((p) => p.by).join(', ')}): no handler receives it, so SNS drops it (no subscription matches)` +
          (builtInOnly ? '; each is still a Publish call' : ' unless another consumer subscribes to the topic; the archive (archive.enabled) keeps every event'),
      });
    }
    return out;
  },
};

const undeclaredPublishes: Rule = {
  id: 'undeclared-publishes',
  describe: "handlers whose ctx.publish types are not declared (publishes), which the type rules cannot see",
  run({ handlers }) {
    return handlers
      .filter((h) => h.publishes === null && h.builtIn === undefined)
      .map((h) => ({ level: 'info' as const, rule: this.id, queue: h.queue, message: 'no publishes declared: what its ctx.publish sends is not checked (declare publishes: [...] or a schema map)' }));
  },
};

const visibilityExtension: Rule = {
  id: 'visibility-timeout',
  describe: `a handler that may outlive its visibility timeout needs one of at least ${MIN_EXTENDED_VISIBILITY_SEC} s for its extensions`,
  run({ handlers }) {
    const out: Finding[] = [];
    for (const h of handlers) {
      const runsMs = h.timeoutMs + HANDLER_GRACE_MS;
      if (runsMs <= h.visibilityTimeoutSec * 1000 || h.visibilityTimeoutSec >= MIN_EXTENDED_VISIBILITY_SEC) continue;
      out.push({
        level: 'error',
        rule: this.id,
        queue: h.queue,
        message:
          `visibilityTimeout ${h.visibilityTimeoutSec} s is below the handler's timeoutMs ${h.timeoutMs} (+ ${HANDLER_GRACE_MS} ms grace), and too short to extend: ` +
          `extensions are sent with half of it left and a failed one is retried 1 s later, so one slow call makes the message visible to another host mid-run. ` +
          `Use visibilityTimeout >= ${MIN_EXTENDED_VISIBILITY_SEC}, or timeoutMs < ${h.visibilityTimeoutSec * 1000 - HANDLER_GRACE_MS > 0 ? h.visibilityTimeoutSec * 1000 - HANDLER_GRACE_MS : 1}`,
      });
    }
    return out;
  },
};

/** maxReceiveCount 1: the message is dead-lettered on its second receive, whatever ended the first. */
export function maxReceiveCountFinding(rule: string, queue: string, maxReceiveCount: number, where: string): Finding | null {
  if (maxReceiveCount > 1) return null;
  return {
    level: 'error',
    rule,
    queue,
    message:
      `${where}maxReceiveCount 1: a failure, a timeout, a crashed thread, a host killed mid-run or a message released at shutdown ` +
      'sends the message to the DLQ without a retry (every receive counts); use >= 2, and NonRetryableError for what must not be retried',
  };
}

const maxReceiveCount: Rule = {
  id: 'max-receive-count',
  describe: 'maxReceiveCount 1 leaves no retry, not even after a shutdown',
  run({ handlers }) {
    return handlers.flatMap((h) => maxReceiveCountFinding(this.id, h.queue, h.maxReceiveCount, '') ?? []);
  },
};

const caps: Rule = {
  id: 'caps',
  describe: 'per-queue caps against the host cap, the thread pool and the processes',
  run({ handlers, config }) {
    const out: Finding[] = [];
    const host = config.hostConcurrency;
    const pool = config.processes * config.threads * config.tasksPerThread;
    const poolText = `the thread pool (${config.processes > 1 ? `${config.processes} processes x ` : ''}threads ${config.threads} x tasksPerThread ${config.tasksPerThread} = ${pool})`;
    if (pool < host) out.push({ level: 'warning', rule: this.id, message: `concurrency ${host} is above ${poolText}: at most ${pool} handlers run at once on a host` });
    const fits = Math.min(host, pool);
    if (fits < handlers.length) {
      out.push({ level: 'error', rule: this.id, message: `${handlers.length} queues need at least as many slots for their long polls; the host has ${fits} (concurrency ${host}, pool ${pool}): the supervisor refuses to start` });
    }
    for (const h of handlers) {
      const f = (level: Finding['level'], message: string) => out.push({ level, rule: this.id, queue: h.queue, message });
      if (h.concurrency > host) f('warning', `concurrency ${h.concurrency} is above the host's concurrency ${host}: at most ${host} of its handlers run at once`);
      else if (h.concurrency > pool) f('warning', `concurrency ${h.concurrency} is above ${poolText}: at most ${pool} run at once`);
      if (config.processes > 1 && h.concurrency < config.processes) {
        f('error', `concurrency ${h.concurrency} is below processes ${config.processes}: the cap is split across processes and some get no slot (the supervisor refuses to start)`);
      }
    }
    return out;
  },
};

/** Sum of the ceilings of the backoffs a message waits before its last receive (the longest it stays in flight failing). */
export function retryWindowSec(maxReceiveCount: number, baseDelaySec: number, maxDelaySec: number): number {
  let sum = 0;
  for (let n = 1; n < maxReceiveCount; n++) sum += retryDelaySec(n, baseDelaySec, maxDelaySec, () => 1);
  return sum;
}

/** Events per second each queue receives, from the manifests' rates; null where no rate is known. */
function queueRates(input: CheckInput): Map<string, number> {
  const out = new Map<string, number>();
  for (const [type, pubs] of input.publishers) {
    const rate = pubs.reduce((s, p) => s + (p.ratePerSec ?? 0), 0);
    if (rate <= 0) continue;
    for (const h of receivers(input.handlers, type)) out.set(h.queue, (out.get(h.queue) ?? 0) + rate);
  }
  return out;
}

const inFlightDuringOutage: Rule = {
  id: 'in-flight-outage',
  describe: `messages in flight per queue while every handler call fails (backing off), against SQS's ${fmt(SQS_MAX_IN_FLIGHT)}`,
  run(input) {
    const out: Finding[] = [];
    const rates = queueRates(input);
    const { baseDelaySec, maxDelaySec } = input.config.retry;
    for (const h of input.handlers) {
      const rate = rates.get(h.queue);
      if (rate === undefined) continue;
      const window = retryWindowSec(h.maxReceiveCount, baseDelaySec, maxDelaySec) + h.timeoutMs / 1000;
      const held = rate * window;
      const head = `at ${fmt(rate)} events/s, an outage of what the handler calls keeps up to ${fmt(held)} messages in flight (${fmt(window)} s of backoff and timeout per message, maxReceiveCount ${h.maxReceiveCount}, retry.maxDelaySec ${maxDelaySec})`;
      if (held > SQS_MAX_IN_FLIGHT) {
        out.push({ level: 'error', rule: this.id, queue: h.queue, message: `${head}; SQS allows ~${fmt(SQS_MAX_IN_FLIGHT)}, then ReceiveMessage fails with OverLimit and the queue stops: lower retry.maxDelaySec or maxReceiveCount, or shard the queue` });
      } else if (held >= SQS_MAX_IN_FLIGHT * NEAR_SHARE) {
        out.push({ level: 'warning', rule: this.id, queue: h.queue, message: `${head}, ${pct(held, SQS_MAX_IN_FLIGHT)} of SQS's ~${fmt(SQS_MAX_IN_FLIGHT)}` });
      }
    }
    return out;
  },
};

/** How long a failing message may hold its group before a warning says so (the group's later events wait). */
export const GROUP_HOLD_WARN_SEC = 15 * 60;

const ordered: Rule = {
  id: 'ordered',
  describe: 'ordered handlers: how long a failing message holds its group, and declared rates against the FIFO quotas',
  run(input) {
    const out: Finding[] = [];
    const handlers = input.handlers.filter((h) => h.ordered);
    if (handlers.length === 0) return out;
    const { baseDelaySec, maxDelaySec } = input.config.retry;
    const rates = queueRates(input);
    for (const h of handlers) {
      const f = (level: Finding['level'], message: string) => out.push({ level, rule: this.id, queue: h.queue, message });
      const timeoutSec = h.timeoutMs / 1000;
      const hold = retryWindowSec(h.maxReceiveCount, baseDelaySec, maxDelaySec) + h.maxReceiveCount * timeoutSec;
      const head =
        `a message that keeps failing holds its message group for up to ${fmt(hold)} s before it reaches the DLQ ` +
        `(maxReceiveCount ${h.maxReceiveCount}, retry.maxDelaySec ${maxDelaySec}, up to ${fmt(timeoutSec)} s per attempt): the group's later events wait behind it`;
      if (hold > GROUP_HOLD_WARN_SEC) f('warning', `${head}; lower maxReceiveCount or retry.maxDelaySec, or throw NonRetryableError for what can never succeed (dead-lettered at once)`);
      else f('info', head);
      const rate = rates.get(h.queue);
      if (rate !== undefined && rate > SQS_FIFO_TPS) {
        f(
          'warning',
          `at ${fmt(rate)} events/s the FIFO queue is over SQS's ${SQS_FIFO_TPS} calls/s per action without high-throughput mode (batches carry up to ${fmt(SQS_FIFO_TPS * 10)} messages/s): ` +
            'enable high throughput on the queue (DeduplicationScope messageGroup, FifoThroughputLimit perMessageGroupId)',
        );
      }
    }
    // Every type an ordered handler receives is published to the FIFO topic.
    const fifoTypes = new Set(handlers.flatMap((h) => h.events ?? []));
    let fifoRate = 0;
    for (const type of fifoTypes) fifoRate += (input.publishers.get(type) ?? []).reduce((s, p) => s + (p.ratePerSec ?? 0), 0);
    if (fifoRate > 0) {
      const head = `declared publishing to the FIFO topic: ${fmt(fifoRate)} events/s against its ${fmt(SNS_FIFO_TOPIC_MPS)} messages/s (topic throughput scope), ${pct(fifoRate, SNS_FIFO_TOPIC_MPS)}`;
      if (fifoRate > SNS_FIFO_TOPIC_MPS) out.push({ level: 'error', rule: this.id, message: `${head}: SNS throttles; order only what needs it, or set the topic's FifoThroughputScope to MessageGroup` });
      else if (fifoRate >= SNS_FIFO_TOPIC_MPS * NEAR_SHARE) out.push({ level: 'warning', rule: this.id, message: `${head}: little headroom for bursts` });
    }
    return out;
  },
};

const publishRate: Rule = {
  id: 'publish-rate',
  describe: 'declared publish rates (publishers manifests) against the SNS Publish quota of the region',
  run(input) {
    const rated = [...input.publishers.values()].flat().filter((p) => p.ratePerSec !== null);
    if (rated.length === 0) return [];
    const total = rated.reduce((s, p) => s + p.ratePerSec!, 0);
    const { tps, known } = publishTps(input.region);
    const where = known ? `region ${input.region}` : `${input.region ? `region ${input.region}` : 'an unknown region'} (the smallest default)`;
    const head = `declared publishing: ${fmt(total)} events/s against ${fmt(tps)} Publish/s by default in ${where}, ${pct(total, tps)}, shared by every service of the account there`;
    if (total > tps) return [{ level: 'error', rule: this.id, message: `${head}: SNS throttles (ThrottlingException); ask for a quota increase, or publish with PublishBatch` }];
    if (total >= tps * 0.5) return [{ level: 'warning', rule: this.id, message: `${head}: less than 2x headroom for bursts and for the other services` }];
    return [{ level: 'info', rule: this.id, message: head }];
  },
};

/** Every static rule, in report order. New settings add one entry here. */
export const RULES: readonly Rule[] = [
  filterPoliciesPerTopic,
  filterPolicyShape,
  messageAttributes,
  eventSize,
  publishRate,
  inFlightDuringOutage,
  ordered,
  visibilityExtension,
  maxReceiveCount,
  caps,
  unpublishedTypes,
  unreceivedTypes,
  undeclaredPublishes,
];

/** Runs the rules over the input. */
export function runRules(input: CheckInput, rules: readonly Rule[] = RULES): Finding[] {
  return rules.flatMap((r) => r.run(input));
}
