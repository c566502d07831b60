// How a thread runs its handlers: setup and teardown hooks, and a task's messages from decode
// through schema validation and `handle` to their outcomes. Free of the thread itself (workerData,
// the port), so the testing kit's runHandler runs a message exactly as a worker thread does.
import { EventBusError, describeError, errorSummary, isNonRetryable, toErrorInfo, type ErrorInfo } from '../errors.js';
import type { Logger } from '../log.js';
import { decodeMessage, derivedEventId, findPointer, pointerUri, type PayloadPointer } from '../event/index.js';
import { ValidationFailure, validate, validateForPublish, type EventSchemas, type StandardSchemaV1 } from '../schema.js';
import type { AnyHandlerDefinition, CloudEvent, EventOptions, HandlerContext } from '../types.js';
import type { ItemOutput, ItemResults, PayloadFetch, TaskInput, TaskItem, TaskOutput } from './protocol.js';
import type { RunTable } from './run-table.js';
import type { Span } from '@opentelemetry/api';
import { endProcessSpan, messageContext, recordAbort, startProcessSpan, traceExtensions, tracer, withSpan } from '../telemetry/index.js';

/** What the runner needs from where it runs (a worker thread, or the testing kit in-process). */
export interface RunnerEnv {
  log: Logger;
  table: RunTable;
  threadId: number;
  /** After a handler's signal aborted, how long it may take to settle before the result is `timeout`. */
  graceMs: number;
  /** Outcomes ready while the rest of their task still runs. */
  sendOutcomes(taskId: number, results: ItemResults): void;
  /** Sees every value a handler (or its setup) threw before it becomes data (the testing kit keeps it). */
  onThrown?(err: unknown): void;
  /** ctx.publish, once the event is built from the handler's call (id derived, data validated). */
  publish(topicArn: string | null, type: string, data: unknown, opts: EventOptions): Promise<CloudEvent>;
  /** Reads an offloaded payload from S3 (a claim check); absent: such messages are an `error`. */
  fetchPayload?(bucket: string, key: string): Promise<string>;
}

/** An offloaded message's payload, fetched (or why not). */
interface Fetched {
  payload?: string;
  info: PayloadFetch;
}

/** Starting a batch's handlers, how long the thread may run them back to back before it lets its event loop turn. */
const YIELD_AFTER_MS = 5;

/** A handler as a thread holds it: its definition, its schemas split out, its setup state. */
export class LoadedHandler {
  readonly log: Logger;
  /** `events` as a map of schemas; null for the list form (nothing validated). */
  readonly schemas: Map<string, StandardSchemaV1> | null;
  /** `publishes`: schemas by type (null = a type is declared without one); undefined = undeclared. */
  readonly publishes: Map<string, StandardSchemaV1 | null> | undefined;
  setup: Promise<void> | null = null;
  setupDone = false;

  constructor(
    readonly queue: string,
    readonly def: AnyHandlerDefinition,
    log: Logger,
  ) {
    this.log = log.child({ queue });
    const ev = def.events;
    this.schemas = ev && !Array.isArray(ev) ? new Map(Object.entries(ev as EventSchemas)) : null;
    const p = def.publishes;
    if (Array.isArray(p)) this.publishes = new Map(p.map((t: string) => [t, null]));
    else if (p) this.publishes = new Map(Object.entries(p as EventSchemas));
  }
}

/**
 * One message's run. The AbortSignal and the per-message logger are made only when the handler
 * asks for them: most handlers never do, and at thousands of messages a second both show in profiles.
 */
class ItemRun {
  #ac: AbortController | undefined;
  #reason: unknown;
  #log: Logger | undefined;
  /**
   * performance.now() when its handler was called. Timeouts and the grace run on this monotonic
   * clock: a wall clock stepped by NTP would abort handlers early or late, and Date.now()'s whole
   * milliseconds let a 300 ms timeout abort at 299.x ms of measured duration.
   */
  startedMs = 0;
  /** performance.now() when its signal was aborted for its timeout (the grace runs from here). */
  abortedMs: number | undefined;
  output: ItemOutput | undefined;
  event: CloudEvent | undefined;
  /** Its CONSUMER span, when an SDK is registered (issue 15). */
  span: Span | undefined;
  /** What its handler threw: the span's exception event. */
  thrownValue: unknown;
  /** An offloaded message: how its payload was fetched. */
  payload: PayloadFetch | undefined;

  constructor(
    readonly h: LoadedHandler,
    readonly item: TaskItem,
  ) {}

  get aborted(): boolean {
    return this.#reason !== undefined;
  }

  get reason(): unknown {
    return this.#reason;
  }

