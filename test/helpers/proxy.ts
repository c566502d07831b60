import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A pass-through HTTP proxy in front of the emulator that counts calls per SQS/SNS operation. */
export interface CountingProxy {
  endpoint: string;
  /** Most calls of an operation in progress at once. */
  maxConcurrent(operation: string): number;
  /** Requests of an operation received: forwarded or, while down, refused. */
  calls(operation: string): number;
  /** Requests of an operation refused while down: every attempt the client made, SDK retries included. */
  refused(operation: string): number;
  /** Every forwarded ReceiveMessage's MaxNumberOfMessages and WaitTimeSeconds, in order. */
  receives(): Array<{ max: number; waitSec: number }>;
  /** While down, every request is read (to count it) and then has its connection closed unanswered. */
  setDown(down: boolean): void;
  close(): Promise<void>;
}

function operationOf(req: IncomingMessage, body: Buffer): string {
  const target = req.headers['x-amz-target'];
  if (typeof target === 'string') return target.split('.').pop() ?? target;
  const m = /(?:^|&)Action=([A-Za-z]+)/.exec(body.toString());
  return m?.[1] ?? 'unknown';
}

export async function countingProxy(targetEndpoint: string): Promise<CountingProxy> {
  const target = new URL(targetEndpoint);
  const inFlight = new Map<string, number>();
  const peak = new Map<string, number>();
  const total = new Map<string, number>();
  const refused = new Map<string, number>();
  const receives: Array<{ max: number; waitSec: number }> = [];
  let down = false;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const refuse = down;
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const op = operationOf(req, body);
      if (refuse) {
        // Counted before the close, so a test can see how often a client retries against an outage
        // (not counting them made "few calls while down" true whatever the client did).
        total.set(op, (total.get(op) ?? 0) + 1);
        refused.set(op, (refused.get(op) ?? 0) + 1);
        req.socket.destroy();
        return;
      }
      const n = (inFlight.get(op) ?? 0) + 1;
      inFlight.set(op, n);
      peak.set(op, Math.max(peak.get(op) ?? 0, n));
      total.set(op, (total.get(op) ?? 0) + 1);
      if (op === 'ReceiveMessage') {
        try {
          const input = JSON.parse(body.toString()) as { MaxNumberOfMessages?: number; WaitTimeSeconds?: number };
          receives.push({ max: input.MaxNumberOfMessages ?? 1, waitSec: input.WaitTimeSeconds ?? 0 });
        } catch {
          receives.push({ max: NaN, waitSec: NaN }); // not the JSON protocol: the test sees NaN
        }
      }
      const done = () => inFlight.set(op, (inFlight.get(op) ?? 1) - 1);
      const upstream = request(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, host: target.host } },
        (up) => {
          res.writeHead(up.statusCode ?? 502, up.headers);
          up.pipe(res);
          up.on('end', done);
        },
      );
      upstream.on('error', () => {
        done();
        res.destroy();
      });
      res.on('close', () => upstream.destroy());
      upstream.end(body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    endpoint: `http://127.0.0.1:${port}`,
    maxConcurrent: (op) => peak.get(op) ?? 0,
    calls: (op) => total.get(op) ?? 0,
    refused: (op) => refused.get(op) ?? 0,
    receives: () => [...receives],
    setDown: (d) => {
      down = d;
      if (d) server.closeAllConnections();
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
