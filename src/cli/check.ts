// `eventbus check`: reads the handlers and the config (and, with --live, the provisioned topology)
// and reports one line per finding; exit 1 on errors.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { builtInHandlers } from '../built-ins.js';
import { checkInput, exitCodeOf, formatText, loadForCheck, parseManifest, runCheck, runLiveRules, sortFindings, toReport, type PublisherManifest } from '../check/index.js';
import { EventBusError } from '../errors.js';
import { topicName } from '../publisher/topic.js';
import { readLive } from './check-live.js';
import { UsageError, commandContext, devHint, type CommonOptions } from './common.js';

export interface CheckOptions extends CommonOptions {
  json?: boolean;
  live?: boolean;
  publishes?: string[];
}

/** Registers `check` on the program; `common` adds --config/--dev/--dev-port. */
export function registerCheck(program: Command, common: (cmd: Command) => Command): void {
  common(
    program
      .command('check')
      .description("check the handlers and config against AWS's quotas and each other (no AWS call unless --live)")
      .option('--json', 'print {"ok", "live", "summary", "findings": [{level, rule, queue?, message}]}')
      .option('--live', 'also compare with what is provisioned (read-only SQS/SNS calls) and read its figures')
      .option('--publishes <file>', 'publishers manifest of a service outside the handlers (JSON; repeatable)', (v: string, prev: string[] = []) => [...prev, v])
      .addHelpText(
        'after',
        [
          '',
          'One line per finding: `<level> <rule> [<queue>]: <message>`, then a summary. Levels: error (cannot',
          'work: exit 1), warning (works, not as configured or not for long), info (a figure or a hint).',
          'A publishers manifest lists the types a service publishes: ["USER_CREATED", ...] or',
          '{"service": "users-api", "events": {"USER_CREATED": {"ratePerSec": 50, "maxBytes": 4096, "attributes": ["tenant"]}}}.',
          'Exit status: 0 no errors, 1 errors, 2 usage (a bad option or manifest).',
        ].join('\n'),
      ),
  ).action(async (o: CheckOptions) => {
    await runCheckCommand(o);
  });
}

function readManifest(file: string): PublisherManifest {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new UsageError(`publishers manifest ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  try {
    return parseManifest(file, value);
  } catch (err) {
    if (err instanceof EventBusError && err.code === 'ERR_USAGE') throw new UsageError(err.message);
    throw err;
  }
}

export async function runCheckCommand(o: CheckOptions): Promise<void> {
  const manifests = (o.publishes ?? []).map(readManifest);
  const ctx = commandContext(o);
  const { handlers, findings: loadFindings } = await loadForCheck(ctx.config, builtInHandlers(ctx.config));
  const input = checkInput(handlers, ctx.config, manifests, ctx.config.region ?? process.env.AWS_REGION ?? null);
  let findings = runCheck(input, loadFindings);
  if (o.live) {
    try {
      const live = await readLive(ctx.clients(), ctx.config.topic, handlers);
      findings = sortFindings([...findings, ...runLiveRules(input, live)]);
    } catch (err) {
      const hint = devHint(err, o.dev);
      if (hint) (err as Error).message += hint;
      throw err;
    }
  }
  if (o.json) process.stdout.write(`${JSON.stringify(toReport(findings, o.live === true), null, 2)}\n`);
  else {
    const scope = `${handlers.length} handler${handlers.length === 1 ? '' : 's'}, topic ${topicName(ctx.config.topic)}${manifests.length ? `, ${manifests.length} publishers manifest${manifests.length === 1 ? '' : 's'}` : ''}${o.live ? ', live' : ''}`;
    process.stdout.write(`${formatText(findings, scope)}\n`);
  }
  process.exitCode = exitCodeOf(findings);
}
