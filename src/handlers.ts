import { readdir, stat } from 'node:fs/promises';
import { basename, extname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Config } from './config.js';
import { EventBusError } from './errors.js';
import { QUEUE_NAME_RE } from './aws.js';
import { checkSchemas } from './schema.js';
import { nearest } from './suggest.js';
import { describeLoadError } from './handler-load-error.js';
import type { AnyHandlerDefinition } from './types.js';

/** Defaults of a handler definition (SPEC "Handlers"). */
export const HANDLER_DEFAULTS = {
  visibilityTimeoutSec: 30,
  timeoutMs: 60_000,
  maxReceiveCount: 5,
} as const;

/** How long a handler may take to settle after its signal aborted before it counts as `timeout`. */
export const HANDLER_GRACE_MS = 2_000;

/** SNS filter policies allow at most 150 value combinations. */
export const MAX_FILTER_VALUES = 150;
const DLQ_SUFFIX = '-dlq';
/** SQS: a FIFO queue's name ends with this (its DLQ must be FIFO too). */
export const FIFO_SUFFIX = '.fifo';
/** SPEC "Slots": one receive batch. */
export const DEFAULT_PREFETCH = 10;

/** A handler as the supervisor uses it: declaration merged with config overrides, units in names. */
export interface ResolvedHandler {
  file: string;
  /** Logical queue name: logs, metrics, ctx.queue. */
  queue: string;
  /** SQS queue name: `<queuePrefix><queue>`. */
  queueName: string;
  dlqName: string;
  /** null = every event. */
  events: string[] | null;
  concurrency: number;
  /** Received messages the queue may hold waiting for a free slot; at most `concurrency`. */
  prefetch: number;
  visibilityTimeoutSec: number;
  timeoutMs: number;
  maxReceiveCount: number;
  /** A FIFO queue: one message of a group at a time, in order (prefetch off). */
  ordered: boolean;
  /** Standard queues: messages of one group running at once on this host; null = no limit. */
  groupConcurrency: number | null;
  /** The event types its `ctx.publish` declares (`publishes`); null = undeclared. */
  publishes: string[] | null;
}

/**
 * Every key a handler definition may have (SPEC "Handlers"). A test holds it equal to
 * `keyof HandlerDefinition`; anything else in a definition fails the start (a typo such as
 * `maxRecieveCount` would otherwise be ignored and its default used).
 */
export const DEFINITION_KEYS = [
  'queue',
  'events',
  'publishes',
  'concurrency',
  'visibilityTimeout',
  'timeoutMs',
  'maxReceiveCount',
  'ordered',
  'groupConcurrency',
  'setup',
  'handle',
  'teardown',
] as const;

/** Test files compiled beside the handlers (`email.test.ts` → `email.test.js`) are not handlers. */
const TEST_FILE_RE = /\.(test|spec)\.m?js$/;
/** TypeScript sources that would be handlers once compiled (not declarations, not tests). */
const TS_SOURCE_RE = /^(?!.*\.d\.[mc]?ts$)(?!.*\.(test|spec)\.[mc]?ts$).*\.[mc]?ts$/;

/**
 * Lists handler files: top-level .js/.mjs, not starting with `_`, not .d.ts or .map, not
 * `*.test.js`/`*.spec.js`. A folder with TypeScript handler sources and nothing compiled fails
 * with ERR_HANDLERS_DIR saying how to build; an empty folder lists nothing.
 */
export async function listHandlerFiles(dir: string): Promise<string[]> {
  const abs = resolve(dir);
  let names: string[];
  try {
    names = await readdir(abs);
  } catch (err) {
    throw new EventBusError('ERR_HANDLERS_DIR', `handlers folder ${abs} cannot be read (did you run npm run build?)`, { cause: err });
  }
  const files: string[] = [];
  const sources: string[] = [];
  for (const name of names.sort()) {
    if (name.startsWith('_') || name.startsWith('.')) continue;
    if (name.endsWith('.d.ts') || name.endsWith('.map')) continue;
    if (TS_SOURCE_RE.test(name)) sources.push(name);
    const ext = extname(name);
    if (ext !== '.js' && ext !== '.mjs') continue;
    if (TEST_FILE_RE.test(name)) continue;
    const full = join(abs, name);
    if ((await stat(full)).isFile()) files.push(full);
  }
  if (files.length === 0 && sources.length > 0) throw uncompiledFolder(abs, sources);
  return files;
}

function uncompiledFolder(abs: string, sources: string[]): EventBusError {
  const shown = sources.length > 3 ? `${sources.slice(0, 3).join(', ')}, ...` : sources.join(', ');
  return new EventBusError(
    'ERR_HANDLERS_DIR',
    `handlers folder ${abs} holds TypeScript sources (${shown}) that are not compiled, and no .js/.mjs handler: ` +
      'Node runs the compiled JavaScript. Build them (npm run build, or tsc with an outDir, e.g. dist/handlers) ' +
      'and point handlersDir (EVENTBUS_HANDLERS_DIR) at the compiled folder',
  );
}

