import type { Logger } from '../log.js';

/**
 * Wires SIGTERM/SIGINT to a graceful stop and exits 0 when it is done. A second signal exits at
 * once; a stop that overruns the deadline by 5 s exits 1.
 */
export function handleSignals(sup: { stop(reason?: string): Promise<void> }, log: Logger, shutdownTimeoutMs: number, onStopped?: () => Promise<void>): void {
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    log.info({ signal }, 'shutting down');
    const hard = setTimeout(() => {
      log.error({ shutdownTimeoutMs }, 'shutdown overran its deadline; exiting');
      process.exit(1);
    }, shutdownTimeoutMs + 5_000);
    hard.unref();
    void sup
      .stop(signal)
      .then(() => onStopped?.())
      .then(
        () => process.exit(0),
        (err: unknown) => {
          log.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

/** Prints a start failure as one line (the EventBusError message names the key or file) and exits 1. */
export function failStart(err: unknown, log?: Logger): never {
  const e = err as { code?: string; message?: string };
  const line = e?.code ? `eventbus: ${e.message} [${e.code}]` : `eventbus: ${e?.message ?? String(err)}`;
  if (log && !e?.code) log.error({ err }, 'start failed');
  process.stderr.write(`${line}\n`);
  process.exit(1);
}
