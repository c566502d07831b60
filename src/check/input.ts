// What the rules of `eventbus check` read: the handlers (resolved, with what each declares it
// publishes), the config, the publishers manifests and the built-in publishers. Building it makes
// no AWS call; a handler that does not load is a finding, not the end of the check.
import { basename } from 'node:path';
import type { Config } from '../config.js';
import { EventBusError } from '../errors.js';
import { importHandler, listHandlerFiles, resolveHandler, type BuiltInHandler, type ResolvedHandler } from '../handlers.js';
import { filterPolicyFor } from '../publisher/provision.js';
import { webhookEventType, STRIPE_EVENT_TYPE } from '../publisher/webhooks.js';
import { TASK_WORKER_FAILED } from '../supervisor/settle/failure-events.js';
import type { AnyHandlerDefinition } from '../types.js';
import type { Finding } from './findings.js';

/** A handler as the rules see it. */
export interface CheckHandler extends ResolvedHandler {
  /** The types its `ctx.publish` may send (`publishes`); null = not declared (any type). */
  publishes: string[] | null;
  /** Its subscription's filter policy (null = every event), as provisioning would set it. */
  filterPolicy: Record<string, unknown[]> | null;
  /** Set for a handler that ships with eventbus (the archive): what turned it on. */
  builtIn?: string;
}

/** One event type of a publishers manifest. null = not given. */
export interface ManifestEvent {
  ratePerSec: number | null;
  maxBytes: number | null;
  attributes: string[];
}

/** A publishers manifest (`--publishes FILE`): the types a service outside the handlers publishes. */
export interface PublisherManifest {
  /** The `service` it names, else the file name. */
  name: string;
  events: Record<string, ManifestEvent>;
}

/** A publisher of a type: a handler, a manifest or a built-in publisher of eventbus. */
export interface Publisher {
  /** e.g. `handler email`, `users-api (users.json)`, `failureEvents.enabled`. */
  by: string;
  kind: 'handler' | 'manifest' | 'built-in';
  ratePerSec: number | null;
  maxBytes: number | null;
  attributes: string[];
}

/** Everything the rules read. */
export interface CheckInput {
  handlers: CheckHandler[];
  config: Readonly<Config>;
  manifests: PublisherManifest[];
  /** Known publishers per event type. */
  publishers: Map<string, Publisher[]>;
  /** AWS region (config `region`, else AWS_REGION); null = not known. */
  region: string | null;
  /**
   * Events larger than this go through a claim check (issue 18's S3 payloads) instead of SNS; null =
   * no claim check, so the SNS limit is the limit.
   */
  claimCheckBytes: number | null;
}

const MANIFEST_KEYS = ['service', 'events'];
const EVENT_KEYS = ['ratePerSec', 'maxBytes', 'attributes'];

/**
 * Parses a publishers manifest: `["TYPE", ...]`, or `{ "service"?: "name", "events": ["TYPE", ...]
 * | { "TYPE": { "ratePerSec"?: n, "maxBytes"?: n, "attributes"?: ["name", ...] } } }`. Throws
 * ERR_USAGE naming the file and the key on anything else.
 */
export function parseManifest(file: string, value: unknown): PublisherManifest {
  const bad = (why: string) => new EventBusError('ERR_USAGE', `publishers manifest ${file}: ${why}`);
  let name = basename(file);
  let events: unknown = value;
  if (!Array.isArray(value)) {
    if (typeof value !== 'object' || value === null) throw bad('must be a list of event types or an object with "events"');
    const o = value as Record<string, unknown>;
    for (const k of Object.keys(o)) if (!MANIFEST_KEYS.includes(k)) throw bad(`unknown key "${k}" (allowed: ${MANIFEST_KEYS.join(', ')})`);
    if (o.service !== undefined) {
      if (typeof o.service !== 'string' || o.service === '') throw bad('"service" must be a non-empty string');
      name = `${o.service} (${basename(file)})`;
    }
    if (o.events === undefined) throw bad('"events" is missing');
    events = o.events;
  }
  const out: Record<string, ManifestEvent> = {};
  if (Array.isArray(events)) {
    for (const t of events) {
      if (typeof t !== 'string' || t === '') throw bad('"events" must hold non-empty event type strings');
      out[t] = { ratePerSec: null, maxBytes: null, attributes: [] };
    }
    return { name, events: out };
  }
  if (typeof events !== 'object' || events === null) throw bad('"events" must be a list of types or an object of type -> { ratePerSec, maxBytes, attributes }');
  for (const [type, spec] of Object.entries(events as Record<string, unknown>)) {
    const at = `events.${type}`;
    if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) throw bad(`${at} must be an object`);
    const s = spec as Record<string, unknown>;
    for (const k of Object.keys(s)) if (!EVENT_KEYS.includes(k)) throw bad(`unknown key "${at}.${k}" (allowed: ${EVENT_KEYS.join(', ')})`);
    const num = (k: string): number | null => {
      const v = s[k];
      if (v === undefined) return null;
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) throw bad(`${at}.${k} must be a number >= 0`);
      return v;
    };
    const attributes = s.attributes ?? [];
    if (!Array.isArray(attributes) || attributes.some((a) => typeof a !== 'string' || a === '')) throw bad(`${at}.attributes must be a list of attribute names`);
    out[type] = { ratePerSec: num('ratePerSec'), maxBytes: num('maxBytes'), attributes: attributes as string[] };
  }
  return { name, events: out };
}

