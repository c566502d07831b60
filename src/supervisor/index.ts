#!/usr/bin/env node
// Entry of `node dist/supervisor [--config FILE]`: production on a worker host. No logic here.
import { parseArgs } from 'node:util';
import { loadConfig } from '../config.js';
import { createLogger, wantsPretty } from '../log.js';
import { Supervisor } from './supervisor.js';
import { failStart, handleSignals } from './run.js';

const USAGE = `usage: node dist/supervisor [--config FILE]

Runs the eventbus supervisor: polls every handler's queue and runs the handlers.
  --config FILE   JSON config file (default: $EVENTBUS_CONFIG); env vars override keys that have one
  -h, --help      this help
`;

let args;
try {
  args = parseArgs({ options: { config: { type: 'string' }, help: { type: 'boolean', short: 'h' } }, strict: true });
} catch (err) {
  process.stderr.write(`${(err as Error).message}\n${USAGE}`);
  process.exit(2);
}
if (args.values.help) {
  process.stdout.write(USAGE);
  process.exit(0);
}

try {
  const config = loadConfig({ file: args.values.config });
  if (config.processes > 1) {
    throw new Error('processes > 1 (cluster mode) is not available in this version; run one supervisor per core, or raise threads');
  }
  const pretty = wantsPretty();
  const log = createLogger({ level: config.logLevel, pretty });
  const sup = new Supervisor({ config, log, pretty });
  handleSignals(sup, log, config.shutdownTimeoutMs);
  await sup.start().catch((err: unknown) => failStart(err, log));
} catch (err) {
  failStart(err);
}
