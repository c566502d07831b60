// Issue 20: Ctrl-C (SIGINT) and SIGTERM stop `dlq redrive` and `replay` between batches, with a
// summary that says what was done and how to resume, exit 130 / 143, and nothing lost. The signal
// is a real one, sent to the real CLI process when its first progress line appears on stderr.
import t, { type Test } from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import { opsWorld, withArchive, type OpsWorld } from '../helpers/ops-world.js';
import { faultProxy } from '../helpers/fault-proxy.js';
import { ev } from '../helpers/archive-contract.js';
import { jsonLines, runCli } from '../helpers/cli-run.js';

const TOTAL = 300;

async function held(w: OpsWorld, url: string): Promise<number> {
  const a = (await w.emu.sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }))).Attributes ?? {};
  return Number(a.ApproximateNumberOfMessages) + Number(a.ApproximateNumberOfMessagesNotVisible);
}

/** Every event id on a queue (received and kept hidden). */
async function drainIds(w: OpsWorld, url: string): Promise<string[]> {
  const ids: string[] = [];
  for (;;) {
    const r = await w.emu.sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 10, WaitTimeSeconds: 0, VisibilityTimeout: 600 }));
    if (!r.Messages?.length) return ids;
    for (const m of r.Messages) ids.push((JSON.parse(m.Body!) as { id: string }).id);
  }
}

/**
 * The ops world with TOTAL messages in orders' DLQ, and a config whose endpoint is a proxy that
 * adds `latencyMs` (25) to every call: a redrive of TOTAL then takes seconds (30 batches of three calls), so
 * a signal sent at its first progress line arrives mid-way even on a fast machine.
 */
