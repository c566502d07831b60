import Fastify, { type FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';

export interface Readiness {
  ready: boolean;
  reason: string | null;
  state: string;
  queues: Record<string, unknown>;
}

export interface HttpOptions {
  host: string;
  port: number;
  registry: Registry;
  /** The metrics text; default: the registry's own (the cluster primary aggregates its children). */
  metrics?: () => Promise<string>;
  readiness(): Readiness | Promise<Readiness>;
  /** Registers more routes before listening (webhook ingress, /events). */
  routes?: (app: FastifyInstance) => Promise<void>;
}

/**
 * Every connection's bounds (SPEC v3 "HTTP"): a slow or hostile client ties up nothing for long.
 * Node checks the header and request deadlines every `checkIntervalMs` (its default, 30 s, would let a
 * client dribbling bytes hold a socket that much longer).
 */
export const HTTP_LIMITS = {
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  /** Idle socket (no bytes either way) before it is closed. */
  idleTimeoutMs: 30_000,
  checkIntervalMs: 1_000,
  /** Open connections at once; more are refused at accept (scrapes and webhooks need a handful). */
  maxConnections: 256,
} as const;

/** A Fastify app with the connection bounds of HTTP_LIMITS: every server of ours starts here. */
export function createHttpApp(limits: typeof HTTP_LIMITS = HTTP_LIMITS): FastifyInstance {
  const app = Fastify({
    logger: false,
    requestTimeout: limits.requestTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    connectionTimeout: limits.idleTimeoutMs,
    http: { headersTimeout: limits.headersTimeoutMs, connectionsCheckingInterval: limits.checkIntervalMs },
  });
  app.server.maxConnections = limits.maxConnections;
  return app;
}

/** The supervisor's one HTTP port: /metrics, /healthz (alive), /readyz (polling every queue). */
export async function startHttp(o: HttpOptions): Promise<{ app: FastifyInstance; port: number; close(): Promise<void> }> {
  const app = createHttpApp();
  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', o.registry.contentType);
    return o.metrics ? o.metrics() : o.registry.metrics();
  });
  app.get('/healthz', async () => ({ status: 'ok' }));
  app.get('/readyz', async (_req, reply) => {
    const r = await o.readiness();
    reply.code(r.ready ? 200 : 503);
    return r;
  });
  if (o.routes) await o.routes(app);
  await app.listen({ host: o.host, port: o.port });
  const port = (app.server.address() as AddressInfo).port;
  return { app, port, close: () => app.close() };
}
