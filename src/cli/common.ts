import { DEV_CREDENTIALS, DEV_REGION, createAwsClients, type AwsClients, type AwsSettings } from '../aws.js';
import { loadConfig, type Config } from '../config.js';
import { DEV_PAYLOAD_BUCKET } from '../payloads/index.js';

/** The embedded emulator's default port (`npm start`). */
export const DEV_PORT = 4566;

export interface CommonOptions {
  config?: string;
  dev?: boolean;
  devPort?: string;
}

/**
 * A closed stdout or stderr (`eventbus help replay | head -1`) ends the CLI quietly with status 0,
 * as Unix tools do, instead of an unhandled 'error' event with a stack trace (issue 20). Any other
 * stream error is thrown as before.
 */
export function exitQuietlyOnBrokenPipe(): void {
  for (const stream of [process.stdout, process.stderr]) {
    if (stream.listeners('error').includes(onStreamError)) continue;
    stream.on('error', onStreamError);
  }
}

function onStreamError(err: NodeJS.ErrnoException): void {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
}

/** A usage error: exit status 2. */
export class UsageError extends Error {}

/** Config for a CLI command; with --dev, the running `npm start` emulator and its credentials (never ambient ones). */
export function commandContext(o: CommonOptions): { config: Readonly<Config>; aws: AwsSettings; clients: () => AwsClients } {
  const devPort = o.devPort ? Number(o.devPort) : DEV_PORT;
  if (o.dev && (!Number.isInteger(devPort) || devPort < 1 || devPort > 65535)) throw new UsageError(`--dev-port must be a port number, got ${o.devPort}`);
  const endpoint = `http://127.0.0.1:${devPort}`;
  // --dev: the bucket `npm start` provisions, unless the config names one.
  const config = loadConfig({ file: o.config, ...(o.dev ? { overrides: { endpoint, region: DEV_REGION }, defaults: { 'payloads.bucket': DEV_PAYLOAD_BUCKET } } : {}) });
  const aws: AwsSettings = o.dev
    ? { endpoint, region: DEV_REGION, credentials: { ...DEV_CREDENTIALS } }
    : { endpoint: config.endpoint, region: config.region };
  let clients: AwsClients | undefined;
  return { config, aws, clients: () => (clients ??= createAwsClients(aws)) };
}

/** Explains a connection failure against the dev emulator. */
export function devHint(err: unknown, dev: boolean | undefined): string {
  const text = `${(err as Error)?.message ?? err} ${String((err as { cause?: unknown })?.cause ?? '')}`;
  if (dev && /ECONNREFUSED|socket hang up|connect/i.test(text)) return ' (is `npm start` running? --dev talks to its emulator on 127.0.0.1)';
  return '';
}
