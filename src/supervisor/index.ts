#!/usr/bin/env node
// Entry of `node dist/supervisor [--config FILE]`: production on a worker host. No logic here.
import cluster from 'node:cluster';
import { parseArgs } from 'node:util';
import { loadConfig } from '../config.js';
import { createLogger, wantsPretty } from '../log.js';
import { Supervisor } from './supervisor.js';
import { failStart, handleSignals } from './signals.js';

const USAGE = `usage: node dist/supervisor [--config FILE]

Runs the eventbus supervisor: polls every handler's queue and runs the handlers.
With processes > 1 it is a node:cluster primary supervising that many children.
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
  const childIndex = cluster.isWorker ? Number(process.env.EVENTBUS_CHILD_INDEX) : NaN;
  const child = cluster.isWorker ? { index: childIndex, count: Number(process.env.EVENTBUS_CHILD_COUNT) } : undefined;
  const config = loadConfig({ file: args.values.config, ...(child ? { child } : {}) });
  const pretty = wantsPretty();
  const log = createLogger({ level: config.logLevel, pretty, base: { pid: process.pid, ...(child ? { child: child.index } : {}) } });
  // The cluster module (and its HTTP server) is loaded only where it is used: start-up counts.
  const clustered = cluster.isWorker || config.processes > 1 ? await import('./cluster.js') : undefined;
  if (clustered && cluster.isPrimary) {
    const primary = new clustered.ClusterPrimary(config, log);
    handleSignals(primary, log, config.shutdownTimeoutMs + 5_000);
    await primary.start().catch((err: unknown) => failStart(err, log));
  } else {
    const sup = new Supervisor({ config, log, pretty });
    handleSignals(sup, log, config.shutdownTimeoutMs);
    if (child) {
      clustered?.serveChild(sup, () => void sup.stop('primary asked').then(() => process.exit(0)));
    }
    await sup.start().catch((err: unknown) => failStart(err, log));
    if (child) clustered?.notifyStarted();
  }
} catch (err) {
  failStart(err);
}
