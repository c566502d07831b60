import { loadConfig } from '../config.js';
import { startEmulator, type Emulator } from '../emulator.js';
import { createLogger } from '../log.js';
import { Supervisor } from '../supervisor/supervisor.js';
import { failStart, handleSignals } from '../supervisor/signals.js';
import { DEV_PORT } from './common.js';
import { DEV_PAYLOAD_BUCKET } from '../payloads/index.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface DevOptions {
  port?: string;
  httpPort?: string;
  config?: string;
}

/**
 * `eventbus dev` (what `npm start` runs): fauxqs on 127.0.0.1, topology provisioned from the
 * handlers, the supervisor and its HTTP port. Uses the emulator's own credentials, never ambient
 * AWS ones, and never talks to AWS.
 */
export async function runDev(o: DevOptions): Promise<void> {
  const port = o.port ? Number(o.port) : DEV_PORT;
  if (!Number.isInteger(port) || port < 0 || port > 65535) failStart(new Error(`--port must be a port number, got ${o.port}`));
  let emulator: Emulator;
  try {
    emulator = await startEmulator({ port });
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (code === 'ERR_EMULATOR_MISSING') failStart(err);
    failStart(
      new Error(
        code === 'EADDRINUSE'
          ? `port ${port} is in use: is another \`npm start\` running? Stop it, or pick another port: npm start -- --port 4567`
          : `the embedded SNS/SQS emulator did not start: ${(err as Error).message}`,
      ),
    );
  }
  let config;
  try {
    config = loadConfig({
      file: o.config,
      defaults: { provision: true, 'http.host': '127.0.0.1', logLevel: 'info', 'archive.enabled': true, 'console.enabled': true, 'payloads.bucket': DEV_PAYLOAD_BUCKET },
      overrides: { endpoint: emulator.endpoint, region: 'us-east-1', ...(o.httpPort ? { http: { port: Number(o.httpPort) } } : {}) },
    });
  } catch (err) {
    await emulator.stop();
    failStart(err);
  }
  const log = createLogger({ level: config.logLevel, pretty: process.env.EVENTBUS_LOG_FORMAT !== 'json' });
  const sup = new Supervisor({ config, log, pretty: process.env.EVENTBUS_LOG_FORMAT !== 'json', aws: emulator.aws, consolePublish: true });
  handleSignals(sup, log, config.shutdownTimeoutMs, () => emulator.stop());
  try {
    await sup.start();
  } catch (err) {
    await emulator.stop();
    failStart(err, log);
  }
  const portFlag = port === DEV_PORT ? '' : ` --dev-port ${port}`;
  const http = `http://${config.http.host}:${sup.httpPort}`;
  const cli = cliCommand();
  const queues = sup.queues.filter((q) => q.queue !== 'archive');
  // The example handlers of this repository (email on USER_CREATED, USER_COMMENT) get their own walk-through.
  const examples = queues.some((q) => q.queue === 'email' && q.handler.events?.includes('USER_CREATED') && q.handler.events.includes('USER_COMMENT'));
  const firstTypes = [...new Set(queues.flatMap((q) => q.handler.events ?? []))].slice(0, 2);
  const someQueue = queues[0]?.queue;
  process.stdout.write(
    [
      '',
      `  eventbus dev: SNS/SQS emulator on ${emulator.endpoint}, topic "${config.topic}", ${sup.queues.length} queue(s): ${sup.queues
        .map((q) => `${q.queue} <- ${q.handler.events?.join(', ') ?? 'every event'}`)
        .join('; ')}`,
      ...(config.console.enabled ? [`  console ${http}/console   (queues, failures, dead letters, events; in a browser)`] : []),
      `  metrics ${http}/metrics   health ${http}/healthz   ready ${http}/readyz`,
      ...(config.archive.enabled ? [`  archive ${http}/events   ${cli} events${portFlag ? ' --dev' + portFlag : ''}   (events replay: ${cli} replay --help)`] : []),
      '',
      '  Publish an event from another terminal:',
      ...(examples
        ? [
            `    ${cli} publish --dev${portFlag} USER_CREATED '{"email":"ada@example.com"}'`,
            `    ${cli} publish --dev${portFlag} USER_COMMENT '{"email":"ada@example.com","comment":"hi"}'`,
            `    ${cli} publish --dev${portFlag} USER_CREATED '{"email":"not-an-address"}'   # rejected: in email-dlq at once`,
            `    ${cli} publish --dev${portFlag} USER_COMMENT '{"email":"ada@example.com"}'   # invalid (no comment): in email-dlq at once`,
            ...(config.payloads.bucket
              ? [`    ${cli} publish --dev${portFlag} USER_COMMENT @big.json   # data from a file; over 256 KiB it goes through S3 bucket ${config.payloads.bucket}`]
              : []),
          ]
        : (firstTypes.length ? firstTypes : ['SOME_EVENT']).map((type) => `    ${cli} publish --dev${portFlag} ${type} '{}'`)),
      `    ${cli} status --dev${portFlag}          # queue and DLQ depths`,
      ...(someQueue ? [`    ${cli} dlq peek ${examples ? 'email' : someQueue} --dev${portFlag}  # what is in ${examples ? 'email' : someQueue}-dlq, and why`] : []),
      '',
      '  Ctrl-C stops (drains running handlers first).',
      '',
    ].join('\n'),
  );
}

/**
 * How to run the CLI from where `eventbus dev` runs: `npm run eventbus --` in this package's own
 * repository (there `npx eventbus` would fetch an unrelated registry package), else `npx eventbus`
 * (a project that depends on the package has the bin in node_modules/.bin).
 */
function cliCommand(): string {
  try {
    const own = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { name?: string }).name;
    const here = (JSON.parse(readFileSync(join(process.cwd(), 'package.json'), 'utf8')) as { name?: string; scripts?: Record<string, string> });
    if (here.name === own && here.scripts?.eventbus) return 'npm run eventbus --';
  } catch {
    // no package.json here: a project that installed the package
  }
  return 'npx eventbus';
}
