import { parseKnownFiles } from '@smithy/core/config';
import { DEV_CREDENTIALS, DEV_REGION, createAwsClients, type AwsClients, type AwsSettings } from '../aws.js';
import { loadConfig, type Config } from '../config.js';
import { EventBusError } from '../errors.js';
import { DEV_PAYLOAD_BUCKET } from '../payloads/index.js';

/** The embedded emulator's default port (`npm start`). */
export const DEV_PORT = 4566;

export interface CommonOptions {
  config?: string;
  dev?: boolean;
  devPort?: string;
  /** AWS region for this run: overrides config `region` and AWS_REGION. Ignored with --dev. */
  region?: string;
  /** Profile of the shared AWS config/credentials files (as AWS_PROFILE). Ignored with --dev. */
  profile?: string;
}

/** AWS region names: `us-east-1`, `eu-central-2`, `us-gov-west-1`, `cn-north-1`, ... */
const REGION_RE = /^[a-z0-9]+(-[a-z0-9]+)+$/;

/**
 * Checks --region's form and that --profile names a profile of the shared files (AWS_CONFIG_FILE,
 * AWS_SHARED_CREDENTIALS_FILE, or ~/.aws/config and ~/.aws/credentials): the SDK would otherwise
 * fall through its whole credential chain (instance metadata included) before failing with a
 * message that does not name the flag. Notes on stderr that both are ignored with --dev.
 */
export async function checkAwsOptions(o: CommonOptions): Promise<void> {
  if (o.dev) {
    const ignored = [o.region !== undefined ? '--region' : '', o.profile !== undefined ? '--profile' : ''].filter(Boolean);
    if (ignored.length) process.stderr.write(`eventbus: note: ${ignored.join(' and ')} ignored with --dev (the emulator's region and credentials are used)\n`);
    return;
  }
  if (o.region !== undefined && !REGION_RE.test(o.region)) throw new UsageError(`--region must be an AWS region name such as us-east-1, got "${o.region}"`);
  if (o.profile === undefined) return;
  if (o.profile.trim() === '') throw new UsageError('--profile must name a profile, got ""');
  let profiles: Record<string, unknown>;
  try {
    profiles = await parseKnownFiles({ profile: o.profile, ignoreCache: true });
  } catch (err) {
    throw new EventBusError('ERR_CONFIG_INVALID', `--profile ${o.profile}: cannot read the AWS config files (${(err as Error).message})`);
  }
  if (!Object.hasOwn(profiles, o.profile)) {
    const known = Object.keys(profiles).sort();
    throw new EventBusError(
      'ERR_CONFIG_INVALID',
      `--profile "${o.profile}" is not in the AWS config or credentials file (${sharedFiles()}; known profiles: ${known.join(', ') || 'none'})`,
    );
  }
}

function sharedFiles(): string {
  return `${process.env.AWS_CONFIG_FILE || '~/.aws/config'}, ${process.env.AWS_SHARED_CREDENTIALS_FILE || '~/.aws/credentials'}`;
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
  const config = loadConfig({
    file: o.config,
    ...(o.dev
      ? { overrides: { endpoint, region: DEV_REGION }, defaults: { 'payloads.bucket': DEV_PAYLOAD_BUCKET } }
      : o.region !== undefined
        ? { overrides: { region: o.region } }
        : {}),
  });
  const aws: AwsSettings = o.dev
    ? { endpoint, region: DEV_REGION, credentials: { ...DEV_CREDENTIALS } }
    : { endpoint: config.endpoint, region: config.region, ...(o.profile !== undefined ? { profile: o.profile } : {}) };
  let clients: AwsClients | undefined;
  return { config, aws, clients: () => (clients ??= createAwsClients(aws)) };
}

/** Explains a connection failure against the dev emulator. */
export function devHint(err: unknown, dev: boolean | undefined): string {
  const text = `${(err as Error)?.message ?? err} ${String((err as { cause?: unknown })?.cause ?? '')}`;
  if (dev && /ECONNREFUSED|socket hang up|connect/i.test(text)) return ' (is `npm start` running? --dev talks to its emulator on 127.0.0.1)';
  return '';
}
