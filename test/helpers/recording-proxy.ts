// An HTTP proxy in front of the emulator that records every request (operation, method, URL,
// headers, body) and the status of its answer, and can answer chosen operations itself, as an AWS
// endpoint that has them would (the message move task API, which fauxqs lacks). For what the code
// sends where the emulator does not keep or support it (SqsManagedSseEnabled, S3 bucket tagging,
// move tasks, the region a request is signed for). The client under test is the real SDK client.
import { createServer, request, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Recorded {
  /** SQS JSON (x-amz-target), SNS query (Action=), or S3 REST (`<METHOD> <path>?<query>`). */
  operation: string;
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  /** The body as text. */
  text: string;
  /** The JSON body (SQS's JSON protocol), or null. */
  body: Record<string, any> | null;
  /** The answer's status (0 until it is known). */
  status: number;
}

/** Answers an operation: a status and a JSON body (SQS's JSON protocol), or undefined to forward it. */
export type Responder = (r: Recorded) => { status: number; body: unknown } | undefined;

export interface RecordingProxy {
  endpoint: string;
  requests(operation?: string): Recorded[];
  close(): Promise<void>;
}

function operationOf(req: IncomingMessage, text: string): string {
  const target = req.headers['x-amz-target'];
  if (typeof target === 'string') return target.split('.').pop() ?? target;
  const m = /(?:^|&)Action=([A-Za-z]+)/.exec(text);
  return m?.[1] ?? `${req.method} ${req.url}`;
}

export async function recordingProxy(targetEndpoint: string, respond: Responder = () => undefined): Promise<RecordingProxy> {
  const target = new URL(targetEndpoint);
  const seen: Recorded[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const text = raw.toString();
      let body: Record<string, any> | null = null;
      try {
        body = JSON.parse(text) as Record<string, any>;
      } catch {
        body = null;
      }
      const rec: Recorded = { operation: operationOf(req, text), method: req.method ?? '', url: req.url ?? '', headers: req.headers, text, body, status: 0 };
      seen.push(rec);
      const answer = respond(rec);
      if (answer) {
        rec.status = answer.status;
        res.writeHead(answer.status, { 'content-type': 'application/x-amz-json-1.0', 'x-amzn-requestid': 'recording-proxy' });
        res.end(JSON.stringify(answer.body));
        return;
      }
      const upstream = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, host: target.host } }, (up) => {
        rec.status = up.statusCode ?? 0;
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
