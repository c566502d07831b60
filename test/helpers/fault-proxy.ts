import { randomUUID } from 'node:crypto';
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * What the proxy does to a request:
 * - `pass`: forwards it to the emulator.
 * - `http500`: 500 with an AWS JSON/XML `InternalFailure` body.
 * - `http503`: 503 with a load balancer's HTML page (not an AWS error body at all).
 * - `throttle`: 400 `ThrottlingException` in the JSON protocol's awsQueryCompatible shape
 *   (`__type` plus the `x-amzn-query-error: ThrottlingException;Sender` header), or the Query
 *   protocol's XML `Throttling` for SNS.
 * - `throttle-legacy`: SQS's modelled `RequestThrottled` (HTTP 403, `x-amzn-query-error:
 *   RequestThrottled;Sender`), or 400 `RequestLimitExceeded` XML for SNS.
 * - `reset`: destroys the connection as soon as the request arrives (ECONNRESET / socket hang up).
 * - `latency`: forwards after `latencyMs`.
 * - `hang`: reads the request and never answers; the connection stays open until the client gives up.
 */
export type FaultMode = 'pass' | 'http500' | 'http503' | 'throttle' | 'throttle-legacy' | 'reset' | 'latency' | 'hang';

export const FAULT_MODES: readonly FaultMode[] = ['http500', 'http503', 'throttle', 'throttle-legacy', 'reset', 'latency', 'hang'];

export interface FaultOptions {
  /** For `latency`: added before forwarding (ms). */
  latencyMs?: number;
  /** Only these operations are faulted (e.g. ['DeleteMessageBatch']); default: every operation. */
  operations?: string[];
  /** Fraction of matching requests that are faulted (default 1). */
  ratio?: number;
}

/** One request as the proxy saw it. */
export interface RequestRecord {
  atMs: number;
  operation: string;
  /** The mode applied to it (`pass` if it was forwarded untouched). */
  fault: FaultMode;
}

export interface FaultProxy {
  endpoint: string;
  readonly mode: FaultMode;
  /** Switches the mode for requests arriving from now on. */
  setFault(mode: FaultMode, options?: FaultOptions): void;
  /** Back to `pass`. Requests already hanging stay hung (as after a real partition heals) unless `releaseHung`. */
  clear(options?: { releaseHung?: boolean }): void;
  /** Requests received (optionally of one operation, and since `sinceMs`). */
  calls(operation?: string, sinceMs?: number): number;
  /** Requests that got a fault (optionally of one operation, and since `sinceMs`). */
  faulted(operation?: string, sinceMs?: number): number;
  /** Requests per second received in [fromMs, toMs). */
  rate(fromMs: number, toMs: number, operation?: string): number;
  /** The highest number of requests received in any `windowMs` window of [fromMs, toMs), per second. */
  peakRate(fromMs: number, toMs: number, windowMs?: number): number;
  /** Requests received per operation since `sinceMs`. */
  byOperation(sinceMs?: number): Record<string, number>;
  /** Requests being held by `hang` right now. */
  hanging(): number;
  records(): readonly RequestRecord[];
  close(): Promise<void>;
}

/** The operation of an SQS (JSON protocol: `x-amz-target`) or SNS (Query protocol: `Action=`) request. */
export function operationOf(req: IncomingMessage, body: Buffer): string {
  const target = req.headers['x-amz-target'];
  if (typeof target === 'string') return target.split('.').pop() ?? target;
  const m = /(?:^|&)Action=([A-Za-z]+)/.exec(body.toString('latin1'));
  return m?.[1] ?? 'unknown';
}

function isJsonProtocol(req: IncomingMessage): boolean {
  return typeof req.headers['x-amz-target'] === 'string';
}

function xmlError(type: 'Sender' | 'Receiver', code: string, message: string): string {
  return `<ErrorResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/"><Error><Type>${type}</Type><Code>${code}</Code><Message>${message}</Message></Error><RequestId>${randomUUID()}</RequestId></ErrorResponse>`;
}

