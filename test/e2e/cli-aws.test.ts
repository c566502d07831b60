// Issue 20: --region and --profile reach the SDK clients of the commands that talk to AWS, and
// `dlq redrive --native` uses SQS's message move task API (StartMessageMoveTask) where the endpoint
// has it, and says so in one line where it does not (fauxqs). What the real SDK client sends is
// seen by a recording proxy in front of the emulator; the proxy answers the move task API itself.
import t, { type Test } from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetQueueAttributesCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { opsWorld, type OpsWorld } from '../helpers/ops-world.js';
import { recordingProxy, type RecordingProxy, type Responder } from '../helpers/recording-proxy.js';
import { jsonLines, runCli } from '../helpers/cli-run.js';

/** The ops world, and a config file whose endpoint is a recording proxy in front of the emulator. */
async function proxied(t: Test, respond?: Responder): Promise<{ w: OpsWorld; proxy: RecordingProxy; config: string; dir: string }> {
  const w = await opsWorld(t, 'aws');
  const proxy = await recordingProxy(w.emu.endpoint, respond);
  t.teardown(() => proxy.close());
  const dir = mkdtempSync(join(tmpdir(), 'eventbus-aws-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const config = join(dir, 'config.json');
  writeFileSync(config, JSON.stringify({ ...JSON.parse(readFileSync(w.config, 'utf8')), endpoint: proxy.endpoint }));
  return { w, proxy, config, dir };
}

/** The region and access key id in a SigV4 Authorization header (`Credential=<key>/<date>/<region>/sqs/aws4_request`). */
function scopeOf(auth: string | string[] | undefined): { key: string; region: string } | null {
  const m = /Credential=([^/]+)\/\d{8}\/([^/]+)\/sqs\/aws4_request/.exec(String(auth ?? ''));
  return m ? { key: m[1]!, region: m[2]! } : null;
}

async function dlqCount(w: OpsWorld): Promise<number> {
  const a = await w.emu.sqs.send(new GetQueueAttributesCommand({ QueueUrl: w.url('orders', true), AttributeNames: ['ApproximateNumberOfMessages'] }));
  return Number(a.Attributes?.ApproximateNumberOfMessages);
}

t.test('--region reaches the client: every signed request names it in its credential scope', async (t) => {
  const { proxy, config } = await proxied(t);
  const base = await runCli(t, ['dlq', 'peek', 'orders', '--config', config]);
  t.equal(base.code, 0, base.stderr);
  const before = proxy.requests().map((r) => scopeOf(r.headers.authorization)?.region);
  t.ok(before.length > 0 && before.every((r) => r === 'us-east-1'), `without --region: the config's region (${before.join(',')})`);

  // fauxqs keeps queues per region, as SQS does: in eu-west-3 the queues (made in us-east-1) do not exist.
  const n = proxy.requests().length;
  const r = await runCli(t, ['dlq', 'peek', 'orders', '--region', 'eu-west-3', '--config', config]);
  t.equal(r.code, 1, r.stderr);
  t.match(r.stderr, /queue .*orders-dlq does not exist/, 'the queue is looked up in eu-west-3');
  const after = proxy.requests().slice(n);
  t.ok(after.length >= 1, `requests were made (${after.map((x) => x.operation).join(', ')})`);
  t.same([...new Set(after.map((x) => scopeOf(x.headers.authorization)?.region))], ['eu-west-3'], 'every request is signed for eu-west-3');
  const env = { AWS_REGION: 'eu-west-3' };
  const back = await runCli(t, ['dlq', 'peek', 'orders', '--region', 'us-east-1', '--config', config], { env });
  t.equal(back.code, 0, `--region wins over AWS_REGION and the config: ${back.stderr}`);

  for (const cmd of [['status'], ['publish', 'ORDER_PLACED'], ['check', '--live']]) {
    const m = proxy.requests().length;
    const c = await runCli(t, [...cmd, '--region', 'ap-south-2', '--config', config]);
    t.not(c.code, 2, `${cmd[0]} takes --region (${c.stderr})`);
    const regions = new Set(proxy.requests().slice(m).map((x) => scopeOf(x.headers.authorization)?.region ?? 'sns-or-other'));
    t.ok(regions.size > 0 && [...regions].every((x) => x === 'ap-south-2' || x === 'sns-or-other'), `${cmd[0]}: ${[...regions].join(',')}`);
  }

  const bad = await runCli(t, ['status', '--region', 'Not A Region', '--config', config]);
  t.equal(bad.code, 2, 'a malformed region is a usage error');
  t.match(bad.stderr, /--region must be an AWS region name such as us-east-1, got "Not A Region"/);
});

t.test('--profile: credentials from the shared files reach the client; an unknown profile is one clear line', async (t) => {
  const { proxy, config, dir } = await proxied(t);
  const configFile = join(dir, 'aws-config');
  const credentialsFile = join(dir, 'aws-credentials');
  writeFileSync(configFile, '[profile ops]\nregion = eu-north-1\n[default]\nregion = us-west-2\n');
  writeFileSync(credentialsFile, '[ops]\naws_access_key_id = AKIDOPSPROFILE\naws_secret_access_key = ops-secret\n[other]\naws_access_key_id = AKIDOTHER\naws_secret_access_key = other-secret\n');
  // No ambient keys: the profile must be where the credentials come from.
  const env = { AWS_CONFIG_FILE: configFile, AWS_SHARED_CREDENTIALS_FILE: credentialsFile, AWS_ACCESS_KEY_ID: '', AWS_SECRET_ACCESS_KEY: '', AWS_REGION: '' };
  const noRegion = join(dir, 'config-no-region.json');
  const { region: _r, ...rest } = JSON.parse(readFileSync(config, 'utf8')) as Record<string, unknown>;
  writeFileSync(noRegion, JSON.stringify(rest));

  const ok = await runCli(t, ['dlq', 'peek', 'orders', '--profile', 'ops', '--config', config], { env });
  t.equal(ok.code, 0, ok.stderr);
  const scopes = proxy.requests().map((r) => scopeOf(r.headers.authorization));
  t.ok(scopes.length > 0, 'requests were made');
  t.same([...new Set(scopes.map((s) => `${s?.key}@${s?.region}`))], ['AKIDOPSPROFILE@us-east-1'], "the profile's key signs every request (the config's region wins over the profile's)");
  t.notMatch(ok.stderr, /ops-secret/, 'no secret printed');

  // Without a region in the config or the environment, the profile's region applies.
  const n = proxy.requests().length;
  const own = await runCli(t, ['dlq', 'peek', 'orders', '--profile', 'ops', '--config', noRegion], { env });
  t.equal(own.code, 1, 'the queues are in us-east-1, not in the profile\'s eu-north-1');
  t.same([...new Set(proxy.requests().slice(n).map((r) => { const s = scopeOf(r.headers.authorization); return `${s?.key}@${s?.region}`; }))], ['AKIDOPSPROFILE@eu-north-1'], "the profile's region");

  const unknown = await runCli(t, ['dlq', 'peek', 'orders', '--profile', 'nope', '--config', noRegion], { env });
  t.equal(unknown.code, 1);
  const lines = unknown.stderr.trim().split('\n');
  t.equal(lines.length, 1, `one line: ${unknown.stderr}`);
  t.match(lines[0], /^eventbus: --profile "nope" is not in the AWS config or credentials file \(.*aws-config, .*aws-credentials; known profiles: default, ops, other\) \[ERR_CONFIG_INVALID\]$/);
  t.equal(unknown.stdout, '');

  const dev = await runCli(t, ['status', '--dev', '--dev-port', '1', '--profile', 'nope', '--region', 'eu-west-1'], { env });
  t.match(dev.stderr, /note: --region and --profile ignored with --dev/, 'with --dev both are ignored, and it says so');
  t.notMatch(dev.stderr, /not in the AWS config/, 'the profile is not checked with --dev');
});

t.test('dlq redrive --native on fauxqs: one line saying it is not supported, the DLQ untouched', async (t) => {
  const w = await opsWorld(t, 'aws');
  for (let i = 0; i < 3; i++) await w.emu.sqs.send(new SendMessageCommand({ QueueUrl: w.url('orders', true), MessageBody: `{"id":"n-${i}"}` }));
  const r = await runCli(t, ['dlq', 'redrive', 'orders', '--native', '--config', w.config]);
  t.equal(r.code, 1);
  const errors = r.stderr.split('\n').filter((l) => l.startsWith('eventbus: ') && !l.startsWith('eventbus: note:'));
  t.equal(errors.length, 1, `one error line: ${r.stderr}`);
  t.match(errors[0], /does not support SQS message move tasks \(StartMessageMoveTask answered InvalidAction: .*\).*Use the default mode: eventbus dlq redrive orders --all \[ERR_AWS\]$/);
  t.equal(r.stdout, '');
  t.equal(await dlqCount(w), 3, 'nothing moved');

  const both = await runCli(t, ['dlq', 'redrive', 'orders', '--native', '--max', '5', '--config', w.config]);
  t.equal(both.code, 2, '--native with --max is a usage error');
  t.match(both.stderr, /--native.*cannot be used with.*--max/);
  const rate = await runCli(t, ['dlq', 'redrive', 'orders', '--rate', '5', '--config', w.config]);
  t.equal(rate.code, 2, '--rate without --native');
  t.match(rate.stderr, /--rate applies to --native only/);
  const help = await runCli(t, ['dlq', 'redrive', '--help']);
  t.match(help.stdout, /--native\s+let SQS move every message \(StartMessageMoveTask; not\s+with\s+--max: it has no limit\)/, 'the help says --native has no limit');
});

t.test('dlq redrive --native where the endpoint has the API: the request, then the task followed to its end', async (t) => {
  let lists = 0;
  const { w, proxy, config } = await proxied(t, (r) => {
    if (r.operation === 'StartMessageMoveTask') return { status: 200, body: { TaskHandle: 'task-handle-1' } };
    if (r.operation === 'ListMessageMoveTasks') {
      lists++;
      const running = lists < 2;
      return {
        status: 200,
        body: {
          Results: [
            {
              // SQS gives a task's handle only while it runs.
              ...(running ? { TaskHandle: 'task-handle-1' } : {}),
              Status: running ? 'RUNNING' : 'COMPLETED',
              SourceArn: r.body?.SourceArn,
              ApproximateNumberOfMessagesMoved: running ? 2 : 5,
              ApproximateNumberOfMessagesToMove: 5,
              StartedTimestamp: Date.now() - 100,
            },
          ],
        },
      };
    }
    return undefined;
  });
  const arn = async (url: string) => (await w.emu.sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['QueueArn'] }))).Attributes!.QueueArn!;
  const r = await runCli(t, ['dlq', 'redrive', 'orders', '--native', '--rate', '7', '--json', '--config', config]);
  t.equal(r.code, 0, r.stderr);
  const start = proxy.requests('StartMessageMoveTask');
  t.equal(start.length, 1, 'one StartMessageMoveTask');
  t.same(start[0]!.body, { SourceArn: await arn(w.url('orders', true)), DestinationArn: await arn(w.url('orders')), MaxNumberOfMessagesPerSecond: 7 }, 'from the DLQ to its source queue, at --rate');
  t.ok(proxy.requests('ListMessageMoveTasks').every((x) => x.body?.SourceArn === start[0]!.body!.SourceArn), 'the task is followed on the DLQ');
  t.equal(lists, 2, 'followed until it ended');
  t.match(jsonLines(t, r)[0], { mode: 'native', moved: 5, aborted: false, task: { handle: 'task-handle-1', status: 'COMPLETED', failureReason: null }, errors: [] });
  t.match(r.stderr, /message move task started/);
  t.match(r.stderr, /redrive \(native\) .*orders-dlq -> .*orders: moved 5 of ~5/, 'progress on stderr');
});

