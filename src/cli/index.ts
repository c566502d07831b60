import { builtInHandlers } from '../built-ins.js';
import { Command, CommanderError, Option } from 'commander';
import { readFileSync } from 'node:fs';
import { bucketPlanOf, lazyPayloadStore, payloadSettingsOf, s3SettingsOf } from '../payloads/index.js';
import { configOrigins, redactConfig } from '../config.js';
import { configSourceRows, formatSourceTable } from './config-sources.js';
import { EventBusError } from '../errors.js';
import { loadHandlers } from '../handlers.js';
import { createPublisher } from '../publisher/index.js';
import { formatActions, provision, provisionJson } from '../publisher/provision.js';
import { iamPolicies } from '../publisher/iam.js';
import { UsageError, checkAwsOptions, commandContext, devHint, exitQuietlyOnBrokenPipe, type CommonOptions } from './common.js';
import { runDev } from './dev.js';
import { registerDlq } from './dlq.js';
import { registerStatus } from './status.js';
import { registerEvents } from './events.js';
import { registerReplay } from './replay.js';
import { registerIngress } from './ingress.js';
import { registerNew } from './new.js';
import { registerCheck } from './check.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

function common(cmd: Command): Command {
  return cmd
    .option('--config <file>', 'JSON config file (default: $EVENTBUS_CONFIG)')
    .option('--dev', 'use the running `npm start` emulator (127.0.0.1:4566) instead of AWS')
    .addOption(new Option('--dev-port <port>', 'port of the `npm start` emulator').default(undefined))
    .option('--region <region>', 'AWS region (overrides config region and AWS_REGION; ignored with --dev)')
    .option('--profile <name>', 'profile of ~/.aws/config and ~/.aws/credentials for credentials and region (as AWS_PROFILE; ignored with --dev)');
}