/** Writes the error response of a fault mode, in the protocol of the request. */
function sendFault(mode: 'http500' | 'http503' | 'throttle' | 'throttle-legacy', req: IncomingMessage, res: ServerResponse): void {
  const json = isJsonProtocol(req);
  const requestId = randomUUID();
  const send = (status: number, headers: Record<string, string>, body: string) => {
    res.writeHead(status, { 'x-amzn-requestid': requestId, 'content-length': Buffer.byteLength(body), ...headers });
    res.end(body);
  };
  const jsonHeaders = (queryError?: string): Record<string, string> => ({
    'content-type': 'application/x-amz-json-1.0',
    ...(queryError ? { 'x-amzn-query-error': queryError } : {}),
  });
  switch (mode) {
    case 'http500':
      if (json) send(500, jsonHeaders('InternalFailure;Receiver'), JSON.stringify({ __type: 'com.amazon.coral.service#InternalFailure', message: 'We encountered an internal error. Please try again.' }));
      else send(500, { 'content-type': 'text/xml' }, xmlError('Receiver', 'InternalFailure', 'We encountered an internal error. Please try again.'));
      return;
    case 'http503':
      // What a load balancer in front of the service answers: no AWS error shape at all.
      send(503, { 'content-type': 'text/html' }, '<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>');
      return;
    case 'throttle':
      if (json) send(400, jsonHeaders('ThrottlingException;Sender'), JSON.stringify({ __type: 'com.amazonaws.sqs#ThrottlingException', message: 'Rate exceeded' }));
      else send(400, { 'content-type': 'text/xml' }, xmlError('Sender', 'Throttling', 'Rate exceeded'));
      return;
    case 'throttle-legacy':
      if (json) send(403, jsonHeaders('RequestThrottled;Sender'), JSON.stringify({ __type: 'com.amazonaws.sqs#RequestThrottled', message: 'Request is throttled.' }));
      else send(400, { 'content-type': 'text/xml' }, xmlError('Sender', 'RequestLimitExceeded', 'Request limit exceeded.'));
      return;
  }
}

/**
 * A fault-injecting HTTP proxy in front of the emulator: the supervisor's endpoint points here, the
 * test's own clients go to the emulator directly. The mode switches at run time; every request is
 * recorded (time, operation, fault) for per-operation counts and request rates.
 */
export async function faultProxy(targetEndpoint: string): Promise<FaultProxy> {
  const target = new URL(targetEndpoint);
  const log: RequestRecord[] = [];
  const held = new Set<ServerResponse>();
  const sockets = new Set<Socket>();
  let mode: FaultMode = 'pass';
  let options: FaultOptions = {};

  const forward = (req: IncomingMessage, res: ServerResponse, body: Buffer) => {
    const upstream = request(
      { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, host: target.host } },
      (up) => {
        res.writeHead(up.statusCode ?? 502, up.headers);
        up.pipe(res);
      },
    );
    upstream.on('error', () => res.destroy());
    res.on('close', () => upstream.destroy());
    upstream.end(body);
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const operation = operationOf(req, body);
      const applies = mode !== 'pass' && (!options.operations || options.operations.includes(operation)) && Math.random() < (options.ratio ?? 1);
      const fault: FaultMode = applies ? mode : 'pass';
      log.push({ atMs: Date.now(), operation, fault });
      switch (fault) {
        case 'pass':
          return forward(req, res, body);
        case 'reset':
          // An RST rather than a FIN: what a crashed load balancer or a dropped NAT entry looks like.
          req.socket.resetAndDestroy();
          return;
        case 'latency': {
          const timer = setTimeout(() => forward(req, res, body), options.latencyMs ?? 3_000);
          res.on('close', () => clearTimeout(timer));
          return;
        }
        case 'hang':
          held.add(res);
          res.on('close', () => held.delete(res));
          return;
        default:
          return sendFault(fault, req, res);
      }
    });
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;

  const select = (operation?: string, sinceMs = 0, faultedOnly = false) =>
    log.filter((r) => r.atMs >= sinceMs && (!operation || r.operation === operation) && (!faultedOnly || r.fault !== 'pass'));

  return {
    endpoint: `http://127.0.0.1:${port}`,
    get mode() {
      return mode;
    },
    setFault(m, o = {}) {
      mode = m;
      options = o;
    },
    clear(o = {}) {
      mode = 'pass';
      options = {};
      if (o.releaseHung) for (const res of held) res.destroy();
    },
    calls: (operation, sinceMs) => select(operation, sinceMs).length,
    faulted: (operation, sinceMs) => select(operation, sinceMs, true).length,
    rate(fromMs, toMs, operation) {
      const n = log.filter((r) => r.atMs >= fromMs && r.atMs < toMs && (!operation || r.operation === operation)).length;
      return n / Math.max(0.001, (toMs - fromMs) / 1000);
    },
    peakRate(fromMs, toMs, windowMs = 1_000) {
      const times = log.filter((r) => r.atMs >= fromMs && r.atMs < toMs).map((r) => r.atMs);
      let best = 0;
      for (let i = 0, j = 0; i < times.length; i++) {
        while (times[i]! - times[j]! >= windowMs) j++;
        best = Math.max(best, i - j + 1);
      }
      return best / (windowMs / 1000);
    },
    byOperation(sinceMs = 0) {
      const out: Record<string, number> = {};
      for (const r of select(undefined, sinceMs)) out[r.operation] = (out[r.operation] ?? 0) + 1;
      return out;
    },
    hanging: () => held.size,
    records: () => log,
    close: () =>
      new Promise<void>((r) => {
        for (const res of held) res.destroy();
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}
