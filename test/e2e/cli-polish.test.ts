// Issue 20 (part): the CLI in a pipe, --config on either side of the command, `dlq redrive --all`, `dlq purge`.
import t, { type Test } from 'tap';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { GetQueueAttributesCommand, SendMessageBatchCommand } from '@aws-sdk/client-sqs';
import type { TestEmulator } from '../helpers/emulator.js';
import { opsWorld } from '../helpers/ops-world.js';
import { ROOT, spawnNode } from '../helpers/process.js';

interface Env {
  emu: TestEmulator;
  prefix: string;
  config: string;
  url(queue: string, dlq?: boolean): string;
  cli(args: string[], env?: Record<string, string>): Promise<{ code: number | null; out: string; stdout: string }>;
  visible(url: string): Promise<number>;
  fill(url: string, n: number): Promise<void>;
}

/** An emulator with two handlers (`orders`, `mail`) provisioned, and a config file naming them. */
async function setup(t: Test): Promise<Env> {
  const { emu, prefix, config, url } = await opsWorld(t, 'polish');
  return {
    emu,
    prefix,
    config,
    url,
    async cli(args, env = {}) {
      const p = spawnNode('bin/eventbus.js', args, env);
      let stdout = '';
      p.child.stdout!.on('data', (d: Buffer) => (stdout += d.toString()));
      t.teardown(() => p.kill());
      const exit = await p.exited;
      return { code: exit.code, out: p.output(), stdout };
    },
    async visible(queueUrl) {
      const a = await emu.sqs.send(new GetQueueAttributesCommand({ QueueUrl: queueUrl, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }));
      return Number(a.Attributes?.ApproximateNumberOfMessages) + Number(a.Attributes?.ApproximateNumberOfMessagesNotVisible);
    },
    async fill(queueUrl, n) {
      for (let i = 0; i < n; i += 10) {
        const entries = Array.from({ length: Math.min(10, n - i) }, (_, j) => ({
          Id: String(j),
          MessageBody: JSON.stringify({ specversion: '1.0', id: `ev-${i + j}`, source: 'test', type: 'ORDER_PLACED', data: { i: i + j } }),
        }));
        await emu.sqs.send(new SendMessageBatchCommand({ QueueUrl: queueUrl, Entries: entries }));
      }
    },
  };
}

/**
 * Runs `node bin/eventbus.js help replay` with stdout read by us; `closeAfter` 0 closes our end
 * before the CLI writes anything, 1 after its first line (as `| head -1` does).
 */
function helpIntoClosedPipe(closeAfterLines: 0 | 1): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string; firstLine: string }> {
  const child = spawn(process.execPath, [join(ROOT, 'bin/eventbus.js'), 'help', 'replay'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  let got = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  if (closeAfterLines === 0) child.stdout.destroy();
  else {
    child.stdout.on('data', (d: Buffer) => {
      got += d.toString();
      if (got.includes('\n')) child.stdout.destroy();
    });
  }
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stderr, firstLine: got.split('\n')[0] ?? '' })));
}

t.test('a closed stdout ends the CLI quietly (help replay | head -1)', async (t) => {
  // Expected: exit 0 and nothing on stderr when the reader goes away. Broke: an unhandled EPIPE
  // 'error' event printed a stack trace and exited 1 (issue 20).
  const closed = await helpIntoClosedPipe(0);
  t.equal(closed.stderr, '', 'reader gone before the first write: no stack trace');
  t.same({ code: closed.code, signal: closed.signal }, { code: 0, signal: null }, 'exit 0');
  for (let i = 0; i < 3; i++) {
    const head = await helpIntoClosedPipe(1);
    t.match(head.firstLine, /^Usage: eventbus replay/, 'the first line arrived');
    t.equal(head.stderr, '', `run ${i + 1}: no stack trace`);
    t.same({ code: head.code, signal: head.signal }, { code: 0, signal: null }, `run ${i + 1}: exit 0`);
  }
});

t.test('--config before or after the command', async (t) => {
  const env = await setup(t);
  await env.fill(env.url('orders', true), 2);
  // Without the config the CLI knows neither the emulator nor the prefix: both forms must read the file.
  for (const args of [
    ['--config', env.config, 'status', '--json'],
    ['status', '--json', '--config', env.config],
    [`--config=${env.config}`, 'status', '--json'],
    ['--config', env.config, 'dlq', 'peek', 'orders', '--max', '1'],
  ]) {
    const r = await env.cli(args);
    t.equal(r.code, 0, `${args.join(' ')}: ${r.out}`);
    if (args.includes('--json')) {
      const rows = JSON.parse(r.stdout) as Array<{ queue: string; queueName: string; dlq: { visible: number } }>;
      t.match(rows.find((x) => x.queue === 'orders'), { queueName: `${env.prefix}orders`, dlq: { visible: 2 } }, `${args.join(' ')}: read the file`);
    } else {
      t.match(r.stdout, /1 message shown/, `${args.join(' ')}: read the file`);
    }
  }
  const twice = await env.cli(['--config', `${env.config}.other`, 'status', '--config', env.config]);
  t.equal(twice.code, 0, `given twice: the last one wins (${twice.out})`);
  const notApplicable = await env.cli(['--config', env.config, 'new', 'handler', 'x', '--dir', join(ROOT, 'no-such-dir')]);
  t.equal(notApplicable.code, 2, 'a command that reads no config says so');
  t.match(notApplicable.out, /--config does not apply to `handler`/);
});

t.test('dlq redrive --all moves every message, past the default of 10', async (t) => {
  // Expected: --all empties the DLQ in one run. Broke: redrive stopped at --max (default 10), and no value meant "all".
  const env = await setup(t);
  await env.fill(env.url('orders', true), 27);
  const r = await env.cli(['dlq', 'redrive', 'orders', '--all', '--config', env.config]);
  t.equal(r.code, 0, r.out);
  t.match(r.stdout, /^moved 27, failed 0$/m);
  t.equal(await env.visible(env.url('orders', true)), 0, 'the DLQ is empty');
  t.equal(await env.visible(env.url('orders')), 27, 'all 27 are on the source queue');

  const both = await env.cli(['dlq', 'redrive', 'orders', '--all', '--max', '5', '--config', env.config]);
  t.equal(both.code, 2, '--all with --max is a usage error');
  t.match(both.out, /--all.*cannot be used with.*--max/);
});

t.test('dlq purge: refuses without a terminal unless --yes; purges the DLQ only', async (t) => {
  const env = await setup(t);
  await env.fill(env.url('orders', true), 15);
  await env.fill(env.url('orders'), 3);
  const refused = await env.cli(['dlq', 'purge', 'orders', '--config', env.config]);
  t.equal(refused.code, 2, 'no terminal, no --yes: usage error');
  t.match(refused.out, /add --yes/);
  t.equal(await env.visible(env.url('orders', true)), 15, 'nothing was deleted');

  const r = await env.cli(['dlq', 'purge', 'orders', '--yes', '--config', env.config]);
  t.equal(r.code, 0, r.out);
  t.match(r.stdout, new RegExp(`purged ${env.prefix}orders-dlq \\(~15 message\\(s\\)\\)`));
  t.equal(await env.visible(env.url('orders', true)), 0, 'the DLQ is empty');
  t.equal(await env.visible(env.url('orders')), 3, 'the source queue is untouched');

  const unknown = await env.cli(['dlq', 'purge', 'nope', '--yes', '--config', env.config]);
  t.equal(unknown.code, 1);
  t.match(unknown.out, /unknown queue "nope"/);
});
