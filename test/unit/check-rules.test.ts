// `eventbus check`'s rules, each against a fixture that triggers it and one that does not (pure:
// fixture handler objects and a config, no files, no AWS).
import t from 'tap';
import { loadConfig, type Config } from '../../dist/config.js';
import { filterPolicyFor } from '../../dist/publisher/provision.js';
import { checkInput, runCheck, RULES, exitCodeOf, formatText, toReport, parseManifest, type CheckHandler, type Finding, type PublisherManifest } from '../../dist/check/index.js';
import { estimatedEventBytes, retryWindowSec, MIN_EXTENDED_VISIBILITY_SEC } from '../../dist/check/rules.js';
import { SNS_MAX_BYTES } from '../../dist/event/index.js';

function handler(queue: string, o: Partial<CheckHandler> = {}): CheckHandler {
  const events = o.events === undefined ? [`${queue.toUpperCase()}_EVENT`] : o.events;
  return {
    file: `/h/${queue}.js`,
    queue,
    queueName: queue,
    dlqName: `${queue}-dlq`,
    events,
    concurrency: 5,
    prefetch: 5,
    visibilityTimeoutSec: 30,
    timeoutMs: 20_000,
    maxReceiveCount: 5,
    ordered: false,
    groupConcurrency: null,
    publishes: [],
    filterPolicy: filterPolicyFor(events),
    ...o,
  };
}

function config(overrides: Record<string, unknown> = {}): Readonly<Config> {
  return loadConfig({ env: {}, overrides: { threads: 2, failureEvents: { enabled: false }, ...overrides } });
}

/** Findings of one rule. */
function run(handlers: CheckHandler[], o: { cfg?: Record<string, unknown>; manifests?: PublisherManifest[]; region?: string | null } = {}): Finding[] {
  return runCheck(checkInput(handlers, config(o.cfg), o.manifests ?? [], o.region ?? null));
}
const of = (findings: Finding[], rule: string) => findings.filter((f) => f.rule === rule);
const levels = (findings: Finding[], rule: string) => of(findings, rule).map((f) => f.level);
/** A bus where every type is published by a manifest and received by a handler. */
const manifest = (events: PublisherManifest['events'], name = 'svc'): PublisherManifest => ({ name, events });
const typeOf = (queue: string) => `${queue.toUpperCase()}_EVENT`;
const cleanManifest = (...queues: string[]) => manifest(Object.fromEntries(queues.map((q) => [typeOf(q), { ratePerSec: null, maxBytes: null, attributes: [] }])));

t.test('a clean bus: no errors, no warnings; the filter-policy count as info', async (t) => {
  const hs = [handler('a'), handler('b')];
  const f = run(hs, { manifests: [cleanManifest('a', 'b')] });
  t.same(f.filter((x) => x.level !== 'info'), [], 'no errors or warnings');
  t.same(of(f, 'filter-policies-per-topic').map((x) => x.message), ['2 of 200 filter policies on topic events (1%)']);
  t.equal(exitCodeOf(f), 0);
});

t.test('filter-policies-per-topic: info below 160, warning from 160, error above 200', async (t) => {
  const many = (n: number) => Array.from({ length: n }, (_, i) => handler(`q${i}`));
  t.same(levels(run(many(159)), 'filter-policies-per-topic'), ['info']);
  t.same(levels(run(many(160)), 'filter-policies-per-topic'), ['warning']);
  t.same(levels(run(many(200)), 'filter-policies-per-topic'), ['warning']);
  const over = of(run(many(201)), 'filter-policies-per-topic');
  t.same(over.map((x) => x.level), ['error']);
  t.match(over[0]!.message, /201 of 200 filter policies on topic events .*shard the topic/);
  // Handlers without a filter (every event) do not count.
  t.same(levels(run([...many(200), handler('all', { events: null })]), 'filter-policies-per-topic'), ['warning']);
});