  /**
   * Its result must be `timeout` whatever the handler returned: its own timeout aborted it (SPEC
   * "Results"), or the shutdown abort reached a handler that had taken its signal (it may have
   * stopped early). A handler that never looked at its signal and returned after a shutdown abort
   * finished its work: that stays a success (releasing it would run it again on another host).
   */
  get cutShort(): boolean {
    // #ac exists once the handler asked for its signal (it is made lazily).
    return this.abortedMs !== undefined || (this.aborted && this.#ac !== undefined);
  }

  signal(): AbortSignal {
    this.#ac ??= new AbortController();
    if (this.#reason !== undefined && !this.#ac.signal.aborted) this.#ac.abort(this.#reason);
    return this.#ac.signal;
  }

  abort(reason: unknown): void {
    if (this.#reason !== undefined) return;
    this.#reason = reason;
    this.#ac?.abort(reason);
    if (this.span) recordAbort(this.span, describeError(reason));
  }

  /** The trace context what this message's handler publishes continues: its span's, else the event's (or its X-Ray header's). */
  traceContext(): { traceparent: string; tracestate?: string } | null {
    if (this.span) return traceExtensions(this.span.spanContext());
    const sc = this.event ? messageContext(this.event, this.item.awsTraceHeader) : null;
    return sc ? traceExtensions(sc) : null;
  }

  /** Puts the trace context on its outcome (failure events and the main thread's lines continue it) and ends its span. */
  traceOutcome(out: ItemOutput): void {
    const span = this.span;
    if (!span && out.result === 'success') return;
    const ext = this.traceContext();
    if (ext) Object.assign(out, ext);
    if (!span) return;
    if (span.isRecording()) out.traced = true;
    endProcessSpan(span, out.result, out.error, this.thrownValue);
  }

  log(): Logger {
    if (this.#log) return this.#log;
    const sc = this.span?.isRecording() ? this.span.spanContext() : undefined;
    this.#log = this.h.log.child({
      messageId: this.item.messageId,
      eventType: this.event?.type ?? null,
      receiveCount: this.item.receiveCount,
      ...(sc ? { trace_id: sc.traceId, span_id: sc.spanId } : {}),
    });
    return this.#log;
  }

  /** Its outcome: `error` is a description, or what was thrown (its stack crosses the thread as data). */
  finish(result: ItemOutput['result'], error?: string | ErrorInfo, issues?: ItemOutput['issues']): ItemOutput {
    const info = typeof error === 'object' ? error : undefined;
    return (this.output = {
      result,
      ...(error !== undefined ? { error: info ? errorSummary(info) : (error as string) } : {}),
      ...(info ? { err: info } : {}),
      ...(issues ? { issues } : {}),
      durationMs: this.startedMs ? performance.now() - this.startedMs : 0,
      eventType: this.event?.type ?? null,
      eventId: this.event?.id ?? this.item.messageId,
      ...(this.payload ? { payload: this.payload } : {}),
    });
  }

  /** The outcome of a handler that threw (or rejected, or whose data failed its schema). */
  thrown(err: unknown): ItemOutput {
    if (this.aborted) return this.finish('timeout', describeError(this.reason));
    if (err instanceof ValidationFailure) {
      return this.finish('invalid', `invalid ${err.type === '' ? 'event' : err.type} data: ${err.describe()}`, err.plain());
    }
    return this.finish(isNonRetryable(err) ? 'rejected' : 'error', toErrorInfo(err));
  }
}

/** The issue of an event whose type the handler's schema map does not declare. */
function undeclared(type: string | null, schemas: Map<string, StandardSchemaV1>): ValidationFailure {
  return new ValidationFailure(type ?? '', [{ message: `event type ${type === null ? '(none)' : JSON.stringify(type)} is not one of the handler's events (${[...schemas.keys()].join(', ')})`, path: ['type'] }]);
}

/**
 * Validates the event's data with its type's schema (the validated value replaces `data`), then runs
 * the handler. Throws (or rejects with) a ValidationFailure for bad data; a schema that throws
 * gives its own error (retried: that is the schema's bug, not the event's).
 */
function validateThenHandle(h: LoadedHandler, schemas: Map<string, StandardSchemaV1>, event: CloudEvent, ctx: HandlerContext): Promise<unknown> {
  const schema = event.type === null ? undefined : schemas.get(event.type);
  if (!schema) throw undeclared(event.type, schemas);
  const checked = validate(event.type!, schema, event.data);
  const go = (v: { value: unknown } | ValidationFailure): unknown => {
    if (v instanceof ValidationFailure) throw v;
    event.data = v.value;
    return h.def.handle(event, ctx);
  };
  return checked instanceof Promise ? checked.then(go) : Promise.resolve(go(checked));
}

/** The handlers of one thread (or of one runHandler call), and how a task of messages runs on them. */
export class HandlerRunner {
  /** Every handler running here (shutdown aborts them all). */
  readonly #running = new Set<ItemRun>();
  /** Set by abortAll: a handler that starts afterwards (its task crossed the abort) starts aborted. */
  #abortReason: unknown;

  constructor(
    readonly env: RunnerEnv,
    readonly handlers: ReadonlyMap<string, LoadedHandler>,
  ) {}

  abortAll(reason: unknown): void {
    this.#abortReason ??= reason;
    for (const r of this.#running) r.abort(reason);
  }

  async teardown(): Promise<string[]> {
    const errors: string[] = [];
    for (const [queue, h] of this.handlers) {
      if (!h.setupDone || typeof h.def.teardown !== 'function') continue;
      try {
        await h.def.teardown();
      } catch (err) {
        errors.push(`${queue}: ${describeError(err)}`);
        h.log.error({ err }, 'handler teardown failed');
      }
    }
    return errors;
  }

  ensureSetup(h: LoadedHandler): Promise<void> | null {
    if (h.setupDone || typeof h.def.setup !== 'function') {
      h.setupDone = true;
      return null;
    }
    // A failed setup is tried again with the next message of that queue.
    h.setup ??= Promise.resolve()
      .then(() => h.def.setup!({ queue: h.queue, log: h.log }))
      .then(
        () => {
          h.setupDone = true;
        },
        (err: unknown) => {
          h.setup = null;
          throw err;
        },
      );
    return h.setup;
  }

  /** Runs every setup hook, so the first message does not wait for it; returns what they threw. */
  async setupAll(): Promise<string[]> {
    const errors: string[] = [];
    for (const h of this.handlers.values()) {
      try {
        await this.ensureSetup(h);
      } catch (err) {
        errors.push(`${h.queue}: ${describeError(err)}`);
        h.log.error({ err }, 'handler setup failed; it is tried again with the next message');
      }
    }
    return errors;
  }

  #context(r: ItemRun, task: TaskInput, event: CloudEvent): HandlerContext {
    let position = 0;
    const env = this.env;
    const declared = r.h.publishes;
    return {
      messageId: r.item.messageId,
      receiveCount: r.item.receiveCount,
      queue: task.queue,
      // Made on first use; still plain properties to a handler that assigns them (strict-mode ES
      // modules would throw on a getter-only property).
      get signal() {
        return r.signal();
      },
      set signal(value: AbortSignal) {
        Object.defineProperty(this, 'signal', { value, writable: true, enumerable: true, configurable: true });
      },
      get log() {
        return r.log();
      },
      set log(value: Logger) {
        Object.defineProperty(this, 'log', { value, writable: true, enumerable: true, configurable: true });
      },
      // An offloaded event (README "Large events"): where its payload was and how large it is.
      ...(r.payload && r.payload.error === undefined ? { offloaded: { bucket: r.payload.bucket, key: r.payload.key, bytes: r.payload.bytes ?? 0 } } : {}),
      publish(type: string, data: unknown, opts: EventOptions = {}): Promise<CloudEvent> {
        // The position is taken at the call, so a retried handler derives the same ids whatever
        // its validations await.
        const id = opts.id ?? derivedEventId(event.id, task.queue, position++);
        // The new event continues the handler's trace (its span, or without an SDK the event's own
        // context), unless the caller gave it one.
        const trace = r.traceContext();
        const send = () => env.publish(task.topicArn, type, data, trace ? { ...opts, id, extensions: { ...trace, ...opts.extensions } } : { ...opts, id });
        if (!declared) return send();
        if (!declared.has(type)) {
          return Promise.reject(
            new EventBusError('ERR_EVENT_INVALID', `ctx.publish: event type ${JSON.stringify(type)} is not declared in this handler's publishes (${[...declared.keys()].join(', ')})`),
          );
        }
        return validateForPublish(type, declared.get(type) ?? undefined, data, 'ctx.publish').then(send);
      },
    };
  }

  /**
   * Starts fetching the payloads of the task's offloaded messages (pointers in the extended clients'
   * format, from us or an AWS extended client), all at once: a task holds at most its slots'
   * messages, so the cap bounds the payloads in memory. Null when none is offloaded.
   */
  #fetchPayloads(task: TaskInput): Map<number, Promise<Fetched>> | null {
    let out: Map<number, Promise<Fetched>> | null = null;
    for (let i = 0; i < task.items.length; i++) {
      const it = task.items[i]!;
      const pointer = findPointer({ body: it.body, attributes: it.attributes ?? {} });
      if (pointer) (out ??= new Map()).set(i, this.#fetch(pointer));
    }
    return out;
  }

  async #fetch(p: PayloadPointer): Promise<Fetched> {
    const startedMs = performance.now();
    const info = (extra: Partial<PayloadFetch>): PayloadFetch => ({ bucket: p.bucket, key: p.key, bytes: p.bytes, fetchMs: performance.now() - startedMs, ...extra });
    try {
      if (!this.env.fetchPayload) throw new Error('no S3 client in this thread');
      const payload = await this.env.fetchPayload(p.bucket, p.key);
      return { payload, info: info({ bytes: p.bytes ?? Buffer.byteLength(payload, 'utf8') }) };
    } catch (err) {
      // Never a crash: the message's result is `error` (retried; on its last receive dead-lettered with this reason).
      return { info: info({ error: `payload ${pointerUri(p)} could not be fetched: ${describeError(err)}` }) };
    }
  }

  /**
   * Runs a batch of one queue's messages concurrently. Never throws: outcomes come back as data. An
   * outcome that is ready while others of the batch still run is sent at once (env.sendOutcomes,
   * coalesced per turn of the event loop), so a slow message does not hold the slots of its
   * finished neighbours; the rest come back as the return value.
   */
  async run(task: TaskInput): Promise<TaskOutput> {
    const { table, threadId, graceMs } = this.env;
    const n = task.items.length;
    // First thing: the main thread tells "not started on any thread" (run it elsewhere) from "died here".
    for (const it of task.items) table.take(it.row, threadId);
    const clearRows = () => {
      for (const it of task.items) table.clear(it.row);
    };
    const h = this.handlers.get(task.queue);
    const fail = (error: string): TaskOutput => ({
      results: task.items.map((it, i) => [i, { result: 'error', error, durationMs: 0, eventType: null, eventId: it.messageId }]),
    });
    if (!h) {
      clearRows();
      return fail(`no handler for queue ${task.queue} in this thread`);
    }
    const setup = this.ensureSetup(h);
    if (setup) {
      try {
        await setup;
      } catch (err) {
        clearRows();
        this.env.onThrown?.(err);
        return fail(`setup failed: ${describeError(err)}`);
      }
    }
    const elu = performance.eventLoopUtilization();
    const runs: ItemRun[] = new Array(n);
    const running = this.#running;
    let left = n;
    let unsent: number[] = [];
    let flushQueued = false;
    let abandoned = false;
    let finish!: () => void;
    const allDone = new Promise<void>((resolve) => (finish = resolve));
    const flush = () => {
      flushQueued = false;
      if (left === 0 || unsent.length === 0) return; // the task's return value carries them
      this.env.sendOutcomes(
        task.taskId,
        unsent.map((i) => [i, runs[i]!.output!]),
      );
      unsent = [];
    };
    const record = (i: number, out: () => ItemOutput) => {
      const r = runs[i]!;
      if (r.output) return; // already timed out
      out();
      r.traceOutcome(r.output!);
      running.delete(r);
      // Settled here, its outcome on its way: a thread that dies now must not make it run again, and
      // the main thread can still tell what it returned.
      table.finish(r.item.row, threadId, r.output!.result);
      unsent.push(i);
      if (--left === 0) return finish();
      // A failure's details (its error) cannot be kept in the slot table: send it at once, in case the
      // thread dies before the next turn (a neighbour out of memory). Successes are coalesced.
      if (r.output!.result !== 'success') return flush();
      if (!flushQueued) {
        flushQueued = true;
        setImmediate(flush);
      }
    };

    // One timer for the batch: each handler's signal aborts at its own start + timeoutMs; one that has
    // not finished a grace later is given up on (the main thread then ends this thread).
    let timer: NodeJS.Timeout | undefined;
    const schedule = () => {
      timer = undefined;
      let next = Infinity;
      for (const r of runs) {
        if (!r || r.output) continue; // not started yet, or finished
        next = Math.min(next, r.abortedMs !== undefined ? r.abortedMs + graceMs : r.startedMs + task.timeoutMs);
      }
      // A timer may fire up to a millisecond early (libuv's loop time): tick checks and reschedules.
      if (next !== Infinity) timer = setTimeout(tick, Math.max(1, Math.ceil(next - performance.now())));
    };
    const tick = () => {
      const now = performance.now();
      for (let i = 0; i < n; i++) {
        const r = runs[i];
        if (!r || r.output) continue;
        if (r.abortedMs === undefined) {
          if (now < r.startedMs + task.timeoutMs) continue;
          r.abort(new Error(`handler timed out after ${task.timeoutMs} ms`));
          r.abortedMs = now;
          // The watchdog's clock restarts from the abort: a thread that was busy (its timers late)
          // but whose handlers do honour their signal gets its whole grace.
          table.start(r.item.row, Date.now() - task.timeoutMs);
        } else if (now >= r.abortedMs + graceMs) {
          // The handler ignored its signal and is still running: the main thread ends this thread,
          // so an abandoned handler cannot go on beside its own retry.
          abandoned = true;
          record(i, () => r.finish('timeout', `${describeError(r.reason)}; the handler ignored its signal, thread ended`));
        }
      }
      if (left > 0) schedule();
    };
    const schemas = h.schemas;
    // Once per task: null while no OpenTelemetry SDK is registered, and then no span work is done.
    const tracing = tracer();
    const payloads = this.#fetchPayloads(task);
    let sliceStartMs = performance.now();
    for (let i = 0; i < n; i++) {
      const item = task.items[i]!;
      // An offloaded message: its payload (fetched from S3) is decoded in place of the pointer. Taken
      // out of the map so it is not held until the whole task ends.
      const fetched = payloads?.has(i) ? await payloads.get(i) : undefined;
      payloads?.delete(i);
      const r = (runs[i] = new ItemRun(h, item));
      running.add(r);
      if (this.#abortReason !== undefined) r.abort(this.#abortReason);
      r.payload = fetched?.info;
      if (fetched?.info.error !== undefined) {
        const why = fetched.info.error;
        record(i, () => r.finish('error', why));
        continue;
      }
      let event: CloudEvent;
      try {
        event = r.event = decodeMessage({
          messageId: item.messageId,
          body: item.body,
          attributes: item.attributes ?? {},
          sentTimestampMs: item.sentTimestampMs,
          queueArn: task.queueArn,
          payload: fetched?.payload,
        }).event;
      } catch (err) {
        record(i, () => r.finish('error', `decode failed: ${describeError(err)}`));
        continue;
      }
      const ctx = this.#context(r, task, event);
      // Each handler is timed from its own start (its schema validation included), here and by the
      // watchdog on the main thread. A message whose handler never started (a neighbour blocks the
      // thread) keeps no mark, so if the thread is ended it runs again elsewhere instead of
      // spending a receive.
      if (tracing) r.span = startProcessSpan(tracing, event, { queue: task.queue, queueArn: task.queueArn, messageId: item.messageId, receiveCount: item.receiveCount, awsTraceHeader: item.awsTraceHeader });
      r.startedMs = performance.now();
      table.start(item.row, Date.now());
      let handled: Promise<unknown>;
      try {
        const go = () => (schemas ? validateThenHandle(h, schemas, event, ctx) : Promise.resolve(h.def.handle(event, ctx)));
        handled = r.span ? withSpan(r.span, go) : go();
      } catch (err) {
        this.env.onThrown?.(err);
        r.thrownValue = err;
        record(i, () => r.thrown(err));
        continue;
      }
      handled.then(
        // A handler whose signal aborted has not done its work, whatever it returns (SPEC "Results"):
        // one that stops early on its signal and resolves must not have its message deleted.
        (value) =>
          record(i, () =>
            r.cutShort ? r.finish('timeout', `${describeError(r.reason)}; the handler returned after its signal aborted`) : value === false ? r.finish('failure', 'handler returned false') : r.finish('success'),
          ),
        (err: unknown) => {
          this.env.onThrown?.(err);
          r.thrownValue = err;
          record(i, () => r.thrown(err));
        },
      );
      if (!timer) schedule();
      if (i < n - 1) {
        if (performance.now() - sliceStartMs > YIELD_AFTER_MS) {
          // Handlers that run synchronously for a while: let the event loop turn between them, so
          // timers (their timeouts) and outcomes are not held up behind the whole batch.
          await new Promise<void>((resolve) => setImmediate(resolve));
          sliceStartMs = performance.now();
        } else {
          // Let a handler that finished at once record its outcome before the next one starts: if a
          // later one blocks the thread for good, the finished one is known to have finished.
          await null;
        }
      }
    }
    if (left > 0) await allDone;
    clearTimeout(timer);
    return {
      results: unsent.map((i): [number, ItemOutput] => [i, runs[i]!.output!]),
      ...(abandoned ? { abandonedOnThread: threadId } : {}),
      threadBusyShare: performance.eventLoopUtilization(elu).utilization,
    };
  }
}