/** The types eventbus itself publishes under this config: failure events and webhook ingress. */
export function builtInPublishers(cfg: Pick<Config, 'failureEvents' | 'webhooks'>): Array<{ type: string; by: string }> {
  const out: Array<{ type: string; by: string }> = [];
  if (cfg.failureEvents.enabled) out.push({ type: TASK_WORKER_FAILED, by: 'failureEvents.enabled' });
  if (cfg.webhooks.stripe.secrets.length > 0) out.push({ type: STRIPE_EVENT_TYPE, by: 'webhooks.stripe' });
  for (const name of Object.keys(cfg.webhooks.sources)) out.push({ type: webhookEventType(name), by: `webhooks.sources.${name}` });
  return out;
}

/** The types a definition's `publishes` declares (a list, or a schema map's keys); null = undeclared. */
export function declaredPublishes(def: Pick<AnyHandlerDefinition, 'publishes'>): string[] | null {
  if (def.publishes === undefined) return null;
  return [...new Set(Array.isArray(def.publishes) ? (def.publishes as string[]) : Object.keys(def.publishes))].sort();
}

/** A resolved handler and its definition as a CheckHandler. */
export function toCheckHandler(h: ResolvedHandler, def: Pick<AnyHandlerDefinition, 'publishes'>, builtIn?: string): CheckHandler {
  return { ...h, publishes: declaredPublishes(def), filterPolicy: filterPolicyFor(h.events), ...(builtIn ? { builtIn } : {}) };
}

/** Every publisher of every type: the handlers' declarations, the manifests and the built-ins. */
export function collectPublishers(handlers: readonly CheckHandler[], manifests: readonly PublisherManifest[], cfg: Pick<Config, 'failureEvents' | 'webhooks'>): Map<string, Publisher[]> {
  const out = new Map<string, Publisher[]>();
  const add = (type: string, p: Publisher) => out.set(type, [...(out.get(type) ?? []), p]);
  for (const h of handlers) for (const t of h.publishes ?? []) add(t, { by: `handler ${h.queue}`, kind: 'handler', ratePerSec: null, maxBytes: null, attributes: [] });
  for (const m of manifests) for (const [t, e] of Object.entries(m.events)) add(t, { by: m.name, kind: 'manifest', ...e });
  for (const b of builtInPublishers(cfg)) add(b.type, { by: b.by, kind: 'built-in', ratePerSec: null, maxBytes: null, attributes: [] });
  return out;
}

/**
 * Loads the handlers as the supervisor would (folder, then built-ins, `queues.<name>` overrides),
 * but reports a handler that does not load, or a queue taken twice, as a finding and goes on.
 */
export async function loadForCheck(
  cfg: Readonly<Config>,
  builtIns: readonly BuiltInHandler[],
): Promise<{ handlers: CheckHandler[]; findings: Finding[] }> {
  const findings: Finding[] = [];
  const handlers: CheckHandler[] = [];
  const byQueue = new Map<string, string>();
  const resolveCfg = { ...cfg, concurrency: cfg.hostConcurrency };
  let files: string[] = [];
  try {
    files = await listHandlerFiles(cfg.handlersDir);
  } catch (err) {
    findings.push({ level: 'error', rule: 'handler-invalid', message: (err as Error).message });
  }
  const entries: Array<{ file: string; def: () => Promise<AnyHandlerDefinition>; builtIn?: string }> = [
    ...files.map((file) => ({ file, def: () => importHandler(file) })),
    ...builtIns.map((b) => ({ file: b.file, def: async () => b.definition, builtIn: b.enabledBy })),
  ];
  for (const e of entries) {
    try {
      const def = await e.def();
      const h = resolveHandler(e.file, def, resolveCfg);
      const other = byQueue.get(h.queue);
      if (other) {
        findings.push({
          level: 'error',
          rule: 'handler-invalid',
          queue: h.queue,
          message: e.builtIn ? `handler ${other} uses queue "${h.queue}", which a built-in handler owns (${e.builtIn})` : `handlers ${other} and ${e.file} both use queue "${h.queue}"`,
        });
        continue;
      }
      byQueue.set(h.queue, e.file);
      handlers.push(toCheckHandler(h, def, e.builtIn));
    } catch (err) {
      findings.push({ level: 'error', rule: 'handler-invalid', message: (err as Error).message });
    }
  }
  const unknown = Object.keys(cfg.queues).filter((q) => !byQueue.has(q));
  for (const q of unknown) findings.push({ level: 'error', rule: 'handler-invalid', queue: q, message: `config queues.${q} names no handler (handlers: ${[...byQueue.keys()].join(', ') || 'none'})` });
  if (files.length === 0 && builtIns.length === 0 && findings.length === 0) {
    findings.push({ level: 'error', rule: 'handler-invalid', message: `no handlers found in ${cfg.handlersDir} (top-level .js/.mjs files with a default export)` });
  }
  return { handlers, findings };
}