t.test('filter-policy-limits: keys, value combinations, size', async (t) => {
  const values = (n: number) => Array.from({ length: n }, (_, i) => `T${i}`);
  const combos = (n: number) => levels(run([handler('a', { filterPolicy: { 'event-type': values(n) } })]), 'filter-policy-limits');
  t.same(combos(119), []);
  t.same(combos(120), ['warning']);
  t.same(combos(151), ['error']);
  const keys = run([handler('a', { filterPolicy: { a: ['1'], b: ['1'], c: ['1'], d: ['1'], e: ['1'], f: ['1'] } })]);
  t.match(of(keys, 'filter-policy-limits'), [{ level: 'error', queue: 'a', message: /6 keys; SNS allows 5/ }]);
  // 3 x 2 x 26 = 156: the product of every key's values.
  const product = run([handler('a', { filterPolicy: { a: ['1', '2', '3'], b: ['1', '2'], c: values(26) } })]);
  t.match(of(product, 'filter-policy-limits'), [{ level: 'error', message: /156 value combinations/ }]);
  const big = run([handler('a', { filterPolicy: { 'event-type': ['x'.repeat(270_000)] } })]);
  t.match(of(big, 'filter-policy-limits'), [{ level: 'error', message: /bytes; SNS allows 262144/ }]);
});

