import type { AddressInfo } from 'node:net';
import { DEV_CREDENTIALS, DEV_REGION, type AwsSettings } from './aws.js';
import { EventBusError } from './errors.js';

/** A running fauxqs SNS/SQS emulator on loopback. */
export interface Emulator {
  port: number;
  endpoint: string;
  /** Settings for createAwsClients: explicit endpoint, region and emulator credentials. */
  aws: AwsSettings;
  stop(): Promise<void>;
}

/** fauxqs is a dev dependency (`npm ci --omit=dev` leaves it out): said when it is missing. */
export const EMULATOR_INSTALL_HINT = 'npm install --no-save fauxqs@1.9.2';

type Fauxqs = typeof import('fauxqs');

/** Loads fauxqs; when it is not installed, an ERR_EMULATOR_MISSING error that says how to install it. */
export async function loadFauxqs(load: () => Promise<Fauxqs> = () => import('fauxqs')): Promise<Fauxqs> {
  try {
    return await load();
  } catch (err) {
    const e = err as { code?: string; message?: string };
    if ((e.code === 'ERR_MODULE_NOT_FOUND' || e.code === 'MODULE_NOT_FOUND') && /fauxqs/.test(e.message ?? '')) {
      throw new EventBusError(
        'ERR_EMULATOR_MISSING',
        `the embedded SNS/SQS emulator (the dev dependency fauxqs) is not installed, as after \`npm ci --omit=dev\`: run \`${EMULATOR_INSTALL_HINT}\` (or a plain \`npm install\`) for \`eventbus dev\``,
        { cause: err },
      );
    }
    throw err;
  }
}

/** Host names a request to the loopback emulator may carry: anything else is DNS rebinding. */
const LOOPBACK_HOST = /^(127\.0\.0\.1|localhost|[a-z0-9.-]+\.localhost|\[::1\])(:\d+)?$/i;

/**
 * Why a request must be refused, or null. The SDKs never send `Origin` or `Sec-Fetch-*`; a browser
 * sends one of them with every request a web page makes (a form post carries `Origin`, an image or
 * a navigation `Sec-Fetch-Site`). Without this, any page open in the developer's browser could post
 * a form-encoded SNS Publish to 127.0.0.1:4566 (CSRF onto the dev bus). A Host that is not loopback
 * is a DNS-rebinding page that made itself same-origin with the emulator.
 */
export function browserRequestReason(headers: Record<string, string | string[] | undefined>): string | null {
  if (headers.origin !== undefined) return `a request with an Origin header (${String(headers.origin).slice(0, 100)}) comes from a web page`;
  if (headers['sec-fetch-site'] !== undefined || headers['sec-fetch-mode'] !== undefined) return 'a request with Sec-Fetch headers comes from a web browser';
  const host = String(headers.host ?? '');
  if (!LOOPBACK_HOST.test(host)) return `Host "${host.slice(0, 100)}" is not a loopback name`;
  return null;
}

/**
 * Starts fauxqs in this process on 127.0.0.1 (startFauxqs would bind 0.0.0.0, see FAUXQS.md F9).
 * Port 0 picks a free port. Requests from web pages are refused with 403 (browserRequestReason).
 */
export async function startEmulator(options: { port?: number; host?: string } = {}): Promise<Emulator> {
  const { buildApp } = await loadFauxqs();
  const app = buildApp({ logger: false });
  app.addHook('onRequest', async (req, reply) => {
    const why = browserRequestReason(req.headers);
    if (why !== null) return reply.code(403).header('content-type', 'text/plain').send(`eventbus dev emulator: refused: ${why}\n`);
  });
  serveBucketLifecycle(app);
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

/** `/<bucket>?lifecycle` or `/<bucket>/?lifecycle` (path-style), with the bucket name. */
const LIFECYCLE_URL = /^\/([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])\/?\?lifecycle(?:=[^&]*)?(?:&|$)/;

/**
 * Bucket lifecycle configurations, which fauxqs 1.9.2 does not implement: its router takes
 * `PUT /<bucket>?lifecycle` for CreateBucket (a silent no-op) and `GET` for ListObjects, so a
 * provisioned rule could never be read back and every `eventbus provision` would report an update.
 * Kept per bucket in memory, as S3 answers (200; GET of none: 404 NoSuchLifecycleConfiguration).
 * Nothing expires objects here: the emulator's store lives as long as the process (docs/fauxqs.md).
 */
function serveBucketLifecycle(app: { addHook(name: 'onRequest', fn: (req: any, reply: any) => Promise<unknown>): unknown }): void {
  const configs = new Map<string, string>();
  app.addHook('onRequest', async (req, reply) => {
    const m = LIFECYCLE_URL.exec(String(req.url));
    if (!m) return;
    const bucket = m[1]!;
    const xml = (status: number, body: string) => reply.code(status).header('content-type', 'application/xml').send(body);
    if (req.method === 'PUT') {
      const chunks: Buffer[] = [];
      for await (const c of req.raw as AsyncIterable<Buffer>) chunks.push(c);
      configs.set(bucket, Buffer.concat(chunks).toString('utf8'));
      return reply.code(200).send();
    }
    if (req.method === 'DELETE') {
      configs.delete(bucket);
      return reply.code(204).send();
    }
    const stored = configs.get(bucket);
    if (stored === undefined) {
      return xml(404, `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchLifecycleConfiguration</Code><Message>The lifecycle configuration does not exist</Message><BucketName>${bucket}</BucketName></Error>`);
    }
    return xml(200, stored);
  });
}