/**
 * Fails naming the file and every key that is not a definition key, with the nearest valid key
 * when one is close (`unknown key "maxRecieveCount" (did you mean "maxReceiveCount"?)`).
 */
export function checkDefinitionKeys(file: string, def: object): void {
  const valid: readonly string[] = DEFINITION_KEYS;
  const unknown = Object.keys(def).filter((k) => !valid.includes(k));
  if (unknown.length === 0) return;
  const each = unknown.map((k) => {
    const near = nearest(k, DEFINITION_KEYS);
    return `unknown key "${k}"${near ? ` (did you mean "${near}"?)` : ''}`;
  });
  const anyNear = each.some((e) => e.includes('did you mean'));
  throw new EventBusError(
    'ERR_HANDLER_INVALID',
    `handler ${file}: ${each.join('; ')}${anyNear ? '' : ` (valid keys: ${DEFINITION_KEYS.join(', ')})`}`,
  );
}

/** Imports a handler module and returns its definition, or throws naming the file. */
export async function importHandler(file: string): Promise<AnyHandlerDefinition> {
  let mod: { default?: unknown };
  try {
    mod = (await import(pathToFileURL(file).href)) as { default?: unknown };
  } catch (err) {
    throw new EventBusError('ERR_HANDLER_INVALID', `handler ${file} failed to load: ${await describeLoadError(file, err)}`, { cause: err });
  }
  const def = mod.default as AnyHandlerDefinition | undefined;
  if (def && typeof def === 'object') checkDefinitionKeys(file, def);
  if (!def || typeof def !== 'object' || typeof def.handle !== 'function') {
    throw new EventBusError('ERR_HANDLER_INVALID', `handler ${file} must default-export a definition with a handle(event, ctx) function`);
  }
  return def;
}

/**
 * A handler that ships with eventbus (the archive), handed to `loadHandlers` by the composition
 * root (`builtInHandlers` in src/built-ins.ts): the loader knows no built-in by name.
 */
export interface BuiltInHandler {
  /** The module the worker threads load. */
  file: string;
  /** Its declaration (the main thread never loads the module itself). */
  definition: AnyHandlerDefinition;
  /** What turned it on, for the error when a user's handler takes its queue (e.g. `archive.enabled`). */
  enabledBy: string;
}

/**
 * Loads every handler of the folder, then the built-in ones, applies `queues.<name>` overrides,
 * validates, and checks queue names are unique.
 */
export async function loadHandlers(
  cfg: Pick<Config, 'handlersDir' | 'queuePrefix' | 'concurrency' | 'queues'> & Partial<Pick<Config, 'prefetch'>>,
  builtIns: readonly BuiltInHandler[] = [],
  /** These handler files instead of the folder's (the testing kit's `handlerFiles`). */
  only?: readonly string[],
): Promise<ResolvedHandler[]> {
  const files = only ?? (await listHandlerFiles(cfg.handlersDir));
  const out: ResolvedHandler[] = [];
  const byQueue = new Map<string, string>();
  for (const file of files) {
    const def = await importHandler(file);
    const h = resolveHandler(file, def, cfg);
    const other = byQueue.get(h.queue);
    if (other) {
      throw new EventBusError('ERR_HANDLER_DUPLICATE_QUEUE', `handlers ${other} and ${file} both use queue "${h.queue}"`);
    }
    byQueue.set(h.queue, file);
    out.push(h);
  }
  for (const b of builtIns) {
    const h = resolveHandler(b.file, b.definition, cfg);
    const other = byQueue.get(h.queue);
    if (other) throw new EventBusError('ERR_HANDLER_DUPLICATE_QUEUE', `handler ${other} uses queue "${h.queue}", which a built-in handler owns (${b.enabledBy})`);
    byQueue.set(h.queue, h.file);
    out.push(h);
  }
  const unknown = Object.keys(cfg.queues).filter((q) => !byQueue.has(q));
  if (unknown.length) {
    throw new EventBusError('ERR_CONFIG_INVALID', `invalid config: queues.${unknown[0]} names no handler (handlers: ${[...byQueue.keys()].join(', ') || 'none'})`);
  }
  return out;
}