t.test('message-attributes: more than 10 per published type is a warning', async (t) => {
  const attrs = (n: number) => Array.from({ length: n }, (_, i) => `a${i}`);
  const m = (n: number) => manifest({ A_EVENT: { ratePerSec: null, maxBytes: null, attributes: attrs(n) } });
  t.same(levels(run([handler('a')], { manifests: [m(9)] }), 'message-attributes'), [], 'event-type + 9 = 10');
  const f = of(run([handler('a')], { manifests: [m(10)] }), 'message-attributes');
  t.match(f, [{ level: 'warning', message: /A_EVENT carries 11 message attributes \(event-type, a0, .*raw-delivery/ }]);
});

t.test('event-size: the largest declared event against 256 KiB, with the CloudEvent and attributes around it', async (t) => {
  const overhead = estimatedEventBytes('A_EVENT', 0, 'svc', ['event-type']);
  t.ok(overhead > 150 && overhead < 400, `envelope overhead ${overhead} bytes`);
  const sized = (maxBytes: number) => manifest({ A_EVENT: { ratePerSec: null, maxBytes, attributes: [] } });
  const cfg = { source: 'svc' };
  t.same(levels(run([handler('a')], { cfg, manifests: [sized(1000)] }), 'event-size'), []);
  t.same(levels(run([handler('a')], { cfg, manifests: [sized(Math.ceil(SNS_MAX_BYTES * 0.8))] }), 'event-size'), ['warning']);
  t.same(levels(run([handler('a')], { cfg, manifests: [sized(SNS_MAX_BYTES - overhead)] }), 'event-size'), ['warning'], 'exactly the limit');
  const over = of(run([handler('a')], { cfg, manifests: [sized(SNS_MAX_BYTES - overhead + 1)] }), 'event-size');
  t.match(over, [{ level: 'error', message: /A_EVENT: data up to .* makes a 262,145-byte SNS message; SNS allows 262,144/ }]);
  // With a claim check (issue 18), an oversized event is an info.
  const input = checkInput([handler('a')], config(cfg), [sized(300_000)], null);
  t.same(runCheck({ ...input, claimCheckBytes: 200_000 }).filter((f) => f.rule === 'event-size').map((f) => f.level), ['info']);
});

t.test('unpublished-type: info without manifests, warning with them; declared publishes and built-ins count', async (t) => {
  const hs = [handler('a'), handler('b', { events: ['A_EVENT', 'B_EVENT'] })];
  const none = of(run(hs), 'unpublished-type');
  t.same(none.map((f) => [f.level, f.message.split(' ')[0]]), [['info', 'A_EVENT'], ['info', 'B_EVENT']]);
  t.match(none[0]!.message, /received by a, b.*--publishes FILE/);
  const withManifest = of(run(hs, { manifests: [cleanManifest('a')] }), 'unpublished-type');
  t.same(withManifest.map((f) => [f.level, f.message.split(' ')[0]]), [['warning', 'B_EVENT']]);
  // A handler's publishes is a publisher.
  t.same(of(run([handler('a'), handler('b', { publishes: ['A_EVENT'], events: ['A_EVENT'] })], { manifests: [manifest({})] }), 'unpublished-type'), []);
  // Webhook ingress publishes its source's type when configured.
  const stripe = [handler('billing', { events: ['STRIPE_INCOMING_WEBHOOK'] })];
  t.same(levels(run(stripe, { manifests: [manifest({})] }), 'unpublished-type'), ['warning']);
  t.same(levels(run(stripe, { manifests: [manifest({})], cfg: { webhooks: { stripe: { secrets: ['whsec_x'] } } } }), 'unpublished-type'), []);
  t.same(of(run([handler('gh', { events: ['GITHUB_INCOMING_WEBHOOK'] })], { manifests: [manifest({})], cfg: { webhooks: { sources: { github: { header: 'x-hub-signature-256', secret: 's' } } } } }), 'unpublished-type'), []);
  // Handlers that do not declare publishes are named as possible publishers.
  t.match(of(run([handler('a', { publishes: null })]), 'unpublished-type'), [{ message: /handlers without publishes may send it: a/ }]);
});

t.test('unreceived-type: a declared or manifest type nobody receives is a warning; a built-in one an info', async (t) => {
  const f = of(run([handler('a', { publishes: ['SENT'] })], { manifests: [cleanManifest('a')] }), 'unreceived-type');
  t.match(f, [{ level: 'warning', message: /^SENT \(published by handler a\): no handler receives it/ }]);
  t.same(of(run([handler('a', { publishes: ['SENT'] }), handler('all', { events: null })]), 'unreceived-type'), [], 'a handler of every event receives it');
  const failures = of(run([handler('a')], { cfg: { failureEvents: { enabled: true } } }), 'unreceived-type');
  t.match(failures, [{ level: 'info', message: /^TASK_WORKER_FAILED \(published by failureEvents.enabled\)/ }]);
});

t.test('undeclared-publishes: an info per handler without publishes, not for built-ins', async (t) => {
  const f = of(run([handler('a', { publishes: null }), handler('archive', { publishes: null, events: null, builtIn: 'archive.enabled' }), handler('b')]), 'undeclared-publishes');
  t.same(f.map((x) => [x.level, x.queue]), [['info', 'a']]);
});

t.test('visibility-timeout: a handler outliving a visibility timeout too short to extend', async (t) => {
  t.equal(MIN_EXTENDED_VISIBILITY_SEC, 4);
  const v = (visibilityTimeoutSec: number, timeoutMs: number) => levels(run([handler('a', { visibilityTimeoutSec, timeoutMs })]), 'visibility-timeout');
  t.same(v(3, 60_000), ['error'], 'runs past 3 s, extensions every 1.5 s');
  t.same(v(4, 60_000), [], 'from 4 s the extender has room');
  t.same(v(3, 1_000), [], 'done (with its grace) within the visibility timeout: no extension needed');
  t.same(v(2, 1_000), ['error'], '1 s + 2 s grace outlives 2 s');
  t.match(of(run([handler('a', { visibilityTimeoutSec: 1, timeoutMs: 60_000 })]), 'visibility-timeout'), [{ queue: 'a', message: /visibilityTimeout 1 s is below the handler's timeoutMs 60000/ }]);
});

t.test('max-receive-count: 1 is an error', async (t) => {
  t.same(levels(run([handler('a', { maxReceiveCount: 1 })]), 'max-receive-count'), ['error']);
  t.same(levels(run([handler('a', { maxReceiveCount: 2 })]), 'max-receive-count'), []);
  t.match(of(run([handler('a', { maxReceiveCount: 1 })]), 'max-receive-count'), [{ queue: 'a', message: /released at shutdown/ }]);
});

t.test('caps: a queue cap above the host cap or the pool, too few slots for the queues, a cap below processes', async (t) => {
  const caps = (hs: CheckHandler[], cfg: Record<string, unknown>) => of(run(hs, { cfg }), 'caps').map((f) => [f.level, f.queue ?? null, f.message]);
  t.same(caps([handler('a', { concurrency: 10 })], { concurrency: 10, threads: 2 }), [], 'the default pool fits the cap');
  t.match(caps([handler('a', { concurrency: 20 })], { concurrency: 10 }), [['warning', 'a', /concurrency 20 is above the host's concurrency 10/]]);
  t.match(caps([handler('a', { concurrency: 10 })], { concurrency: 10, threads: 2, tasksPerThread: 2 }), [
    ['warning', null, /concurrency 10 is above the thread pool \(threads 2 x tasksPerThread 2 = 4\)/],
    ['warning', 'a', /concurrency 10 is above the thread pool/],
  ]);
  t.match(caps([handler('a', { concurrency: 1 }), handler('b', { concurrency: 1 }), handler('c', { concurrency: 1 })], { concurrency: 2 }), [['error', null, /3 queues need at least as many slots.*has 2/]]);
  t.match(caps([handler('a', { concurrency: 1 }), handler('b', { concurrency: 4 })], { concurrency: 4, processes: 2 }), [['error', 'a', /concurrency 1 is below processes 2/]]);
});

t.test('in-flight-outage: rate x backoff window against 120,000 in flight', async (t) => {
  t.equal(retryWindowSec(5, 2, 900), 2 + 4 + 8 + 16, 'the ceilings of the 4 backoffs before the 5th receive');
  t.equal(retryWindowSec(12, 2, 900), 2 + 4 + 8 + 16 + 32 + 64 + 128 + 256 + 512 + 900 + 900);
  const rated = (rate: number) => manifest({ A_EVENT: { ratePerSec: rate, maxBytes: null, attributes: [] } });
  const h = handler('a', { maxReceiveCount: 12, timeoutMs: 30_000 });
  const window = retryWindowSec(12, 2, 900) + 30; // 2852 s
  t.same(levels(run([h], { manifests: [rated(10)] }), 'in-flight-outage'), []);
  t.same(levels(run([h], { manifests: [rated(Math.ceil((120_000 * 0.8) / window))] }), 'in-flight-outage'), ['warning']);
  const over = of(run([h], { manifests: [rated(50)] }), 'in-flight-outage');
  t.match(over, [{ level: 'error', queue: 'a', message: /at 50 events\/s, an outage .* keeps up to 142,600 messages in flight.*OverLimit/ }]);
  t.same(levels(run([h], { manifests: [rated(50)], cfg: { retry: { maxDelaySec: 60 } } }), 'in-flight-outage'), [], 'a lower retry.maxDelaySec fixes it');
});

t.test('publish-rate: declared rates against the region\'s Publish quota', async (t) => {
  const rated = (rate: number) => [manifest({ A_EVENT: { ratePerSec: rate, maxBytes: null, attributes: [] } })];
  t.same(levels(run([handler('a')]), 'publish-rate'), [], 'no rates, no finding');
  t.same(levels(run([handler('a')], { manifests: rated(1000), region: 'us-east-1' }), 'publish-rate'), ['info']);
  t.same(levels(run([handler('a')], { manifests: rated(1000), region: 'eu-central-1' }), 'publish-rate'), ['warning'], '1,000 of 1,500');
  t.match(of(run([handler('a')], { manifests: rated(1000), region: 'af-south-1' }), 'publish-rate'), [{ level: 'error', message: /1,000 events\/s against 300 Publish\/s by default in an unknown region|region af-south-1/ }]);
  t.match(of(run([handler('a')], { manifests: rated(400) }), 'publish-rate'), [{ level: 'error', message: /an unknown region \(the smallest default\)/ }]);
});

t.test('report: errors first, one line per finding and a summary; --json shape; exit code', async (t) => {
  const f = run([handler('a', { maxReceiveCount: 1 }), handler('b', { publishes: ['SENT'] })], { manifests: [cleanManifest('a', 'b')] });
  t.same([...new Set(f.map((x) => x.level))], ['error', 'warning', 'info'], 'sorted by level');
  const text = formatText(f, '2 handlers, topic events').split('\n');
  t.match(text[0], /^error max-receive-count \[a\]: maxReceiveCount 1/);
  t.match(text.at(-1), /^check: 1 error, 1 warning, 1 info \(2 handlers, topic events\)$/);
  t.equal(text.length, f.length + 1);
  const report = toReport(f, false);
  t.same(Object.keys(report), ['ok', 'live', 'summary', 'findings']);
  t.same(report.summary, { errors: 1, warnings: 1, infos: 1 });
  t.equal(report.ok, false);
  t.equal(exitCodeOf(f), 1);
  for (const x of report.findings) t.same(Object.keys(x).filter((k) => !['level', 'rule', 'queue', 'message'].includes(k)), [], 'finding keys');
});

t.test('every rule has a unique id and a description', async (t) => {
  const ids = RULES.map((r) => r.id);
  t.equal(new Set(ids).size, ids.length);
  for (const r of RULES) t.ok(r.describe.length > 10, r.id);
});

t.test('parseManifest: the list form, the object form, and errors naming the key', async (t) => {
  t.same(parseManifest('/x/users.json', ['A', 'B']), { name: 'users.json', events: { A: { ratePerSec: null, maxBytes: null, attributes: [] }, B: { ratePerSec: null, maxBytes: null, attributes: [] } } });
  t.same(parseManifest('/x/users.json', { service: 'users-api', events: { A: { ratePerSec: 5, maxBytes: 100, attributes: ['tenant'] } } }), {
    name: 'users-api (users.json)',
    events: { A: { ratePerSec: 5, maxBytes: 100, attributes: ['tenant'] } },
  });
  t.throws(() => parseManifest('m.json', { events: { A: { rate: 1 } } }), { code: 'ERR_USAGE', message: /unknown key "events.A.rate" \(allowed: ratePerSec, maxBytes, attributes\)/ });
  t.throws(() => parseManifest('m.json', { event: [] }), { code: 'ERR_USAGE', message: /unknown key "event"/ });
  t.throws(() => parseManifest('m.json', { events: { A: { maxBytes: -1 } } }), { message: /events.A.maxBytes must be a number >= 0/ });
  t.throws(() => parseManifest('m.json', 'A'), { message: /must be a list of event types/ });
  t.throws(() => parseManifest('m.json', [1]), { message: /non-empty event type strings/ });
});

t.test('ordered: how long a failing message holds its group; declared rates against the FIFO quotas', async (t) => {
  const o = (queue: string, x: Partial<CheckHandler> = {}) => handler(queue, { ordered: true, queueName: `${queue}.fifo`, dlqName: `${queue}-dlq.fifo`, prefetch: 0, ...x });
  t.same(of(run([handler('a')]), 'ordered'), [], 'no ordered handler, no finding');
  // maxReceiveCount 5, timeout 20 s: backoffs 2+4+8+16 = 30 s, plus 5 attempts x 20 s.
  t.match(of(run([o('a')]), 'ordered'), [{ level: 'info', queue: 'a', message: /holds its message group for up to 130 s before it reaches the DLQ \(maxReceiveCount 5/ }]);
  const long = o('a', { maxReceiveCount: 12, timeoutMs: 30_000 }); // 2822 s of backoff + 12 x 30 s
  t.match(of(run([long]), 'ordered'), [{ level: 'warning', queue: 'a', message: /up to 3,182 s .*NonRetryableError/ }]);
  t.same(levels(run([long], { cfg: { retry: { maxDelaySec: 60 } } }), 'ordered'), ['info'], 'a lower retry.maxDelaySec brings it under 15 minutes');
  const rated = (rates: Record<string, number>) => manifest(Object.fromEntries(Object.entries(rates).map(([type, r]) => [type, { ratePerSec: r, maxBytes: null, attributes: [] }])));
  t.same(levels(run([o('a')], { manifests: [rated({ A_EVENT: 300 })] }), 'ordered'), ['info'], '300/s: at the queue quota, not over');
  t.match(of(run([o('a')], { manifests: [rated({ A_EVENT: 301 })] }), 'ordered'), [{ level: 'warning', queue: 'a', message: /at 301 events\/s the FIFO queue is over SQS's 300 calls\/s.*high throughput/ }, { level: 'info' }]);
  // The FIFO topic carries every ordered type: 2 x 1,500 is at its 3,000/s (warning), 2 x 1,501 over it (error).
  const two = [o('a'), o('b')];
  const near = of(run(two, { manifests: [rated({ A_EVENT: 1_500, B_EVENT: 1_500 })] }), 'ordered').filter((f) => f.queue === undefined);
  t.match(near, [{ level: 'warning', message: /FIFO topic: 3,000 events\/s against its 3,000 messages\/s/ }]);
  const over = of(run(two, { manifests: [rated({ A_EVENT: 1_501, B_EVENT: 1_500 })] }), 'ordered').filter((f) => f.queue === undefined);
  t.match(over, [{ level: 'error', message: /3,001 events\/s .*FifoThroughputScope/ }]);
  t.same(of(run([o('a'), handler('b')], { manifests: [rated({ A_EVENT: 10, B_EVENT: 5_000 })] }), 'ordered').filter((f) => f.queue === undefined), [], 'a standard handler\'s types do not count toward the FIFO topic');
});
