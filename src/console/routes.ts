// The web console (issue 16): GET /console (the page and its files) and its JSON API under
// /console/api. README "Console" documents every endpoint.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import type { ArchiveStore } from '../archive/store.js';
import { sendEventsPage } from '../archive/routes.js';
import type { Logger } from '../log.js';
import { admit, CONSOLE_HEADERS } from './guard.js';
import type { FailureLog } from './failures.js';
import type { ConsoleQueue, ConsoleSampler } from './sampler.js';

/** The dead-letter operations the console offers (src/console/dlq.ts). */
export interface ConsoleDlq {
  /** Up to `max` messages of a queue's DLQ, released again at once (visibility 0). */
  browse(queue: string, max: number): Promise<{ messages: unknown[]; problems: string[] }>;
  /**
   * Moves the messages with these SQS message ids back to the queue (all of them with 'all'); with
   * `store`, under the archive's redrive lock (one redrive per DLQ, the CLI's included). "all" moves at
   * most MAX_REDRIVE_PER_REQUEST; `more` says whether more may remain.
   */
  redrive(
    queue: string,
    ids: readonly string[] | 'all',
    store: (() => Promise<ArchiveStore>) | null,
  ): Promise<{ moved: number; failed: number; notDeleted: number; movedIds: string[]; errors: string[]; aborted: boolean; more: boolean }>;
}

export interface ConsoleOptions {
  apiToken: string | null;
  log: Logger;
  /** What the page says about where it runs (`supervisor`, `cluster primary`, `ingress`). */
  role: string;
  processes: number;
  queues(): readonly ConsoleQueue[];
  /** Live numbers; null where no supervisor runs (ingress without queues). */
  sampler: ConsoleSampler | null;
  failures: FailureLog | null;
  /** A note shown on the failures page (cluster: where failures come from). */
  failuresNote?: string | undefined;
  /** The archive store; null when the archive is off. */
  store: (() => Promise<ArchiveStore>) | null;
  dlq: ConsoleDlq | null;
  /** Publishes a test event (only under `npm start` / `eventbus dev`); null = no form. */
  publish: ((type: string, data: unknown) => Promise<{ id: string }>) | null;
  version: string;
}

/** The package's version, shown on the page. */
export const CONSOLE_VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** The console's static files: ours from assets/console, the libraries from node_modules. */
const ASSETS_DIR = new URL('../../assets/console/', import.meta.url);
const require = createRequire(import.meta.url);

interface Asset {
  body: Buffer;
  type: string;
}

function loadAssets(): Map<string, Asset> {
  const js = 'text/javascript; charset=utf-8';
  const css = 'text/css; charset=utf-8';
  const files: Array<[string, string, string]> = [
    ['index.html', fileURLToPath(new URL('index.html', ASSETS_DIR)), 'text/html; charset=utf-8'],
    ['app.js', fileURLToPath(new URL('app.js', ASSETS_DIR)), js],
    ['app.css', fileURLToPath(new URL('app.css', ASSETS_DIR)), css],
    // preact + hooks + htm in one ES module (htm's documented no-build distribution)
    ['vendor/preact-htm.js', fileURLToPath(import.meta.resolve('htm/preact/standalone')), js],
    ['vendor/uPlot.js', require.resolve('uplot/dist/uPlot.iife.min.js'), js],
    ['vendor/uPlot.css', require.resolve('uplot/dist/uPlot.min.css'), css],
  ];
  return new Map(files.map(([name, path, type]) => [name, { body: readFileSync(path), type }]));
}

/** Most DLQ messages one browse shows (SQS receives 10 per call). */
const MAX_BROWSE = 100;
/** Most message ids one redrive request names. */
const MAX_REDRIVE_IDS = 1_000;

