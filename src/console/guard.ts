// Who may reach the console (README "Console", docs/SECURITY.md): the bearer token where one is
// set; without one (loopback only), no page of another site and no rebound DNS name.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { bearerMatches } from '../archive/routes.js';
import { isLoopbackHost } from '../http/routes.js';

/** Security headers of every console response: the page runs only our own files. */
export const CONSOLE_HEADERS: Record<string, string> = {
  'content-security-policy':
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};

/** The host name of a Host header (`[::1]:9464` → `::1`); null when there is none. */
export function hostnameOf(host: string | undefined): string | null {
  if (!host) return null;
  const m = /^\[([^\]]+)\](?::\d+)?$/.exec(host) ?? /^([^:]+)(?::\d+)?$/.exec(host);
  return m ? m[1]! : null;
}

export interface GuardOptions {
  apiToken: string | null;
}

/**
 * Checks one console request; answers it (and returns false) when refused:
 * - without a token, a Host that is not loopback (DNS rebinding: evil.example resolving to 127.0.0.1);
 * - an API request without the bearer token, where one is set;
 * - an API request or an action that comes from another site (a page elsewhere can send requests to
 *   127.0.0.1: Sec-Fetch-Site and Origin say where it came from);
 * - an action (any method but GET/HEAD) that is not JSON.
 */
export function admit(req: FastifyRequest, reply: FastifyReply, o: GuardOptions & { api: boolean }): boolean {
  if (o.apiToken === null) {
    const host = hostnameOf(req.headers.host);
    if (host === null || !isLoopbackHost(host)) {
      void reply.code(403).send({ error: 'the console without http.apiToken answers only on a loopback Host (127.0.0.1, localhost, ::1)' });
      return false;
    }
  }
  if (o.api && o.apiToken !== null && !bearerMatches(req.headers.authorization, o.apiToken)) {
    reply.header('www-authenticate', 'Bearer');
    void reply.code(401).send({ error: 'missing or wrong bearer token' });
    return false;
  }
  // Every API call and every action must come from the console's own page (or from no page: curl,
  // the CLI): an <img> or a form on another site must not make the console browse or act.
  if (o.api || (req.method !== 'GET' && req.method !== 'HEAD')) {
    const site = req.headers['sec-fetch-site'];
    if (site !== undefined && site !== 'same-origin' && site !== 'none') {
      void reply.code(403).send({ error: `cross-site request refused (Sec-Fetch-Site: ${String(site)})` });
      return false;
    }
    const origin = req.headers.origin;
    if (origin !== undefined) {
      let originHost: string | null = null;
      try {
        originHost = new URL(origin).host;
      } catch {
        originHost = null;
      }
      if (originHost === null || originHost !== req.headers.host) {
        void reply.code(403).send({ error: 'cross-origin request refused (Origin is not this console)' });
        return false;
      }
    }
  }
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    const type = String(req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (type !== 'application/json') {
      void reply.code(415).send({ error: 'actions take content-type: application/json' });
      return false;
    }
  }
  return true;
}