/** Runs the eventbus CLI; exit status 0 ok, 1 failure, 2 usage. */
export async function main(argv: string[]): Promise<void> {
  exitQuietlyOnBrokenPipe();
  const program = new Command()
    .name('eventbus')
    .description('An event bus on AWS SNS + SQS, and the worker supervisor that runs its handlers')
    .version(pkg.version)
    // Before or after the command (`eventbus --config x.json status`, issue 20): commander takes a
    // program option on either side of the command (the last one given wins) and the hook below
    // hands it to the command. The commands that read a config declare it too, for their --help.
    .option('--config <file>', 'JSON config file, before or after the command (default: $EVENTBUS_CONFIG)')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  program.hook('preAction', (_program, action) => {
    const global = program.getOptionValue('config') as string | undefined;
    if (global === undefined) return;
    if (!action.options.some((opt) => opt.long === '--config')) throw new UsageError(`--config does not apply to \`${action.name()}\``);
    action.setOptionValue('config', global);
  });
  // --region/--profile of the commands that talk to AWS (common()): checked before the command runs.
  program.hook('preAction', async (_program, action) => {
    if (action.options.some((opt) => opt.long === '--profile')) await checkAwsOptions(action.opts<CommonOptions>());
  });

  program
    .command('dev')
    .description('run everything on an embedded SNS/SQS emulator (what `npm start` runs)')
    .option('--port <port>', 'emulator port on 127.0.0.1', '4566')
    .option('--http-port <port>', 'HTTP port for /console, /metrics, /healthz, /readyz (default: config http.port, 9464; 0 = a free one)')
    .option('--config <file>', 'JSON config file')
    .action(async (o: { port?: string; httpPort?: string; config?: string }) => {
      await runDev(o);
    });

  common(
    program
      .command('provision')
      .description('create or update the topic, queues, DLQs, queue policies and subscriptions from the handlers')
      .option('--dry-run', 'print the plan; change nothing')
      .option('--prune', 'remove subscriptions of queues no handler owns (never queues)')
      .option('--print-iam [policy]', 'print the least-privilege IAM policies for these handlers as JSON and change nothing: worker, provisioner, or both (default)')
      .option('--account <id>', 'AWS account id for the ARNs of --print-iam (default: the account of a topic configured as an ARN)')
      .option('--json', 'print the plan (--dry-run) or what was done as JSON: {dryRun, topicArn, fifoTopicArn, actions: [{kind, type, name, resource, detail}], counts, queues}')
      .addHelpText(
        'after',
        [
          '',
          '--print-iam calls no AWS API. It prints {"worker": <policy>, "provisioner": <policy>}, or one policy',
          'document with --print-iam worker|provisioner (for `aws iam put-role-policy --policy-document`). The',
          'worker may receive, delete and extend messages of the handler queues only (not their DLQs, not',
          'other queues of the prefix), read the DLQs\' depth and send to them (dead-lettered at once); the provisioner may create and configure the',
          'handler queues and DLQs, subscribe only sqs endpoints that are those queues, and change or remove',
          'subscriptions of the topic only. The region and account come from the topic ARN, else from config',
          'region (AWS_REGION) and --account. Regenerate after adding or renaming a handler.',
          '',
          'Queues and DLQs are encrypted at rest: SQS-managed keys (SSE-SQS) by default, the KMS key of config',
          'sqs.kmsKeyId (EVENTBUS_SQS_KMS_KEY_ID) when set; config tags (EVENTBUS_TAGS=k=v,k2=v2) go on the',
          'topics, queues, DLQs and payloads bucket. Reruns converge both (shown as ~ update in --dry-run):',
          'tags are added or updated, never removed; a queue encrypted with a KMS key is kept so without',
          'sqs.kmsKeyId. --json: kind is create|update|delete|ok, type is topic|queue|queue policy|',
          'subscription|bucket|bucket lifecycle|tags topic|tags queue|tags bucket.',
        ].join('\n'),
      ),
  ).action(async (o: CommonOptions & { dryRun?: boolean; prune?: boolean; printIam?: string | boolean; account?: string; json?: boolean }) => {
    const ctx = commandContext(o);
    const handlers = await loadHandlers(ctx.config, builtInHandlers(ctx.config));
    if (o.printIam !== undefined) {
      const which = o.printIam === true ? 'both' : o.printIam;
      if (which !== 'both' && which !== 'worker' && which !== 'provisioner') throw new UsageError(`--print-iam takes worker or provisioner (or nothing for both), got "${which}"`);
      let policies;
      try {
        policies = iamPolicies({ handlers, topic: ctx.config.topic, fifoTopic: ctx.config.fifoTopic, region: ctx.config.region ?? process.env.AWS_REGION, account: o.account, payloads: ctx.config.payloads, kmsKeyId: ctx.config.sqs.kmsKeyId });
      } catch (err) {
        if ((err as EventBusError).code === 'ERR_USAGE') throw new UsageError((err as Error).message);
        throw err;
      }
      process.stdout.write(`${JSON.stringify(which === 'both' ? policies : policies[which], null, 2)}\n`);
      return;
    }
    try {
      const r = await provision(ctx.clients(), {
        topic: ctx.config.topic,
        fifoTopic: ctx.config.fifoTopic,
        handlers,
        dryRun: o.dryRun === true,
        prune: o.prune === true,
        payloads: bucketPlanOf(ctx.aws, ctx.config),
        kmsKeyId: ctx.config.sqs.kmsKeyId,
        tags: ctx.config.tags,
      });
      if (o.json) process.stdout.write(`${JSON.stringify(provisionJson(r, o.dryRun === true), null, 2)}\n`);
      else process.stdout.write(`${o.dryRun ? 'plan (dry run, nothing changed):\n' : ''}${formatActions(r.actions)}\n`);
    } catch (err) {
      throw withHint(err, o.dev);
    }
  });

  common(
    program
      .command('publish')
      .description('publish one event to the topic')
      .argument('<type>', 'event type, e.g. USER_CREATED')
      .argument('[json]', 'event data as JSON (default: {}); @FILE reads it from a file, - from stdin (for data over the command line\'s ~128 KiB)')
      .option('--source <source>', 'CloudEvents source (default: config source)')
      .option('--id <id>', 'event id (default: a new UUID)')
      .option('--subject <subject>', 'CloudEvents subject')
      .option('--group <groupId>', 'message group: ordered handlers get the events of a group in order (also to fifoTopic)')
      .option('--json', 'print {"id", "type", "source", "time", "subject", "groupId", "topics"} of the published event on stdout'),
  ).action(async (type: string, json: string | undefined, o: CommonOptions & { source?: string; id?: string; subject?: string; group?: string; json?: boolean }) => {
    let data: unknown = {};
    if (json !== undefined) {
      let text = json;
      try {
        if (json === '-') text = readFileSync(0, 'utf8');
        else if (json.startsWith('@')) text = readFileSync(json.slice(1), 'utf8');
      } catch (err) {
        throw new UsageError(`cannot read the JSON data: ${(err as Error).message}`);
      }
      try {
        data = JSON.parse(text);
      } catch (err) {
        throw new UsageError(`JSON data is not valid JSON: ${(err as Error).message}`);
      }
    }
    const ctx = commandContext(o);
    const settings = payloadSettingsOf(ctx.config);
    const publisher = createPublisher({
      sns: ctx.clients().sns,
      topic: ctx.config.topic,
      fifoTopic: ctx.config.fifoTopic,
      source: o.source ?? ctx.config.source,
      payloads: settings ? { ...settings, store: lazyPayloadStore(s3SettingsOf(ctx.aws, ctx.config)) } : null,
    });
    try {
      const event = await publisher.createEvent(type, data, { ...(o.id ? { id: o.id } : {}), ...(o.subject ? { subject: o.subject } : {}), ...(o.group !== undefined ? { groupId: o.group } : {}) });
      if (o.json) {
        // A grouped event goes to the FIFO topic too (publisher/index.ts publishOne).
        const groupId = o.group ?? null;
        const topics = groupId !== null && ctx.config.fifoTopic ? [ctx.config.fifoTopic, ctx.config.topic] : [ctx.config.topic];
        process.stdout.write(`${JSON.stringify({ id: event.id, type: event.type, source: event.source, time: event.time ?? null, subject: event.subject ?? null, groupId, topics })}\n`);
      } else process.stdout.write(`published ${event.type} ${event.id}\n`);
    } catch (err) {
      throw withHint(err, o.dev);
    }
  });

  common(
    program
      .command('config')
      .description('print the effective config as a config file (secrets as "[redacted]"); --sources: where each value came from')
      .option('--sources', 'a table of every key: its value and where it came from (default, the config file, an env var, a flag)')
      .option('--json', 'with --sources: a JSON array of {key, value, origin, file?, env?, flag?, derived?} (the config itself is always JSON)')
      .addHelpText(
        'after',
        [
          '',
          'The output loads back as a config file (`eventbus --config printed.json ...`, `node dist/supervisor',
          '--config printed.json`), except that each secret is printed as "[redacted]": loading that fails',
          'naming the key, until the secret itself is put back (or given by its env var, which wins). Derived',
          'defaults (threads, tasksPerThread from the cores; fifoTopic from topic; source from the host name)',
          'are left out, so each host that loads the file computes its own; --sources shows them.',
        ].join('\n'),
      ),
  ).action((o: CommonOptions & { sources?: boolean; json?: boolean }) => {
    const ctx = commandContext(o);
    const printed = redactConfig(ctx.config);
    if (!o.sources) {
      // Derived defaults are computed where the file is loaded (a printed fifoTopic would stay
      // events.fifo under another EVENTBUS_TOPIC; source would name this host).
      const origins = configOrigins(ctx.config);
      for (const [key, origin] of Object.entries(origins)) if (origin.kind === 'default' && origin.derived && !key.includes('.')) delete printed[key];
      process.stdout.write(`${JSON.stringify(printed, null, 2)}\n`);
      return;
    }
    const rows = configSourceRows(printed, configOrigins(ctx.config), o.dev ? '--dev' : undefined);
    process.stdout.write(o.json ? `${JSON.stringify(rows, null, 2)}\n` : `${formatSourceTable(rows)}\n`);
  });

  registerStatus(program, common);
  registerDlq(program, common);
  registerEvents(program, common);
  registerReplay(program, common);
  registerIngress(program, common);
  registerNew(program);
  registerCheck(program, common);

  try {
    await program.parseAsync(argv, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here with exit code 0; usage errors were already printed.
      process.exitCode = err.exitCode === 0 ? 0 : 2;
      return;
    }
    if (err instanceof UsageError) {
      process.stderr.write(`eventbus: ${err.message}\n`);
      process.exitCode = 2;
      return;
    }
    const e = err as EventBusError;
    process.stderr.write(`eventbus: ${e.message ?? String(err)}${e.code ? ` [${e.code}]` : ''}\n`);
    process.exitCode = 1;
  }
}

function withHint(err: unknown, dev: boolean | undefined): unknown {
  const hint = devHint(err, dev);
  if (!hint) return err;
  const e = err as Error;
  e.message += hint;
  return e;
}
