// An HTTP proxy in front of the emulator that records every request (operation, headers, JSON body)
// and can answer chosen operations itself, as an AWS endpoint that has them would (the message
// move task API, which fauxqs lacks). The client under test is the real SDK client, unchanged.
import { createServer, request, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Recorded {
  operation: string;
  headers: IncomingMessage['headers'];
  /** The JSON body (SQS's JSON protocol), or null. */
  body: Record<string, any> | null;
}

/** Answers an operation: a status and a JSON body (SQS's JSON protocol), or undefined to forward it. */
export type Responder = (r: Recorded) => { status: number; body: unknown } | undefined;

export interface RecordingProxy {
  endpoint: string;
  requests(operation?: string): Recorded[];
  close(): Promise<void>;
}

export async function recordingProxy(targetEndpoint: string, respond: Responder = () => undefined): Promise<RecordingProxy> {
  const target = new URL(targetEndpoint);
  const seen: Recorded[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const amzTarget = req.headers['x-amz-target'];
      const form = /(?:^|&)Action=([A-Za-z]+)/.exec(raw.toString());
      const operation = typeof amzTarget === 'string' ? (amzTarget.split('.').pop() ?? amzTarget) : (form?.[1] ?? 'unknown');
      let body: Record<string, any> | null = null;
      try {
        body = JSON.parse(raw.toString()) as Record<string, any>;
      } catch {
        body = null;
      }
      const rec: Recorded = { operation, headers: req.headers, body };
      seen.push(rec);
      const answer = respond(rec);
      if (answer) {
        res.writeHead(answer.status, { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-requestid': 'recording-proxy' });
        res.end(JSON.stringify(answer.body));
        return;
      }
      const upstream = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, host: target.host } }, (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      });
      upstream.on('error', () => res.destroy());
      upstream.end(raw);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests: (op) => seen.filter((r) => op === undefined || r.operation === op),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
