// The IAM policies in deploy/iam/ grant exactly what the code calls: every `new <Op>Command(` of
// @aws-sdk/client-sqs and client-sns in src/ maps to an IAM action, and the policies allow that
// set and nothing more. Batch APIs are authorised by their single-message actions (deploy/README.md).
// They are `eventbus provision --print-iam` for the example handlers, and name only our queues and
// topic (issue 14: they granted prod-*, the DLQs, and every subscription of the account).
import t, { type Test } from 'tap';
import { loadConfig } from '../../dist/config.js';
import { loadHandlers } from '../../dist/handlers.js';
import { builtInHandlers } from '../../dist/built-ins.js';
import { iamPolicies } from '../../dist/publisher/iam.js';
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const PROVISION = join(SRC, 'publisher', 'provision.ts');
/** The payloads bucket's provisioning, loaded by provision.ts (a dynamic import) only when a bucket is configured. */
const PROVISION_BUCKET = join(SRC, 'publisher', 'provision-bucket.ts');
const isProvisioning = (f: string) => f === PROVISION || f === PROVISION_BUCKET;

/** API operations whose IAM action is another operation's (AWS: batch APIs are authorised by the single action). */
const BATCH_ACTIONS: Record<string, string> = {
  'sqs:DeleteMessageBatch': 'sqs:DeleteMessage',
  'sqs:ChangeMessageVisibilityBatch': 'sqs:ChangeMessageVisibility',
  'sqs:SendMessageBatch': 'sqs:SendMessage',
  'sns:PublishBatch': 'sns:Publish',
};
/** S3 operations whose IAM action has another name (the S3 User Guide's "Actions for Amazon S3"). */
const S3_ACTIONS: Record<string, string> = {
  's3:HeadBucket': 's3:ListBucket',
  's3:HeadObject': 's3:GetObject',
  's3:GetBucketLifecycleConfiguration': 's3:GetLifecycleConfiguration',
  's3:PutBucketLifecycleConfiguration': 's3:PutLifecycleConfiguration',
};
/** Actions without resource-level permissions in these policies (Resource "*"). */
const RESOURCE_STAR = new Set(['sns:ListTopics']);
/** The placeholders of deploy/ (deploy/README.md), with the topic given as an ARN as recommended there. */
const ACCOUNT = '123456789012';
const TOPIC_ARN = `arn:aws:sns:us-east-1:${ACCOUNT}:events`;
const sqsArn = (name: string) => `arn:aws:sqs:us-east-1:${ACCOUNT}:${name}`;
/** The example's payloads bucket (README "Large events"). */
const BUCKET = 'prod-eventbus-payloads';
/** The example handlers (handlers/ compiled to dist/handlers) under the example config. */
async function exampleHandlers() {
  const config = loadConfig({ env: { EVENTBUS_QUEUE_PREFIX: 'prod-', EVENTBUS_TOPIC: TOPIC_ARN, EVENTBUS_HANDLERS_DIR: join(ROOT, 'dist', 'handlers'), EVENTBUS_PAYLOADS_BUCKET: BUCKET } });
  return Object.assign(await loadHandlers(config, builtInHandlers(config)), { payloads: config.payloads });
}

type Service = 'sqs' | 'sns' | 's3';

function iamAction(service: Service, command: string): string {
  const op = `${service}:${command.replace(/Command$/, '')}`;
  return BATCH_ACTIONS[op] ?? S3_ACTIONS[op] ?? op;
}

function tsFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...tsFiles(p));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(p);
  }
  return out.sort();
}

interface Scanned {
  /** IAM actions of the AWS commands the file constructs. */
  actions: Map<string, string[]>;
  /** Relative imports, resolved to .ts files. */
  imports: string[];
}

