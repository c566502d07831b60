// What the operator-CLI tests share: an emulator, two handlers (`orders`, `mail`) with their
// topology provisioned on a unique prefix, and a config file naming them for the CLI.
import type { Test } from 'tap';
import { loadHandlers } from '../../dist/handlers.js';
import { provision } from '../../dist/publisher/provision.js';
import { emulator, uniqueName, type TestEmulator } from './emulator.js';
import { writeConfig, writeHandlers } from './process.js';

export interface OpsWorld {
  emu: TestEmulator;
  prefix: string;
  /** The config file for `--config`. */
  config: string;
  /** A handler queue's URL, or its DLQ's. */
  url(queue: string, dlq?: boolean): string;
}

/** Starts the emulator (stopped at the test's end) and provisions `orders` and `mail` (USER_CREATED). */
export async function opsWorld(t: Test, name: string): Promise<OpsWorld> {
  const emu = await emulator();
  t.teardown(() => emu.stop());
  const prefix = `${uniqueName(name)}-`;
  const topic = uniqueName('topic');
  const handlersDir = writeHandlers([{ queue: 'orders' }, { queue: 'mail', events: ['USER_CREATED'] }]);
  const config = writeConfig({ endpoint: emu.endpoint, region: 'us-east-1', queuePrefix: prefix, topic, handlersDir });
  const handlers = await loadHandlers({ handlersDir, queuePrefix: prefix, concurrency: 10, queues: {} });
  const topo = await provision(emu, { topic, handlers });
  return {
    emu,
    prefix,
    config,
    url(queue, dlq = false) {
      const q = topo.queues.find((x) => x.queue === queue);
      if (!q) throw new Error(`no queue ${queue}`);
      return dlq ? q.dlqUrl : q.url;
    },
  };
}
