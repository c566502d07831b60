// The oldest message's age for `eventbus status`, which SQS does not give with the depths: from
// CloudWatch (ApproximateAgeOfOldestMessage) or from a supervisor's own eventbus_message_age_seconds.
import { clientConfig, type AwsSettings } from '../aws.js';
import { awsErrorName } from '../errors.js';

/** One queue's age: seconds, and what they mean; seconds null = not available, the note says why. */
export interface AgeReading {
  seconds: number | null;
  note: string;
}

/** How far back CloudWatch is asked: SQS sends its metrics every minute, a few minutes late. */
const CLOUDWATCH_WINDOW_MS = 15 * 60_000;
/** GetMetricData takes at most 500 queries per call (CloudWatch API reference). */
const MAX_QUERIES = 500;

/**
 * ApproximateAgeOfOldestMessage (AWS/SQS, dimension QueueName) per SQS queue name: the latest
 * 1-minute Maximum of the last 15 minutes. The CloudWatch SDK is loaded only here (`--cloudwatch`).
 * Never throws for CloudWatch's sake: a call that fails (no CloudWatch at the endpoint, access
 * denied) gives every queue a null reading with the reason.
 */
export async function ageFromCloudWatch(aws: AwsSettings, queueNames: string[]): Promise<Map<string, AgeReading>> {
  const out = new Map<string, AgeReading>();
  if (queueNames.length === 0) return out;
  const { CloudWatchClient, GetMetricDataCommand } = await import('@aws-sdk/client-cloudwatch');
  const cw = new CloudWatchClient(clientConfig(aws, 4));
  const end = new Date();
  const start = new Date(end.getTime() - CLOUDWATCH_WINDOW_MS);
  try {
    for (let i = 0; i < queueNames.length; i += MAX_QUERIES) {
      const chunk = queueNames.slice(i, i + MAX_QUERIES);
      const found = new Map<string, { value: number; at: Date }>();
      let next: string | undefined;
      try {
        do {
          const page = await cw.send(
            new GetMetricDataCommand({
              StartTime: start,
              EndTime: end,
              ScanBy: 'TimestampDescending',
              NextToken: next,
              MetricDataQueries: chunk.map((name, j) => ({
                Id: `q${j}`,
                ReturnData: true,
                MetricStat: {
                  Metric: { Namespace: 'AWS/SQS', MetricName: 'ApproximateAgeOfOldestMessage', Dimensions: [{ Name: 'QueueName', Value: name }] },
                  Period: 60,
                  Stat: 'Maximum',
                },
              })),
            }),
          );
          for (const r of page.MetricDataResults ?? []) {
            const name = chunk[Number(r.Id?.slice(1))];
            const value = r.Values?.[0];
            const at = r.Timestamps?.[0];
            // Newest first (TimestampDescending): the first page that has a value has the latest one.
            if (name !== undefined && value !== undefined && at !== undefined && !found.has(name)) found.set(name, { value, at });
          }
          next = page.NextToken;
        } while (next);
      } catch (err) {
        const reason = `CloudWatch not available: ${describeFailure(err)}`;
        for (const name of chunk) out.set(name, { seconds: null, note: reason });
        continue;
      }
      for (const name of chunk) {
        const f = found.get(name);
        out.set(
          name,
          f
            ? { seconds: f.value, note: `CloudWatch ApproximateAgeOfOldestMessage, Maximum of the minute at ${f.at.toISOString()}` }
            : { seconds: null, note: 'no CloudWatch datapoint in the last 15 minutes (SQS stops sending metrics for a queue inactive for 6 hours)' },
        );
      }
    }
  } finally {
    cw.destroy();
  }
  return out;
}

function describeFailure(err: unknown): string {
  const name = awsErrorName(err);
  const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  const msg = ((err as Error)?.message ?? String(err)).split('\n')[0]!.slice(0, 200);
  if (name === 'AccessDenied' || name === 'AccessDeniedException') return `not allowed (${name}: cloudwatch:GetMetricData is needed)`;
  return `${name && name !== 'Error' ? `${name}: ` : ''}${msg}${status ? ` (HTTP ${status})` : ''}`;
}

/** How long the scrape of a supervisor's /metrics may take. */
const SCRAPE_TIMEOUT_MS = 10_000;

/**
 * From a supervisor's /metrics: per handler queue (the `queue` label), the upper bound of the highest
 * bucket of eventbus_message_age_seconds holding a message: the largest age at receive since that
 * supervisor started, as a bound. A scrape that fails gives every queue a null reading with the reason.
 */
export async function ageFromMetrics(url: URL, queues: string[]): Promise<Map<string, AgeReading>> {
  const out = new Map<string, AgeReading>();
  let text: string;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(SCRAPE_TIMEOUT_MS), headers: { accept: 'text/plain' } });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    text = await res.text();
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code;
    const note = `${url.href} not available: ${(err as Error).message}${cause ? ` (${cause})` : ''}`;
    for (const q of queues) out.set(q, { seconds: null, note });
    return out;
  }
  const buckets = histogramBuckets(text, 'eventbus_message_age_seconds');
  for (const q of queues) {
    const b = buckets.get(q);
    if (!b || b.count === 0) {
      out.set(q, { seconds: null, note: 'the supervisor has received no message of this queue since it started' });
      continue;
    }
    // Cumulative buckets: the first bound whose count reaches the total holds the largest age.
    const finite = b.bounds.filter((x) => Number.isFinite(x.le));
    const top = finite.find((x) => x.count >= b.count);
    out.set(
      q,
      top
        ? { seconds: top.le, note: `eventbus_message_age_seconds: largest age at receive since the supervisor started, at most ${top.le} s (bucket bound)` }
        : { seconds: finite.at(-1)?.le ?? null, note: `eventbus_message_age_seconds: largest age at receive since the supervisor started is above ${finite.at(-1)?.le} s (the largest bucket)` },
    );
  }
  return out;
}

/** The buckets of one histogram by its `queue` label, summed over any other labels, sorted by bound. */
export function histogramBuckets(text: string, name: string): Map<string, { count: number; bounds: Array<{ le: number; count: number }> }> {
  const out = new Map<string, { count: number; bounds: Map<number, number> }>();
  const line = new RegExp(`^${name}_bucket\\{([^}]*)\\}\\s+(\\S+)`);
  for (const l of text.split('\n')) {
    const m = line.exec(l);
    if (!m) continue;
    const labels = Object.fromEntries([...m[1]!.matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)].map((x) => [x[1], x[2]!.replace(/\\(.)/g, '$1')]));
    const queue = labels.queue;
    const le = labels.le === '+Inf' ? Infinity : Number(labels.le);
    const count = Number(m[2]);
    if (queue === undefined || Number.isNaN(le) || !Number.isFinite(count)) continue;
    const h = out.get(queue) ?? { count: 0, bounds: new Map<number, number>() };
    h.bounds.set(le, (h.bounds.get(le) ?? 0) + count);
    if (le === Infinity) h.count += count;
    out.set(queue, h);
  }
  return new Map(
    [...out].map(([q, h]) => [q, { count: h.count, bounds: [...h.bounds].map(([le, count]) => ({ le, count })).sort((a, b) => a.le - b.le) }]),
  );
}