/** The SQS/SNS/S3 commands a file constructs (`new XCommand(`), through its imports from the three clients. */
function scan(file: string): Scanned {
  const text = readFileSync(file, 'utf8');
  const bound = new Map<string, { service: Service; command: string }>();
  for (const m of text.matchAll(/import\s+(?:type\s+)?\{([^}]*)\}\s*from\s*['"]@aws-sdk\/client-(sqs|sns|s3)['"]/g)) {
    for (const raw of m[1]!.split(',')) {
      const spec = raw.trim();
      if (!spec || spec.startsWith('type ')) continue;
      const [name, alias] = spec.split(/\s+as\s+/).map((s) => s.trim());
      if (name && name.endsWith('Command')) bound.set(alias ?? name, { service: m[2] as Service, command: name });
    }
  }
  // Clients loaded lazily through a `<service>Sdk()` loader (src/publisher/sns-sdk.ts): names
  // destructured from it, and `new (await snsSdk()).XCommand(`.
  for (const m of text.matchAll(/const\s*\{([^}]*)\}\s*=\s*await\s+(sqs|sns|s3)Sdk\(\)/g)) {
    for (const raw of m[1]!.split(',')) {
      const [name, alias] = raw.split(':').map((x) => x.trim());
      if (name && name.endsWith('Command')) bound.set(alias ?? name, { service: m[2] as Service, command: name });
    }
  }
  const actions = new Map<string, string[]>();
  const add = (service: Service, command: string) => {
    const action = iamAction(service, command);
    actions.set(action, [...(actions.get(action) ?? []), command]);
  };
  for (const m of text.matchAll(/new\s+([A-Za-z0-9_$]+)\s*\(/g)) {
    const b = bound.get(m[1]!);
    if (b) add(b.service, b.command);
  }
  for (const m of text.matchAll(/new\s*\(\s*await\s+(sqs|sns|s3)Sdk\(\)\s*\)\.([A-Za-z0-9_$]+Command)\s*\(/g)) add(m[1] as Service, m[2]!);
  const imports: string[] = [];
  // Static imports, and dynamic ones (modules loaded only when needed, such as the bucket's provisioning).
  for (const m of text.matchAll(/(?:from\s*|import\(\s*)['"](\.{1,2}\/[^'"]+)\.js['"]/g)) {
    imports.push(resolve(dirname(file), `${m[1]}.ts`));
  }
  return { actions, imports };
}

const files = tsFiles(SRC);
const scanned = new Map(files.map((f) => [f, scan(f)]));
const rel = (f: string) => relative(ROOT, f).split(sep).join('/');
/**
 * Operator code: the CLI, and the DLQ operations (src/dlq) that the CLI and the console's dead-letter
 * page run. They act with an operator's credentials (deploy/README.md "Operator CLI"), not the worker's.
 */
const isCli = (f: string) => rel(f).startsWith('src/cli/') || rel(f).startsWith('src/dlq/');

function actionsOf(list: string[]): Set<string> {
  const s = new Set<string>();
  for (const f of list) for (const a of scanned.get(f)!.actions.keys()) s.add(a);
  return s;
}

function without(set: Set<string>, action: string): Set<string> {
  return new Set([...set].filter((a) => a !== action));
}

/** A file and everything it imports, transitively. */
function closure(entry: string): string[] {
  const seen = new Set<string>();
  const visit = (f: string) => {
    if (seen.has(f) || !scanned.has(f)) return;
    seen.add(f);
    for (const i of scanned.get(f)!.imports) visit(i);
  };
  visit(entry);
  return [...seen];
}

interface Statement {
  Sid?: string;
  Effect: string;
  Action: string | string[];
  Resource: string | string[];
  Condition?: Record<string, Record<string, string | string[]>>;
}

function loadPolicy(name: string): { allowed: Set<string>; statements: Statement[] } {
  const doc = JSON.parse(readFileSync(join(ROOT, 'deploy', 'iam', name), 'utf8')) as { Version: string; Statement: Statement[] };
  if (doc.Version !== '2012-10-17') throw new Error(`${name}: Version must be 2012-10-17`);
  const allowed = new Set<string>();
  for (const s of doc.Statement) {
    if (s.Effect !== 'Allow') continue;
    for (const a of [s.Action].flat()) allowed.add(a);
  }
  return { allowed, statements: doc.Statement };
}

/** IAM-style wildcard match of an ARN pattern. */
function arnMatches(pattern: string, arn: string): boolean {
  const re = new RegExp(`^${pattern.split('*').map((p) => p.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
  return re.test(arn);
}

function checkResources(t: Test, name: string, statements: Statement[]) {
  for (const s of statements) {
    const actions = [s.Action].flat();
    const resources = [s.Resource].flat();
    for (const a of actions) {
      t.notMatch(a, /\*/, `${name}: ${a} is not a wildcard action`);
      for (const r of resources) {
        if (r === '*') {
          t.ok(RESOURCE_STAR.has(a), `${name}: ${a} is granted on "*" only if it has no resource-level permissions`);
        } else {
          const service = a.split(':')[0];
          t.match(r, new RegExp(`^arn:aws:${service}:`), `${name}: ${a} is granted on a ${service} ARN`);
        }
      }
    }
  }
}

t.test('the scanner sees the calls the supervisor is known to make', async (t) => {
  const all = new Map<string, string[]>();
  for (const s of scanned.values()) for (const [a, cmds] of s.actions) all.set(a, [...(all.get(a) ?? []), ...cmds]);
  // If these disappear the scanner (or the code) changed: either way this test must be revisited.
  t.ok(all.get('sqs:ReceiveMessage')?.includes('ReceiveMessageCommand'), 'ReceiveMessageCommand → sqs:ReceiveMessage');
  t.ok(all.get('sqs:DeleteMessage')?.includes('DeleteMessageBatchCommand'), 'DeleteMessageBatchCommand → sqs:DeleteMessage');
  t.ok(all.get('sqs:ChangeMessageVisibility')?.includes('ChangeMessageVisibilityBatchCommand'), 'ChangeMessageVisibilityBatchCommand → sqs:ChangeMessageVisibility');
  t.ok(all.get('sns:Publish')?.includes('PublishBatchCommand'), 'PublishBatchCommand → sns:Publish');
  t.ok(all.get('sns:Publish')?.includes('PublishCommand'), 'PublishCommand → sns:Publish');
  t.ok(all.get('sqs:CreateQueue')?.includes('CreateQueueCommand'), 'CreateQueueCommand → sqs:CreateQueue');
  t.ok(all.get('s3:GetObject')?.includes('GetObjectCommand'), 'GetObjectCommand → s3:GetObject');
  t.ok(all.get('s3:ListBucket')?.includes('HeadBucketCommand'), 'HeadBucketCommand → s3:ListBucket');
  for (const a of all.keys()) t.match(a, /^(sqs|sns|s3):[A-Z][A-Za-z]+$/, `${a} is an IAM action name`);
  t.notOk([...all.keys()].some((a) => /Batch$/.test(a)), 'no batch API is left as an IAM action (they have none of their own)');
});

t.test('worker-policy.json allows exactly what the worker code calls', async (t) => {
  // The worker: everything outside the CLI and the provisioner (the publisher's index.ts and
  // topic.ts run in the worker for failure events and ctx.publish).
  const workerFiles = files.filter((f) => !isCli(f) && !isProvisioning(f));
  // The example's topic is an ARN: the code lists topics only to resolve a name.
  const needed = without(actionsOf(workerFiles), 'sns:ListTopics');
  const { allowed, statements } = loadPolicy('worker-policy.json');
  t.same([...allowed].sort(), [...needed].sort(), 'allowed actions = actions the worker code needs');
  for (const a of needed) t.ok(allowed.has(a), `worker may ${a}`);
  for (const a of allowed) t.ok(needed.has(a), `worker policy grants ${a} only because the code calls it`);
  checkResources(t, 'worker-policy.json', statements);
  // Receive, delete and extend: the handler queues, nothing else (not their DLQs, not other queues of the prefix).
  for (const action of ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:ChangeMessageVisibility']) {
    const covered = (arn: string) => statements.some((s) => [s.Action].flat().includes(action) && [s.Resource].flat().some((r) => arnMatches(r, arn)));
    for (const q of ['prod-email', 'prod-billing']) t.ok(covered(sqsArn(q)), `${action} on ${q}`);
    for (const q of ['prod-email-dlq', 'prod-billing-dlq', 'prod-other-team', 'prod-archive', 'staging-email']) t.notOk(covered(sqsArn(q)), `no ${action} on ${q}`);
  }
  const reads = (arn: string) => statements.some((s) => [s.Action].flat().includes('sqs:GetQueueAttributes') && [s.Resource].flat().some((r) => arnMatches(r, arn)));
  t.ok(reads(sqsArn('prod-email-dlq')), "the DLQs' depth is read (eventbus_queue_messages)");
  // Dead-lettered at once (NonRetryableError, a schema failure): the worker sends to the DLQs, and only to them.
  const sends = (arn: string) => statements.some((s) => [s.Action].flat().includes('sqs:SendMessage') && [s.Resource].flat().some((r) => arnMatches(r, arn)));
  for (const q of ['prod-email-dlq', 'prod-billing-dlq']) t.ok(sends(sqsArn(q)), `sqs:SendMessage on ${q}`);
  for (const q of ['prod-email', 'prod-billing', 'prod-other-team', 'prod-other-team-dlq']) t.notOk(sends(sqsArn(q)), `no sqs:SendMessage on ${q}`);
  t.notOk(reads(sqsArn('prod-other-team')), 'and no other queue of the prefix');
  // Large events: read and write payloads under the prefix of the payloads bucket, nothing else of S3.
  const s3 = (action: string, arn: string) => statements.some((s) => [s.Action].flat().includes(action) && [s.Resource].flat().some((r) => arnMatches(r, arn)));
  for (const action of ['s3:GetObject', 's3:PutObject']) {
    t.ok(s3(action, `arn:aws:s3:::${BUCKET}/eventbus/0b6f6c2e-1f1e-4c1e-9d5e-1a2b3c4d5e6f`), `${action} on a payload of the bucket`);
    t.notOk(s3(action, `arn:aws:s3:::${BUCKET}/other/x`), `no ${action} outside the prefix`);
    t.notOk(s3(action, `arn:aws:s3:::another-bucket/eventbus/x`), `no ${action} on another bucket`);
  }
  t.notOk([...allowed].some((a) => a === 's3:DeleteObject' || a === 's3:CreateBucket'), 'workers never delete payloads (the lifecycle rule does) nor create buckets');
});

t.test('deploy/iam/*.json are what `eventbus provision --print-iam` prints for the example handlers', async (t) => {
  const handlers = await exampleHandlers();
  t.same(handlers.map((h) => h.queueName).sort(), ['prod-billing', 'prod-email'], 'the example handlers');
  const generated = iamPolicies({ handlers, topic: TOPIC_ARN, payloads: handlers.payloads });
  for (const which of ['worker', 'provisioner'] as const) {
    const file = JSON.parse(readFileSync(join(ROOT, 'deploy', 'iam', `${which}-policy.json`), 'utf8')) as unknown;
    t.same(file, generated[which], `deploy/iam/${which}-policy.json = --print-iam ${which} (regenerate it after changing the handlers)`);
  }
  // The command itself, as a deploy pipeline runs it (no AWS call: no endpoint, no credentials).
  for (const which of ['worker', 'provisioner'] as const) {
    const out = execFileSync(process.execPath, [join(ROOT, 'bin', 'eventbus.js'), 'provision', '--print-iam', which], {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', EVENTBUS_QUEUE_PREFIX: 'prod-', EVENTBUS_TOPIC: TOPIC_ARN, EVENTBUS_PAYLOADS_BUCKET: BUCKET },
      encoding: 'utf8',
    });
    t.same(JSON.parse(out), generated[which], `eventbus provision --print-iam ${which}`);
  }
  // By name, ListTopics (no resource-level permissions) is added, and the region and account must be given.
  const byName = iamPolicies({ handlers, topic: 'events', region: 'us-east-1', account: ACCOUNT, payloads: handlers.payloads });
  for (const doc of [byName.worker, byName.provisioner]) {
    t.ok(doc.Statement.some((s) => s.Action.includes('sns:ListTopics') && s.Resource === '*'), 'a topic by name: sns:ListTopics');
    // S3 ARNs carry no account (bucket names are global).
    t.ok(doc.Statement.every((s) => s.Resource === '*' || [s.Resource].flat().every((r) => r.startsWith('arn:aws:s3:::') || r.includes(`:${ACCOUNT}:`))), 'every ARN in the given account');
  }
  const workerFiles = files.filter((f) => !isCli(f) && !isProvisioning(f));
  const wanted = new Set(byName.worker.Statement.flatMap((s) => s.Action));
  t.same([...wanted].sort(), [...actionsOf(workerFiles)].sort(), 'by name the worker policy = every action the worker code calls');
  t.throws(() => iamPolicies({ handlers, topic: 'events', region: 'us-east-1' }), { code: 'ERR_USAGE', message: /--account/ });
  t.throws(() => iamPolicies({ handlers, topic: 'events', account: ACCOUNT }), { code: 'ERR_USAGE', message: /region/ });
  t.throws(() => iamPolicies({ handlers: [], topic: TOPIC_ARN }), { code: 'ERR_USAGE', message: /no handlers/ });
});

t.test('provisioner-policy.json allows exactly what provisioning calls', async (t) => {
  const provisionerFiles = closure(PROVISION);
  t.ok(provisionerFiles.some((f) => rel(f) === 'src/publisher/topic.ts'), 'provisioning shares topic resolution (ListTopics) with the publisher');
  t.ok(provisionerFiles.includes(PROVISION_BUCKET), "the bucket's provisioning (loaded on demand) is part of it");
  const needed = without(actionsOf(provisionerFiles), 'sns:ListTopics');
  const { allowed, statements } = loadPolicy('provisioner-policy.json');
  t.same([...allowed].sort(), [...needed].sort(), 'allowed actions = actions provisioning needs');
  for (const a of needed) t.ok(allowed.has(a), `provisioner may ${a}`);
  for (const a of allowed) t.ok(needed.has(a), `provisioner policy grants ${a} only because the code calls it`);
  checkResources(t, 'provisioner-policy.json', statements);
  t.notOk(allowed.has('sqs:DeleteQueue') || allowed.has('sns:DeleteTopic'), 'provisioning never deletes queues or topics');
  t.notOk(allowed.has('s3:GetObject') || allowed.has('s3:PutObject') || allowed.has('s3:DeleteBucket'), 'provisioning never reads or writes payloads, nor deletes the bucket');
  for (const action of ['s3:CreateBucket', 's3:PutLifecycleConfiguration']) {
    t.ok(grantsS3(statements, action, `arn:aws:s3:::${BUCKET}`), `${action} on the payloads bucket`);
    t.notOk(grantsS3(statements, action, 'arn:aws:s3:::another-bucket'), `no ${action} on another bucket`);
  }
  const grants = (action: string, arn: string) => statements.filter((s) => [s.Action].flat().includes(action) && [s.Resource].flat().some((r) => arnMatches(r, arn)));
  for (const q of ['prod-email', 'prod-email-dlq', 'prod-billing', 'prod-billing-dlq']) t.ok(grants('sqs:SetQueueAttributes', sqsArn(q)).length, `configures ${q}`);
  t.notOk(grants('sqs:SetQueueAttributes', sqsArn('prod-other-team')).length, "not another team's queue of the prefix");
  // Subscribe: only this topic and its FIFO topic (issue 17: ordered handlers), only the sqs protocol, only our handler queues as endpoints.
  const subscribe = statements.filter((s) => [s.Action].flat().includes('sns:Subscribe'));
  t.ok(subscribe.length > 0, 'sns:Subscribe is granted');
  for (const s of subscribe) {
    t.same([s.Resource].flat(), [TOPIC_ARN, `${TOPIC_ARN}.fifo`], 'Subscribe on the two topics only');
    t.equal(s.Condition?.StringEquals?.['sns:Protocol'], 'sqs', 'Subscribe only with protocol sqs');
    t.same([s.Condition?.StringEquals?.['sns:Endpoint'] ?? []].flat().sort(), [sqsArn('prod-billing'), sqsArn('prod-email')], 'Subscribe only our handler queues');
  }
  // Subscriptions of this topic only (a subscription ARN is `<topic ARN>:<id>`), never of the account.
  for (const action of ['sns:Unsubscribe', 'sns:SetSubscriptionAttributes', 'sns:GetSubscriptionAttributes']) {
    t.ok(grants(action, `${TOPIC_ARN}:0d2c6b3e-5c2f-4a55-9a53-2f0a3c1d9e11`).length, `${action} on a subscription of the topic`);
    t.ok(grants(action, `${TOPIC_ARN}.fifo:0d2c6b3e-5c2f-4a55-9a53-2f0a3c1d9e11`).length, `${action} on a subscription of the FIFO topic`);
    t.notOk(grants(action, `arn:aws:sns:us-east-1:${ACCOUNT}:billing-alerts:0d2c6b3e-5c2f-4a55-9a53-2f0a3c1d9e11`).length, `no ${action} on another topic's subscription`);
  }
});

function grantsS3(statements: Statement[], action: string, arn: string): boolean {
  return statements.some((s) => [s.Action].flat().includes(action) && [s.Resource].flat().some((r) => arnMatches(r, arn)));
}

t.test('operator CLI commands are reported, not checked', async (t) => {
  // src/cli/ (status, dlq, ...) runs with an operator's own credentials: see deploy/README.md.
  const cli = files.filter(isCli);
  const actions = actionsOf(cli);
  t.comment(`operator CLI calls directly: ${actions.size ? [...actions].sort().join(', ') : '(none)'}; plus provisioning and publishing through the shared modules`);
  t.pass('reported');
});
