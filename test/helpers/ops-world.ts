// What the operator-CLI tests share: an emulator, two handlers (`orders`, `mail`) with their
// topology provisioned on a unique prefix, and a config file naming them for the CLI.
import type { Test } from 'tap';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openArchive } from '../../dist/archive/index.js';
import type { CloudEvent } from '../../dist/types.js';
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

/**
 * An archive (a SQLite file in a temp folder, removed at the test's end) holding `events`, and a
 * config file like the world's with `archive.url` pointing at it. Returns that config's path.
 */
export async function withArchive(t: Test, w: OpsWorld, events: CloudEvent[]): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'eventbus-archive-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const url = join(dir, 'archive.sqlite');
  const config = join(dir, 'config.json');
  writeFileSync(config, JSON.stringify({ ...(JSON.parse(readFileSync(w.config, 'utf8')) as object), archive: { url } }));
  const store = await openArchive(url);
  for (const e of events) await store.put(e);
  await store.close();
  return config;
}
