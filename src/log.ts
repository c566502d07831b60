import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import PinoPretty from 'pino-pretty';

export type { Logger };

/** Paths that may carry credentials or configured secrets; never logged. */
export const REDACT_PATHS = [
  'apiToken',
  '*.apiToken',
  'secret',
  '*.secret',
  'secrets',
  '*.secrets',
  'credentials',
  '*.credentials',
  'secretAccessKey',
  '*.secretAccessKey',
  'sessionToken',
  '*.sessionToken',
  'password',
  '*.password',
  'connectionString',
  '*.connectionString',
  'authorization',
  '*.authorization',
  'headers.authorization',
  'req.headers.authorization',
  'headers["stripe-signature"]',
];

export interface LogOptions {
  level?: string;
  /** Human-readable lines (terminal or `npm start`) instead of JSON. */
  pretty?: boolean;
  base?: Record<string, unknown>;
  /** Where JSON lines go (default stdout). */
  destination?: DestinationStream;
}

/** Creates a root logger; pretty output is synchronous so lines from threads and main interleave in order. */
export function createLogger(opts: LogOptions = {}): Logger {
  const options: LoggerOptions = {
    level: opts.level ?? 'info',
    base: opts.base ?? { pid: process.pid },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    errorKey: 'err',
  };
  if (opts.pretty) {
    return pino(options, PinoPretty({ sync: true, singleLine: true, colorize: process.stdout.isTTY ?? false, ignore: 'pid,hostname', translateTime: 'HH:MM:ss.l' }));
  }
  return opts.destination ? pino(options, opts.destination) : pino(options);
}

/** Whether logs should be pretty by default: attached to a terminal, or asked for by `eventbus dev`. */
export function wantsPretty(env: NodeJS.ProcessEnv = process.env): boolean {
  if (env.EVENTBUS_LOG_FORMAT === 'json') return false;
  if (env.EVENTBUS_LOG_FORMAT === 'pretty') return true;
  return process.stdout.isTTY === true;
}
