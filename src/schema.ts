// Standard Schema v1 (https://standardschema.dev): the one interface zod (>= 3.24), valibot and
// arktype implement. eventbus depends on the spec's types, never on one validation library.
import type { StandardSchemaV1 } from '@standard-schema/spec';
import { EventBusError, type ErrorCode } from './errors.js';

export type { StandardSchemaV1 };

/** Event type -> validator of its data. */
export type EventSchemas = Record<string, StandardSchemaV1>;

/** Whether a value implements Standard Schema v1 (a `~standard` object, version 1, a validate function). */
export function isStandardSchema(v: unknown): v is StandardSchemaV1 {
  if ((typeof v !== 'object' && typeof v !== 'function') || v === null) return false;
  const std = (v as { '~standard'?: { version?: unknown; validate?: unknown } })['~standard'];
  return typeof std === 'object' && std !== null && std.version === 1 && typeof std.validate === 'function';
}

/** A validation that failed: the issues as `path: message` lines (at most a few, for logs and reasons). */
export class ValidationFailure {
  constructor(
    readonly type: string,
    readonly issues: ReadonlyArray<StandardSchemaV1.Issue>,
  ) {}

  /** The first issues, `path: message`, joined: what a reason, a log line or an error message shows. */
  describe(max = 3): string {
    const shown = this.issues.slice(0, max).map(formatIssue);
    const more = this.issues.length > max ? ` (and ${this.issues.length - max} more)` : '';
    return `${shown.join('; ')}${more}`;
  }

  /** The issues as plain data ({path, message}), for a log line. */
  plain(max = 20): Array<{ path: string; message: string }> {
    return this.issues.slice(0, max).map((i) => ({ path: issuePath(i), message: String(i.message) }));
  }
}

/** `a.b[0]` style, `(root)` for an issue about the whole value. */
export function issuePath(issue: StandardSchemaV1.Issue): string {
  if (!issue.path || issue.path.length === 0) return '(root)';
  let out = '';
  for (const seg of issue.path) {
    const key = typeof seg === 'object' && seg !== null ? (seg as StandardSchemaV1.PathSegment).key : seg;
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out;
}

function formatIssue(i: StandardSchemaV1.Issue): string {
  return `${issuePath(i)}: ${String(i.message)}`;
}

/**
 * Validates `data` against a schema: the validated (maybe transformed) value, or the failure. A
 * schema that throws rejects (that is the schema's bug, not bad data). Synchronous validators give
 * a synchronous answer, so the common case costs no extra turn of the event loop.
 */
export function validate(
  type: string,
  schema: StandardSchemaV1,
  data: unknown,
): { value: unknown } | ValidationFailure | Promise<{ value: unknown } | ValidationFailure> {
  const r = schema['~standard'].validate(data);
  if (r instanceof Promise) return r.then((x) => settle(type, x));
  return settle(type, r);
}

function settle(type: string, r: StandardSchemaV1.Result<unknown>): { value: unknown } | ValidationFailure {
  if (r.issues) return new ValidationFailure(type, r.issues);
  return { value: r.value };
}

/**
 * Checks a map of schemas (a handler's `events` or `publishes`, a publisher's `schemas`): every
 * value a Standard Schema. `where` names the owner in the error (a handler file, `createPublisher`).
 */
export function checkSchemas(where: string, key: string, map: Record<string, unknown>, code: ErrorCode = 'ERR_HANDLER_INVALID'): void {
  for (const [type, schema] of Object.entries(map)) {
    if (type === '') throw new EventBusError(code, `${where}: ${key} has an empty event type`);
    if (!isStandardSchema(schema)) {
      throw new EventBusError(
        code,
        `${where}: ${key}.${type} is not a Standard Schema validator (zod >= 3.24, valibot >= 1, arktype >= 2 implement it; got ${describeValue(schema)})`,
      );
    }
  }
}

function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return `an object with keys ${Object.keys(v).slice(0, 5).join(', ') || '(none)'}`;
  return typeof v;
}

/**
 * Validates an event before it is published: ERR_EVENT_INVALID naming the type and the first
 * issues, before any call. Resolves to nothing when valid (the data is published as given).
 */
export async function validateForPublish(type: string, schema: StandardSchemaV1 | undefined, data: unknown, who: string): Promise<void> {
  if (!schema) return;
  const r = await validate(type, schema, data);
  if (r instanceof ValidationFailure) {
    throw new EventBusError('ERR_EVENT_INVALID', `${who}: event ${type} is invalid: ${r.describe()}`);
  }
}
