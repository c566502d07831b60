import type { AddressInfo } from 'node:net';
import { DEV_CREDENTIALS, DEV_REGION, type AwsSettings } from './aws.js';

/** A running fauxqs SNS/SQS emulator on loopback. */
export interface Emulator {
  port: number;
  endpoint: string;
  /** Settings for createAwsClients: explicit endpoint, region and emulator credentials. */
  aws: AwsSettings;
  stop(): Promise<void>;
}

/**
 * Starts fauxqs in this process on 127.0.0.1 (startFauxqs would bind 0.0.0.0, see FAUXQS.md F9).
 * Port 0 picks a free port.
 */
export async function startEmulator(options: { port?: number; host?: string } = {}): Promise<Emulator> {
  const { buildApp } = await import('fauxqs');
  const app = buildApp({ logger: false });
  const host = options.host ?? '127.0.0.1';
  await app.listen({ port: options.port ?? 0, host });
  const port = (app.server.address() as AddressInfo).port;
  const endpoint = `http://${host}:${port}`;
  let stopped: Promise<void> | undefined;
  return {
    port,
    endpoint,
    aws: { endpoint, region: DEV_REGION, credentials: { ...DEV_CREDENTIALS } },
    stop() {
      stopped ??= app.close().then(() => undefined);
      return stopped;
    },
  };
}