async function slowWorld(t: Test, latencyMs = 25): Promise<{ w: OpsWorld; config: string }> {
  const w = await opsWorld(t, 'sig');
  for (let i = 0; i < TOTAL; i += 10) {
    await w.emu.sqs.send(
      new SendMessageBatchCommand({
        QueueUrl: w.url('orders', true),
        Entries: Array.from({ length: 10 }, (_, j) => ({ Id: String(j), MessageBody: JSON.stringify({ specversion: '1.0', id: `ev-${i + j}`, source: 'test', type: 'ORDER_PLACED', data: {} }) })),
      }),
    );
  }
  const proxy = await faultProxy(w.emu.endpoint);
  t.teardown(() => proxy.close());
  proxy.setFault('latency', { latencyMs });
  const dir = mkdtempSync(join(tmpdir(), 'eventbus-sig-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const config = join(dir, 'config.json');
  writeFileSync(config, JSON.stringify({ ...JSON.parse(readFileSync(w.config, 'utf8')), endpoint: proxy.endpoint }));
  return { w, config };
}

for (const [sig, code] of [
  ['SIGINT', 130],
  ['SIGTERM', 143],
] as const) {
  t.test(`dlq redrive --all stops on ${sig} between batches: summary, exit ${code}, nothing lost; a re-run moves the rest`, async (t) => {
    const { w, config } = await slowWorld(t);
    const r = await runCli(t, ['dlq', 'redrive', 'orders', '--all', '--json', '--config', config], {
      onStderr: { when: /redrive .* done \(moved/, then: (child) => child.kill(sig) },
    });
    t.equal(r.code, code, `exit ${code}: ${r.stderr}`);
    const [s] = jsonLines(t, r);
    t.match(s, { aborted: true, signal: sig, failed: 0, notDeleted: 0 });
    t.ok(s!.moved > 0 && s!.moved < TOTAL, `stopped mid-way (moved ${s!.moved} of ${TOTAL})`);
    t.match(r.stderr, new RegExp(`${sig}: stopping the redrive`), 'the signal is acknowledged at once');
    t.match(r.stderr, new RegExp(`stopped by ${sig}: moved ${s!.moved}, failed 0; ${TOTAL - s!.moved} message\\(s\\) still in ${w.prefix}orders-dlq`), 'what was done and what is left');
    t.match(r.stderr, /run the same command again and it continues with what is left/, 'how to resume');
    t.equal(s!.remaining, TOTAL - s!.moved, 'remaining in the JSON summary');
    t.equal(await held(w, w.url('orders', true)), TOTAL - s!.moved, 'the DLQ holds the rest');
    t.equal(await held(w, w.url('orders')), s!.moved, 'the source queue holds what was moved');

    const again = await runCli(t, ['dlq', 'redrive', 'orders', '--all', '--config', w.config]);
    t.equal(again.code, 0, again.stderr);
    t.equal(again.stdout, `moved ${TOTAL - s!.moved}, failed 0\n`, 'the re-run moves what was left');
    const ids = await drainIds(w, w.url('orders'));
    t.equal(ids.length, TOTAL, 'every message is on the source queue');
    t.equal(new Set(ids).size, TOTAL, 'each once: none lost, none duplicated');
    t.equal(await held(w, w.url('orders', true)), 0, 'the DLQ is empty');
  });
}

t.test('replay stops on SIGINT between batches, says how to resume; the resumed run sends the rest once', async (t) => {
  const w = await opsWorld(t, 'sig');
  const base = Date.parse('2024-05-01T00:00:00Z');
  const n = 60;
  const config = await withArchive(t, w, Array.from({ length: n }, (_, i) => ev(`orig-${String(i).padStart(2, '0')}`, 'ORDER_PLACED', base + i * 1000, { i })));
  // 20/s: batches of 5 every 250 ms, 3 s in all; SIGINT at the first progress line.
  const args = ['replay', '--to-queue', 'orders', '--rate', '20', '--json', '--config', config];
  const r = await runCli(t, [...args, '--since', '2024-05-01T00:00:00Z'], { onStderr: { when: /replay: \d+ of \d+ event\(s\) done/, then: (c) => c.kill('SIGINT') } });
  t.equal(r.code, 130, r.stderr);
  const [s] = jsonLines(t, r);
  t.match(s, { aborted: true, signal: 'SIGINT', failed: 0, resume: { since: String, until: String } });
  t.ok(s!.sent > 0 && s!.sent < n, `stopped mid-way (sent ${s!.sent} of ${n})`);
  t.equal(s!.resume.since, new Date(base + s!.sent * 1000).toISOString(), 'resume --since is the first event not sent');
  t.match(r.stderr, new RegExp(`stopped by SIGINT: sent ${s!.sent}, failed 0; to replay what is left, run the same command with --since ${s!.resume.since} --until ${s!.resume.until}`));

  const rest = await runCli(t, [...args, '--since', s!.resume.since, '--until', s!.resume.until]);
  t.equal(rest.code, 0, rest.stderr);
  t.match(jsonLines(t, rest)[0], { sent: n - s!.sent, aborted: false });
  const got = await (async () => {
    const all: string[] = [];
    for (;;) {
      const m = await w.emu.sqs.send(new ReceiveMessageCommand({ QueueUrl: w.url('orders'), MaxNumberOfMessages: 10, WaitTimeSeconds: 0, VisibilityTimeout: 600 }));
      if (!m.Messages?.length) return all;
      for (const x of m.Messages) all.push((JSON.parse(x.Body!) as { replayof: string }).replayof);
    }
  })();
  t.equal(got.length, n, 'both runs together sent every event');
  t.equal(new Set(got).size, n, 'each archived event once');
});

t.test('dlq dump stops on SIGINT: exit 130, nothing deleted, what it read visible again at once', async (t) => {
  const { w, config } = await slowWorld(t);
  const dir = mkdtempSync(join(tmpdir(), 'eventbus-sig-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'dump.jsonl');
  const r = await runCli(t, ['dlq', 'dump', 'orders', '--to', file, '--delete', '--json', '--config', config], {
    onStart: (child) => {
      // The signal once the dump has written its first lines (the file exists from the start).
      const timer = setInterval(() => {
        let text = '';
        try {
          text = readFileSync(file, 'utf8');
        } catch {
          return;
        }
        if (text.includes('\n')) {
          clearInterval(timer);
          child.kill('SIGINT');
        }
      }, 10);
      child.on('exit', () => clearInterval(timer));
    },
  });
  t.equal(r.code, 130, r.stderr);
  const [s] = jsonLines(t, r);
  t.match(s, { aborted: true, deleted: 0 });
  t.ok(s!.dumped > 0 && s!.dumped < TOTAL, `stopped mid-way (${s!.dumped} of ${TOTAL})`);
  t.match(r.stderr, /stopped by SIGINT: .* holds \d+ message\(s\) and is incomplete; nothing was deleted/);
  const a = (await w.emu.sqs.send(new GetQueueAttributesCommand({ QueueUrl: w.url('orders', true), AttributeNames: ['ApproximateNumberOfMessages'] }))).Attributes ?? {};
  t.equal(Number(a.ApproximateNumberOfMessages), TOTAL, 'all visible in the DLQ right away (not hidden for the dump\'s 5 min)');
});

t.test('dlq requeue stops on SIGINT after the batch being sent; --from-line as printed sends the rest, none twice', async (t) => {
  // One call per batch of 10 (not three as in a redrive): 60 ms each keeps the run near 2 s.
  const { w, config } = await slowWorld(t, 60);
  const dir = mkdtempSync(join(tmpdir(), 'eventbus-sig-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'dump.jsonl');
  const dump = await runCli(t, ['dlq', 'dump', 'orders', '--to', file, '--delete', '--config', w.config]);
  t.equal(dump.code, 0, dump.stderr);
  t.equal(readFileSync(file, 'utf8').trimEnd().split('\n').length, TOTAL);
  const r = await runCli(t, ['dlq', 'requeue', 'orders', '--from', file, '--json', '--config', config], {
    onStart: (child) => {
      // The signal once the first batch reached the queue.
      const timer = setInterval(() => {
        void held(w, w.url('orders')).then((n) => {
          if (n > 0 && child.exitCode === null) {
            clearInterval(timer);
            child.kill('SIGINT');
          }
        });
      }, 20);
      child.on('exit', () => clearInterval(timer));
    },
  });
  t.equal(r.code, 130, r.stderr);
  const [s] = jsonLines(t, r);
  t.match(s, { aborted: true, failed: 0 });
  t.ok(s!.sent > 0 && s!.sent < TOTAL, `stopped mid-way (${s!.sent} of ${TOTAL})`);
  const from = Number(/resume with --from-line (\d+)/.exec(r.stderr)?.[1]);
  t.equal(from, s!.sent + 1, `the resume line follows the last line sent (${r.stderr})`);
  const rest = await runCli(t, ['dlq', 'requeue', 'orders', '--from', file, '--from-line', String(from), '--config', w.config]);
  t.equal(rest.code, 0, rest.stderr);
  const ids = await drainIds(w, w.url('orders'));
  t.equal(ids.length, TOTAL, 'both runs together sent every line');
  t.equal(new Set(ids).size, TOTAL, 'none twice');
});

t.test('dlq peek stops on SIGINT: exit 130, and what it read is visible again at once (not hidden for 30 s)', async (t) => {
  const { w, config } = await slowWorld(t);
  let printed = '';
  const r = await runCli(t, ['dlq', 'peek', 'orders', '--max', String(TOTAL), '--json', '--config', config], {
    onStart: (child) => {
      // The signal once the first messages are printed.
      child.stdout!.on('data', (d: Buffer) => {
        printed += d.toString();
        if (printed.includes('\n') && child.exitCode === null && !child.killed) child.kill('SIGINT');
      });
    },
  });
  t.equal(r.code, 130, r.stderr);
  const shown = jsonLines(t, r).length;
  t.ok(shown > 0 && shown < TOTAL, `stopped mid-way (${shown} of ${TOTAL})`);
  t.match(r.stderr, /stopped by SIGINT after \d+ message\(s\); .* is unchanged and every message read is visible again/);
  const a = (await w.emu.sqs.send(new GetQueueAttributesCommand({ QueueUrl: w.url('orders', true), AttributeNames: ['ApproximateNumberOfMessages'] }))).Attributes ?? {};
  t.equal(Number(a.ApproximateNumberOfMessages), TOTAL, 'all visible in the DLQ right away');
});
