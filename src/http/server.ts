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

/** The supervisor's one HTTP port: /metrics, /healthz (alive), /readyz (polling every queue). */
export async function startHttp(o: HttpOptions): Promise<{ app: FastifyInstance; port: number; close(): Promise<void> }> {
  const app = Fastify({ logger: false });
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
