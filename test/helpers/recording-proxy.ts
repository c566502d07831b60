// A pass-through HTTP proxy in front of the emulator that records every request (operation and
// body) and the status of its answer: to see what the code sends where the emulator does not
// keep or support it (SetQueueAttributes SqsManagedSseEnabled, S3 bucket tagging).
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  /** SQS JSON (x-amz-target), SNS query (Action=), or S3 REST (`<METHOD> <path>?<query>`). */
  operation: string;
  method: string;
  url: string;
  body: string;
  /** The emulator's answer. */
  status: number;
}

export interface RecordingProxy {
  endpoint: string;
  requests(operation?: string): RecordedRequest[];
  close(): Promise<void>;
}

function operationOf(req: IncomingMessage, body: string): string {
  const target = req.headers['x-amz-target'];
  if (typeof target === 'string') return target.split('.').pop() ?? target;
  const m = /(?:^|&)Action=([A-Za-z]+)/.exec(body);
  return m?.[1] ?? `${req.method} ${req.url}`;
}

export async function recordingProxy(targetEndpoint: string): Promise<RecordingProxy> {
  const target = new URL(targetEndpoint);
  const recorded: RecordedRequest[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const entry: RecordedRequest = { operation: operationOf(req, body.toString()), method: req.method ?? '', url: req.url ?? '', body: body.toString(), status: 0 };
      recorded.push(entry);
      const upstream = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, host: target.host } }, (up) => {
        entry.status = up.statusCode ?? 0;
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      });
      upstream.on('error', () => res.destroy());
      upstream.end(body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests: (operation) => recorded.filter((r) => operation === undefined || r.operation === operation),
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
