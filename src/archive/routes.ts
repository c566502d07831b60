// GET /events: the activity-feed query over the archive, behind a bearer token when http.apiToken is set.
import { createHash, timingSafeEqual } from 'node:crypto';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Logger } from '../log.js';
import { checkLimit, decodeCursor, parseTime, type ArchiveQuery, type ArchiveStore } from './store.js';

export interface EventsRouteOptions {
  /** The store, opened on first use. */
  store(): Promise<ArchiveStore>;
  /** null = no token required. */
  apiToken: string | null;
  log: Logger;
}

/** Constant-time check of `Authorization: Bearer <token>` (digests, so lengths do not leak). */
export function bearerMatches(header: string | undefined, token: string): boolean {
  // Only ASCII spaces and tabs around the token (RFC 7235); no trim() of Unicode spaces, under
  // which a bearer of one non-breaking space once matched an empty token.
  const m = /^Bearer[ \t]+([^ \t](?:.*[^ \t])?)[ \t]*$/i.exec(header ?? '');
  if (token === '') return false;
  const given = createHash('sha256').update(m?.[1] ?? '').digest();
  const expected = createHash('sha256').update(token).digest();
  return m !== null && timingSafeEqual(given, expected);
}

/** Parses /events query parameters into an ArchiveQuery; throws a message for a 400. */
export function parseEventsQuery(q: Record<string, unknown>): ArchiveQuery {
  const one = (name: string): string | undefined => {
    const v = q[name];
    if (v === undefined || v === '') return undefined;
    if (Array.isArray(v)) return one2(v[v.length - 1]);
    return one2(v);
  };
  const one2 = (v: unknown) => (typeof v === 'string' ? v : String(v));
  const typeParam = q.type;
  const types = (Array.isArray(typeParam) ? typeParam : typeParam === undefined ? [] : [typeParam])
    .flatMap((t) => String(t).split(','))
    .map((t) => t.trim())
    .filter(Boolean);
  const since = one('since');
  const until = one('until');
  const limit = one('limit');
  const cursor = one('cursor');
  if (limit !== undefined && !/^\d+$/.test(limit)) checkLimit(NaN);
  const out: ArchiveQuery = {
    ...(types.length ? { types } : {}),
    ...(since !== undefined ? { sinceMs: parseTime(since, 'since') } : {}),
    ...(until !== undefined ? { untilMs: parseTime(until, 'until') } : {}),
    limit: checkLimit(limit === undefined ? undefined : Number(limit)),
    ...(cursor !== undefined ? { cursor } : {}),
  };
  if (cursor !== undefined) decodeCursor(cursor);
  return out;
}

/**
 * Answers one archive page for the request's query parameters: `{"events": [...], "nextCursor"}`,
 * 400 for a bad parameter, 503 when the store fails. GET /events and the console's events API.
 */
export async function sendEventsPage(req: FastifyRequest, reply: FastifyReply, store: () => Promise<ArchiveStore>, log: Logger): Promise<FastifyReply> {
  let q: ArchiveQuery;
  try {
    q = parseEventsQuery(req.query as Record<string, unknown>);
  } catch (err) {
    return reply.code(400).send({ error: (err as Error).message });
  }
  try {
    // The stored JSON texts as they are: a page is up to MAX_PAGE_BYTES, and parsing it only to
    // serialise it again would hold the supervisor's event loop twice as long.
    const page = await (await store()).queryJson(q);
    return reply.type('application/json; charset=utf-8').send(`{"events":[${page.events.join(',')}],"nextCursor":${JSON.stringify(page.nextCursor)}}`);
  } catch (err) {
    log.error({ err }, 'archive query failed');
    return reply.code(503).send({ error: 'archive unavailable' });
  }
}

export async function registerEventsRoute(app: FastifyInstance, o: EventsRouteOptions): Promise<void> {
  app.get('/events', async (req, reply) => {
    if (o.apiToken !== null && !bearerMatches(req.headers.authorization, o.apiToken)) {
      reply.header('www-authenticate', 'Bearer');
      return reply.code(401).send({ error: 'missing or wrong bearer token' });
    }
    return sendEventsPage(req, reply, o.store, o.log);
  });
}
