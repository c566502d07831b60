// Ctrl-C (SIGINT) and SIGTERM during a long CLI operation: the first one asks the operation to stop
// between batches (it then prints what was done and how to resume); a second one ends the process
// at once. Exit status 128 + the signal's number, as shells report it: 130 and 143.

/** Exit status after stopping on a signal. */
export const SIGNAL_EXIT: Readonly<Record<'SIGINT' | 'SIGTERM', number>> = { SIGINT: 130, SIGTERM: 143 };

export interface Interrupt {
  /** Aborted on the first SIGINT or SIGTERM. */
  signal: AbortSignal;
  /** The signal that stopped the operation, or null. */
  received(): 'SIGINT' | 'SIGTERM' | null;
  /** Removes the handlers (the default behaviour comes back). */
  dispose(): void;
}

/** Handles SIGINT and SIGTERM until dispose(); `what` names the operation in the notice on stderr. */
export function onInterrupt(what: string): Interrupt {
  const controller = new AbortController();
  let got: 'SIGINT' | 'SIGTERM' | null = null;
  const handler = (sig: 'SIGINT' | 'SIGTERM') => {
    if (got !== null) {
      process.stderr.write(`eventbus: ${sig} again: stopping at once; the batch in flight may be left copied but not deleted (a duplicate, never a loss)\n`);
      process.exit(SIGNAL_EXIT[sig]);
    }
    got = sig;
    process.stderr.write(`eventbus: ${sig}: stopping ${what} after the current batch (${sig === 'SIGINT' ? 'Ctrl-C' : 'the signal'} again stops at once)\n`);
    controller.abort(new Error(`stopped by ${sig}`));
  };
  const onInt = () => handler('SIGINT');
  const onTerm = () => handler('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  return {
    signal: controller.signal,
    received: () => got,
    dispose() {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
    },
  };
}
