// `eventbus ingress`: the webhook routes on their own HTTP server (without a supervisor).
import type { Command } from 'commander';
import type { AddressInfo } from 'node:net';
import { createMetrics } from '#metrics/registry.js';
import { EventBusError } from '../errors.js';
import { createLogger } from '../log.js';
import { createPublisher } from '../publisher/index.js';
import { lazyPayloadStore, payloadSettingsOf, s3SettingsOf } from '../payloads/index.js';
import { webhooksEnabled } from '../publisher/webhooks.js';
import { extraRoutes } from '../http/routes.js';
import { createHttpApp } from '../http/server.js';
import { UsageError, commandContext, type CommonOptions } from './common.js';
import { builtInHandlers } from '../built-ins.js';
import { loadHandlers, type ResolvedHandler } from '../handlers.js';
import { consoleDlq, lazyDlqRefs } from '../console/dlq.js';
import type { ConsoleQueue } from '../console/sampler.js';

export function registerIngress(program: Command, common: (cmd: Command) => Command): void {
  common(
    program
      .command('ingress')
      .description('serve only the webhook ingress (POST /webhooks/stripe, /webhooks/<source>), plus /healthz and /metrics, and with console.enabled the console\'s dead letters and events (/console)')
      .option('--host <host>', 'listen address (default: config http.host)')
      .option('--port <port>', 'listen port (default: config http.port)'),
  ).action(async (o: CommonOptions & { host?: string; port?: string }) => {
    const port = o.port === undefined ? undefined : Number(o.port);
    if (port !== undefined && (!Number.isInteger(port) || port < 0 || port > 65535)) throw new UsageError(`--port must be a port number, got "${o.port}"`);
    const ctx = commandContext(o);
    const cfg = ctx.config;
    if (!webhooksEnabled(cfg) && !cfg.console.enabled) {
      throw new EventBusError(
        'ERR_CONFIG_INVALID',
        'no webhook configured: set webhooks.stripe.secrets (EVENTBUS_STRIPE_WEBHOOK_SECRETS or EVENTBUS_STRIPE_WEBHOOK_SECRETS_FILE) or webhooks.sources (or console.enabled for the console alone)',
      );
    }
    const log = createLogger({ level: cfg.logLevel, pretty: process.env.EVENTBUS_LOG_FORMAT !== 'json' && process.stdout.isTTY === true });
    const metrics = createMetrics();
    const clients = ctx.clients();
    const settings = payloadSettingsOf(cfg);
    const publisher = createPublisher({
      sns: clients.sns,
      topic: cfg.topic,
      source: cfg.source,
      onPublished: (type, n) => metrics.published.inc({ event_type: type }, n),
      payloads: settings
        ? { ...settings, store: lazyPayloadStore(s3SettingsOf(ctx.aws, cfg)), onOffloaded: (type) => metrics.payloadsOffloaded.inc({ event_type: type ?? 'none' }) }
        : null,
    });
    // The console without a supervisor: its dead letters and the archive (no live overview, no failures).
    let handlers: ResolvedHandler[] = [];
    if (cfg.console.enabled) {
      try {
        handlers = await loadHandlers(cfg, builtInHandlers(cfg));
      } catch (err) {
        log.warn({ err }, 'console: handlers not loaded, so no queue is listed (handlersDir)');
      }
    }
    const queues = (): ConsoleQueue[] => handlers.map((h) => ({ queue: h.queue, events: h.events ?? null, dlq: `${h.queue}-dlq`, dlqName: h.dlqName, cap: h.concurrency, ordered: h.ordered }));
    const routes = extraRoutes({
      config: cfg,
      metrics,
      log,
      publisher: () => publisher,
      events: false,
      host: o.host ?? cfg.http.host,
      console: () => ({
        role: 'ingress',
        processes: 1,
        queues,
        sampler: null,
        failures: null,
        dlq: consoleDlq({ sqs: () => clients.sqs, queues: lazyDlqRefs(() => clients.sqs, () => handlers), log }),
        publish: null,
      }),
    });
    const app = createHttpApp();
    app.get('/healthz', async () => ({ status: 'ok' }));
    app.get('/metrics', async (_req, reply) => {
      reply.header('content-type', metrics.registry.contentType);
      return metrics.registry.metrics();
    });
    await routes.register(app);
    await app.listen({ host: o.host ?? cfg.http.host, port: port ?? cfg.http.port });
    const addr = app.server.address() as AddressInfo;
    log.info({ host: addr.address, port: addr.port, topic: cfg.topic }, 'ingress listening');
    process.stdout.write(`eventbus ingress listening on http://${addr.address}:${addr.port}\n`);
    await new Promise<void>((resolve) => {
      let stopping = false;
      const stop = () => {
        if (stopping) process.exit(1);
        stopping = true;
        void app.close().finally(() => {
          clients.sns.destroy();
          clients.sqs.destroy();
          resolve();
        });
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
  });
}