/** Registers /console and /console/api/* on `app`. */
export async function registerConsole(app: FastifyInstance, o: ConsoleOptions): Promise<void> {
  const assets = loadAssets();
  await app.register(
    async (scope) => {
      scope.addHook('onRequest', async (req, reply) => {
        for (const [k, v] of Object.entries(CONSOLE_HEADERS)) reply.header(k, v);
        // Decided by the route that matched, not by the raw URL: the router decodes the path
        // (/console/%61pi/info is /console/api/info). Only the page and its static files are open;
        // everything else, an unknown path included, is the API and needs the token.
        const route = req.routeOptions.url;
        const api = !(route === '/console' || route === '/console/' || route === '/console/assets/*');
        if (api) reply.header('cache-control', 'no-store');
        if (!admit(req, reply, { apiToken: o.apiToken, api })) return reply;
      });
      const page = (name: string) => async (_req: unknown, reply: import('fastify').FastifyReply) => {
        const a = assets.get(name)!;
        reply.header('cache-control', 'no-cache');
        return reply.type(a.type).send(a.body);
      };
      scope.get('/', page('index.html'));
      scope.get('/assets/*', async (req, reply) => {
        const a = assets.get((req.params as { '*': string })['*']);
        if (!a) return reply.code(404).send({ error: 'no such file' });
        reply.header('cache-control', 'no-cache');
        return reply.type(a.type).send(a.body);
      });

      scope.get('/api/info', async () => ({
        version: o.version,
        role: o.role,
        processes: o.processes,
        tokenRequired: o.apiToken !== null,
        archive: o.store !== null,
        dlq: o.dlq !== null,
        publish: o.publish !== null,
        live: o.sampler !== null,
        failuresNote: o.failuresNote ?? null,
        queues: o.queues(),
      }));

      scope.get('/api/overview', async (req, reply) => {
        if (!o.sampler) return reply.code(404).send({ error: 'no supervisor runs here: the overview is served by the supervisor' });
        const since = (req.query as { since?: string }).since;
        const sinceMs = since === undefined || since === '' ? undefined : Number(since);
        if (sinceMs !== undefined && !Number.isFinite(sinceMs)) return reply.code(400).send({ error: 'since must be a time in ms since the epoch' });
        return o.sampler.overview(sinceMs);
      });

      scope.get('/api/failures', async (req, reply) => {
        if (!o.failures) return reply.code(404).send({ error: 'no supervisor runs here: failures are recorded by the supervisor' });
        const q = req.query as { limit?: string; queue?: string };
        const limit = q.limit === undefined ? 50 : Number(q.limit);
        if (!Number.isInteger(limit) || limit < 1 || limit > o.failures.capacity) return reply.code(400).send({ error: `limit must be an integer from 1 to ${o.failures.capacity}` });
        return { total: o.failures.total, kept: o.failures.capacity, note: o.failuresNote ?? null, failures: o.failures.list(limit, q.queue || undefined) };
      });

      scope.get('/api/events', async (req, reply) => {
        if (!o.store) return reply.code(404).send({ error: 'the archive is off (archive.enabled)' });
        return sendEventsPage(req, reply, o.store, o.log);
      });

      scope.get('/api/events/:id', async (req, reply) => {
        if (!o.store) return reply.code(404).send({ error: 'the archive is off (archive.enabled)' });
        const { id } = req.params as { id: string };
        try {
          const json = await (await o.store()).getJson(id);
          if (json === null) return reply.code(404).send({ error: `event ${id} is not in the archive` });
          return reply.type('application/json; charset=utf-8').send(`{"event":${json}}`);
        } catch (err) {
          o.log.error({ err }, 'archive query failed');
          return reply.code(503).send({ error: 'archive unavailable' });
        }
      });

      const knownQueue = (name: string) => o.queues().find((q) => q.queue === name);

      scope.get('/api/dlq/:queue/messages', async (req, reply) => {
        if (!o.dlq) return reply.code(404).send({ error: 'dead letters are not served here' });
        const { queue } = req.params as { queue: string };
        const q = knownQueue(queue);
        if (!q) return reply.code(404).send({ error: `no handler queue ${queue}` });
        if (!q.dlq) return reply.code(404).send({ error: `queue ${queue} has no DLQ` });
        const maxRaw = (req.query as { max?: string }).max;
        const max = maxRaw === undefined ? 20 : Number(maxRaw);
        if (!Number.isInteger(max) || max < 1 || max > MAX_BROWSE) return reply.code(400).send({ error: `max must be an integer from 1 to ${MAX_BROWSE}` });
        try {
          return { queue, dlq: q.dlq, ...(await o.dlq.browse(queue, max)) };
        } catch (err) {
          o.log.warn({ err, queue }, 'console: DLQ browse failed');
          return reply.code(502).send({ error: `DLQ of ${queue} not read: ${(err as Error).message}` });
        }
      });

      scope.post('/api/dlq/:queue/redrive', async (req, reply) => {
        if (!o.dlq) return reply.code(404).send({ error: 'dead letters are not served here' });
        const { queue } = req.params as { queue: string };
        const q = knownQueue(queue);
        if (!q) return reply.code(404).send({ error: `no handler queue ${queue}` });
        if (!q.dlq) return reply.code(404).send({ error: `queue ${queue} has no DLQ` });
        const body = (req.body ?? {}) as { messageIds?: unknown; all?: unknown };
        const ids = body.messageIds;
        const all = body.all === true;
        const idsOk = Array.isArray(ids) && ids.length > 0 && ids.length <= MAX_REDRIVE_IDS && ids.every((i) => typeof i === 'string' && i.length > 0 && i.length <= 256);
        if (all === idsOk) return reply.code(400).send({ error: `give either "messageIds" (1 to ${MAX_REDRIVE_IDS} SQS message ids) or "all": true` });
        try {
          const r = await o.dlq.redrive(queue, all ? 'all' : (ids as string[]), o.store);
          o.log.info({ queue, moved: r.moved, failed: r.failed, requested: all ? 'all' : (ids as string[]).length }, 'console: dead letters redriven');
          return r;
        } catch (err) {
          o.log.warn({ err, queue }, 'console: redrive failed');
          const locked = (err as { code?: string }).code === 'ERR_LOCKED';
          return reply.code(locked ? 409 : 502).send({ error: locked ? (err as Error).message : `redrive of ${queue} failed: ${(err as Error).message}` });
        }
      });

      scope.post('/api/publish', async (req, reply) => {
        if (!o.publish) return reply.code(404).send({ error: 'publishing from the console is only under npm start (eventbus dev)' });
        const body = (req.body ?? {}) as { type?: unknown; data?: unknown };
        if (typeof body.type !== 'string' || !/^[A-Za-z0-9_.:-]{1,256}$/.test(body.type)) return reply.code(400).send({ error: 'type must be an event type (letters, digits, _ . : -)' });
        try {
          return { published: await o.publish(body.type, body.data ?? {}) };
        } catch (err) {
          return reply.code(400).send({ error: (err as Error).message });
        }
      });
    },
    { prefix: '/console' },
  );
}