/** Validates one definition and merges defaults and overrides. Pure apart from the file name in errors. */
export function resolveHandler(
  file: string,
  def: AnyHandlerDefinition,
  cfg: Pick<Config, 'queuePrefix' | 'concurrency' | 'queues'> & Partial<Pick<Config, 'prefetch'>>,
): ResolvedHandler {
  checkDefinitionKeys(file, def);
  const bad = (why: string) => new EventBusError('ERR_HANDLER_INVALID', `handler ${file}: ${why}`);
  const queue = def.queue ?? basename(file).replace(/\.(m?js)$/, '');
  if (typeof queue !== 'string' || queue === '') throw bad('queue must be a non-empty string');
  if (/\.fifo$/i.test(queue)) {
    throw new EventBusError('ERR_FIFO_UNSUPPORTED', `handler ${file}: a queue is not named "${queue}": declare ordered: true and the queue becomes ${queue.replace(/\.fifo$/i, '')}.fifo`);
  }
  if (def.ordered !== undefined && typeof def.ordered !== 'boolean') throw bad('ordered must be true or false');
  const ordered = def.ordered === true;
  const suffix = ordered ? FIFO_SUFFIX : '';
  const queueName = `${cfg.queuePrefix}${queue}${suffix}`;
  const dlqName = `${cfg.queuePrefix}${queue}${DLQ_SUFFIX}${suffix}`;
  if (!QUEUE_NAME_RE.test(dlqName.slice(0, dlqName.length - suffix.length)) || dlqName.length > 80) {
    throw bad(`queue name "${dlqName}" is not a valid SQS name (1-80 of A-Z a-z 0-9 _ -, including prefix and "-dlq"${ordered ? ' and ".fifo"' : ''})`);
  }
  let events: string[] | null = null;
  if (def.events !== undefined) {
    let types: readonly unknown[];
    if (Array.isArray(def.events)) types = def.events;
    else if (typeof def.events === 'object' && def.events !== null) {
      // The schema map form: the filter is its keys, and each value must be a Standard Schema.
      checkSchemas(`handler ${file}`, 'events', def.events as Record<string, unknown>);
      types = Object.keys(def.events);
    } else types = [];
    if (types.length === 0 || types.some((e) => typeof e !== 'string' || e === '')) {
      throw bad('events must be a non-empty array of event type strings, or a map of event type to a Standard Schema validator (omit it for every event)');
    }
    if (types.length > MAX_FILTER_VALUES) throw bad(`events lists ${types.length} types; SNS filter policies allow ${MAX_FILTER_VALUES}`);
    events = [...new Set(types as string[])].sort();
  }
  let publishes: string[] | null = null;
  if (def.publishes !== undefined) {
    publishes = Array.isArray(def.publishes) ? [...(def.publishes as string[])] : Object.keys(def.publishes ?? {});
    if (Array.isArray(def.publishes)) {
      if (def.publishes.some((e) => typeof e !== 'string' || e === '')) throw bad('publishes must be an array of event type strings, or a map of event type to a Standard Schema validator');
    } else if (typeof def.publishes === 'object' && def.publishes !== null) {
      checkSchemas(`handler ${file}`, 'publishes', def.publishes as Record<string, unknown>);
    } else {
      throw bad('publishes must be an array of event type strings, or a map of event type to a Standard Schema validator');
    }
  }
  const o = cfg.queues[queue] ?? {};
  const int = (name: string, v: unknown, min: number, max: number): number => {
    if (!Number.isInteger(v) || (v as number) < min || (v as number) > max) throw bad(`${name} must be an integer from ${min} to ${max}`);
    return v as number;
  };
  const concurrency = int('concurrency', o.concurrency ?? def.concurrency ?? cfg.concurrency, 1, 100_000);
  let groupConcurrency: number | null = null;
  const perGroup = o.groupConcurrency ?? def.groupConcurrency;
  if (perGroup !== undefined) {
    if (ordered) {
      const where = o.groupConcurrency !== undefined ? `config queues.${queue}.groupConcurrency` : 'groupConcurrency';
      throw bad(`${where} is for standard queues: an ordered handler runs one message of a group at a time`);
    }
    groupConcurrency = int('groupConcurrency', perGroup, 1, 100_000);
  }
  return {
    file,
    queue,
    queueName,
    dlqName,
    events,
    concurrency,
    // Ordered: no prefetch. A group's messages wait in the group gate instead, and a message
    // prefetched while its group runs would only wait there too.
    prefetch: ordered ? 0 : Math.min(concurrency, int('prefetch', o.prefetch ?? cfg.prefetch ?? DEFAULT_PREFETCH, 0, 100_000)),
    visibilityTimeoutSec: int('visibilityTimeout', o.visibilityTimeout ?? def.visibilityTimeout ?? HANDLER_DEFAULTS.visibilityTimeoutSec, 1, 43_200),
    timeoutMs: int('timeoutMs', o.timeoutMs ?? def.timeoutMs ?? HANDLER_DEFAULTS.timeoutMs, 1, 43_200_000),
    maxReceiveCount: int('maxReceiveCount', o.maxReceiveCount ?? def.maxReceiveCount ?? HANDLER_DEFAULTS.maxReceiveCount, 1, 1000),
    ordered,
    groupConcurrency,
    publishes,
  };
}
