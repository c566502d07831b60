// The optional routes of the HTTP port: webhook ingress (when configured) and /events (when the
// archive is on). Shared by the supervisor, the cluster primary and `eventbus ingress`.
import type { FastifyInstance } from 'fastify';
import type { Metrics } from '#metrics/registry.js';
import type { Config } from '../config.js';
import { EventBusError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Publisher } from '../publisher/index.js';
import { registerWebhookRoutes, webhookBodyLimit, webhooksEnabled } from '../publisher/webhooks.js';
import { MemoryDeliveryLedger, type DeliveryLedger } from '../publisher/deliveries.js';
import { describeArchive, openArchive, registerEventsRoute, resolveArchiveUrl, type ArchiveStore } from '../archive/index.js';
import type { ConsoleOptions } from '../console/routes.js';

/** What the console shows, from its host (supervisor, cluster primary, ingress); the rest comes from the config. */
export type ConsoleParts = Omit<ConsoleOptions, 'apiToken' | 'log' | 'store' | 'version'>;

export interface ExtraRoutesOptions {
  config: Readonly<Config>;
  metrics: Pick<Metrics, 'webhookRequests'>;
  log: Logger;
  /** null while the topic is not resolved (webhooks then answer 503 and the sender retries). */
  publisher(): Publisher | null;
  /** Serve /events (default: when archive.enabled). */
  events?: boolean;
  /** The address it listens on, when not http.host (`eventbus ingress --host`). */
  host?: string | undefined;
  /** The console's sources; served when console.enabled (README "Console"). */
  console?: (() => ConsoleParts) | undefined;
}

export interface ExtraRoutes {
  register(app: FastifyInstance): Promise<void>;
  /** Closes the archive store the /events route opened. */
  close(): Promise<void>;
}

/** Whether an address only this machine can reach. */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || /^127(\.\d{1,3}){3}$/.test(h) || /^::ffff:127(\.\d{1,3}){3}$/.test(h);
}

/**
 * The optional routes of one HTTP server. Throws ERR_CONFIG_INVALID, before anything listens, when
 * /events would serve the archive (user data, webhook bodies) on an address others can reach
 * without a bearer token (SPEC "Configuration": http.apiToken).
 */
export function extraRoutes(o: ExtraRoutesOptions): ExtraRoutes {
  const cfg = o.config;
  const servesEvents = o.events ?? cfg.archive.enabled;
  if (servesEvents && cfg.http.apiToken === null && !isLoopbackHost(cfg.http.host)) {
    throw new EventBusError(
      'ERR_CONFIG_INVALID',
      `invalid config: http.apiToken must be set: the archive (archive.enabled) is served on GET /events at http.host ${cfg.http.host}, which is not loopback (set EVENTBUS_API_TOKEN, or http.host 127.0.0.1)`,
    );
  }
  const host = o.host ?? cfg.http.host;
  if (cfg.console.enabled && cfg.http.apiToken === null && !isLoopbackHost(host)) {
    throw new EventBusError(
      'ERR_CONFIG_INVALID',
      `invalid config: http.apiToken must be set: the console (console.enabled) is served on /console at http.host ${host}, which is not loopback (set EVENTBUS_API_TOKEN, or http.host 127.0.0.1)`,
    );
  }
  let store: Promise<ArchiveStore> | undefined;
  const archiveUrl = resolveArchiveUrl(cfg.archive.url);
  const openStore = () => {
    store ??= openArchive(archiveUrl, { warn: (m) => o.log.warn(m) }).catch((err: unknown) => {
      store = undefined;
      throw err;
    });
    return store;
  };
  return {
    async register(app) {
      if (webhooksEnabled(cfg)) {
        await registerWebhookRoutes(app, {
          stripeSecrets: cfg.webhooks.stripe.secrets,
          stripeToleranceSec: cfg.webhooks.stripe.toleranceSec,
          sources: cfg.webhooks.sources,
          deliveries: cfg.archive.enabled ? archiveLedger(openStore) : new MemoryDeliveryLedger(cfg.webhooks.deliveryCacheSize),
          deliveryTtlSec: cfg.webhooks.deliveryTtlSec,
          publisher: o.publisher,
          count: (source, outcome) => o.metrics.webhookRequests.inc({ source, outcome }),
          log: o.log,
          maxBodyBytes: webhookBodyLimit(cfg),
        });
        const sources = [...(cfg.webhooks.stripe.secrets.length ? ['stripe'] : []), ...Object.keys(cfg.webhooks.sources)];
        o.log.info({ sources, deliveries: cfg.archive.enabled ? 'archive' : 'memory' }, 'webhook ingress on POST /webhooks/<source>');
      }
      if (servesEvents) {
        await registerEventsRoute(app, {
          store: openStore,
          apiToken: cfg.http.apiToken,
          log: o.log,
        });
        const d = describeArchive(archiveUrl);
        if (d.note) o.log.warn({ archive: d.store }, d.note);
        else o.log.info({ archive: d.store }, 'archive on; GET /events serves it');
      }
      if (cfg.console.enabled && o.console) {
        const { registerConsole, CONSOLE_VERSION } = await import('../console/routes.js');
        await registerConsole(app, {
          ...o.console(),
          apiToken: cfg.http.apiToken,
          log: o.log,
          store: cfg.archive.enabled ? openStore : null,
          version: CONSOLE_VERSION,
        });
        o.log.info({ token: cfg.http.apiToken !== null }, 'console on /console');
      }
    },
    async close() {
      const s = store;
      store = undefined;
      if (s) await (await s.catch(() => null))?.close();
    },
  };
}

/** The archive store as the delivery ledger, opened on first use (a failed open is tried again). */
function archiveLedger(open: () => Promise<ArchiveStore>): DeliveryLedger {
  return {
    claimDelivery: async (...a) => (await open()).claimDelivery(...a),
    completeDelivery: async (...a) => (await open()).completeDelivery(...a),
    releaseDelivery: async (...a) => (await open()).releaseDelivery(...a),
  };
}