t.test('dlq redrive --native: Ctrl-C cancels the task (CancelMessageMoveTask), reports it, exits 130', async (t) => {
  let cancelled = false;
  const { proxy, config } = await proxied(t, (r) => {
    if (r.operation === 'StartMessageMoveTask') return { status: 200, body: { TaskHandle: 'task-handle-2' } };
    if (r.operation === 'CancelMessageMoveTask') {
      cancelled = true;
      return { status: 200, body: { ApproximateNumberOfMessagesMoved: 3 } };
    }
    if (r.operation === 'ListMessageMoveTasks') {
      const result = cancelled
        ? { Status: 'CANCELLED', ApproximateNumberOfMessagesMoved: 3, ApproximateNumberOfMessagesToMove: 50, StartedTimestamp: Date.now() - 100 }
        : { TaskHandle: 'task-handle-2', Status: 'RUNNING', ApproximateNumberOfMessagesMoved: 3, ApproximateNumberOfMessagesToMove: 50, StartedTimestamp: Date.now() - 100 };
      return { status: 200, body: { Results: [result] } };
    }
    return undefined;
  });
  const r = await runCli(t, ['dlq', 'redrive', 'orders', '--native', '--json', '--config', config], {
    onStderr: { when: /redrive \(native\) .*: moved 3/, then: (c) => c.kill('SIGINT') },
  });
  t.equal(r.code, 130, r.stderr);
  t.same(proxy.requests('CancelMessageMoveTask').map((x) => x.body), [{ TaskHandle: 'task-handle-2' }], 'the task is cancelled by its handle');
  t.match(jsonLines(t, r)[0], { mode: 'native', aborted: true, signal: 'SIGINT', moved: 3, task: { status: 'CANCELLED' } });
  t.match(r.stderr, /stopped by SIGINT: the task was cancelled after moving ~3; .* message\(s\) still in .*orders-dlq\. Run the same command again/);
});
