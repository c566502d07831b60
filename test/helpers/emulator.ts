import { randomUUID } from 'node:crypto';
import { startEmulator, type Emulator } from '../../dist/emulator.js';
import { createAwsClients, type AwsClients } from '../../dist/aws.js';

export interface TestEmulator extends Emulator, AwsClients {}

/** Starts fauxqs on 127.0.0.1 with a random port, plus SDK clients pointed at it. Stop it in t.teardown. */
export async function emulator(): Promise<TestEmulator> {
  const emu = await startEmulator({ port: 0 });
  const clients = createAwsClients(emu.aws);
  return {
    ...emu,
    ...clients,
    async stop() {
      clients.sqs.destroy();
      clients.sns.destroy();
      await emu.stop();
    },
  };
}

/** A unique name for a queue or topic of one test. */
export function uniqueName(prefix = 't'): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`;
}

/** Polls `fn` until it returns a truthy value or the deadline passes (then throws with `what`). */
export async function waitFor<T>(what: string, fn: () => T | Promise<T>, timeoutMs = 10_000, intervalMs = 50): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
