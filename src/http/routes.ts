// The optional routes of the HTTP port: webhook ingress (when configured) and /events (when the
// archive is on). Shared by the supervisor, the cluster primary and `eventbus ingress`.
import type { FastifyInstance } from 'fastify';
import type { Metrics } from '#metrics/registry.js';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { Publisher } from '../publisher/index.js';
import { registerWebhookRoutes, webhooksEnabled } from '../publisher/webhooks.js';
import { describeArchive, openArchive, registerEventsRoute, resolveArchiveUrl, type ArchiveStore } from '../archive/index.js';

export interface ExtraRoutesOptions {
  config: Readonly<Config>;
  metrics: Pick<Metrics, 'webhookRequests'>;
  log: Logger;
  /** null while the topic is not resolved (webhooks then answer 503 and the sender retries). */
  publisher(): Publisher | null;
  /** Serve /events (default: when archive.enabled). */
  events?: boolean;
}

export interface ExtraRoutes {
  register(app: FastifyInstance): Promise<void>;
  /** Closes the archive store the /events route opened. */
  close(): Promise<void>;
}

export function extraRoutes(o: ExtraRoutesOptions): ExtraRoutes {
  const cfg = o.config;
  let store: Promise<ArchiveStore> | undefined;
  const archiveUrl = resolveArchiveUrl(cfg.archive.url);
  return {
    async register(app) {
      if (webhooksEnabled(cfg)) {
        await registerWebhookRoutes(app, {
          stripeSecrets: cfg.webhooks.stripe.secrets,
          sources: cfg.webhooks.sources,
          publisher: o.publisher,
          count: (source, outcome) => o.metrics.webhookRequests.inc({ source, outcome }),
          log: o.log,
        });
        const sources = [...(cfg.webhooks.stripe.secrets.length ? ['stripe'] : []), ...Object.keys(cfg.webhooks.sources)];
        o.log.info({ sources }, 'webhook ingress on POST /webhooks/<source>');
      }
      if (o.events ?? cfg.archive.enabled) {
        await registerEventsRoute(app, {
          store: () => {
            store ??= openArchive(archiveUrl, { warn: (m) => o.log.warn(m) }).catch((err: unknown) => {
              store = undefined;
              throw err;
            });
            return store;
          },
          apiToken: cfg.http.apiToken,
          log: o.log,
        });
        const d = describeArchive(archiveUrl);
        if (d.note) o.log.warn({ archive: d.store }, d.note);
        else o.log.info({ archive: d.store }, 'archive on; GET /events serves it');
      }
    },
    async close() {
      const s = store;
      store = undefined;
      if (s) await (await s.catch(() => null))?.close();
    },
  };
}
