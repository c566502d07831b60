import type { HandlerResult } from '../types.js';

/** A result a thread can record in the table: every result but `crashed` (which only the main thread decides). */
export type TableResult = (typeof TABLE_RESULTS)[number];

/**
 * The results a row can hold once its handler finished, by code. Appending keeps old codes; never
 * reorder (both sides of one process share it, so this is about readers of this file, not a wire).
 */
export const TABLE_RESULTS = ['success', 'failure', 'error', 'timeout', 'rejected', 'invalid'] as const satisfies readonly HandlerResult[];

/** Cells per row: [thread, clock]. */
const CELLS = 2;

/**
 * The run table: one row per message handed to the threads, in a SharedArrayBuffer that the main
 * thread and every worker thread see. It answers, without a message crossing threads, the questions
 * a dead or stuck thread leaves open: which thread took a message, when its handler started (the
 * watchdog's clock), and what it finished with (kept even if the outcome message dies with the thread).
 *
 * Layout, owned here and nowhere else (BigInt64 cells, so times never wrap: an Int32 of ms since the
 * pool's start wrapped after 24.86 days of uptime and the watchdog then ended healthy threads):
 * - thread cell: 0 = no thread took the row; +threadId = taken; -threadId = its handler finished there.
 * - clock cell: 0 = handler not started; t > 0 = started at epochMs + t - 1 (the watchdog's clock,
 *   restarted at an abort); -(1 + code) once finished, code an index in TABLE_RESULTS.
 * `finish` writes the clock cell first and the thread cell last, so a reader that sees -threadId
 * sees the result too.
 */
export class RunTable {
  readonly buffer: SharedArrayBuffer;
  readonly epochMs: number;
  readonly #cells: BigInt64Array;

  /** Bytes of a table of `rows` rows. */
  static bytes(rows: number): number {
    return rows * CELLS * BigInt64Array.BYTES_PER_ELEMENT;
  }

  /** Over a new buffer (main thread) or the one the main thread handed over (worker thread). */
  constructor(bufferOrRows: SharedArrayBuffer | number, epochMs: number) {
    this.buffer = typeof bufferOrRows === 'number' ? new SharedArrayBuffer(RunTable.bytes(bufferOrRows)) : bufferOrRows;
    this.epochMs = epochMs;
    this.#cells = new BigInt64Array(this.buffer);
  }

  get rows(): number {
    return this.#cells.length / CELLS;
  }

  // Main thread

  /** Before a row is handed to a thread (and when it is freed). */
  clear(row: number): void {
    Atomics.store(this.#cells, CELLS * row, 0n);
    Atomics.store(this.#cells, CELLS * row + 1, 0n);
  }

  /** The thread that took the row; undefined when none has. */
  takenBy(row: number): number | undefined {
    const t = Atomics.load(this.#cells, CELLS * row);
    return t === 0n ? undefined : Number(t < 0n ? -t : t);
  }

  /** Whether the row's handler has not started: in transit to its thread, queued behind others there, or in setup. */
  notStarted(row: number): boolean {
    return Atomics.load(this.#cells, CELLS * row + 1) === 0n;
  }

  /** When the row's handler started (restarted at its abort), in epoch ms; undefined when not started or finished. */
  startedAtMs(row: number): number | undefined {
    if (Atomics.load(this.#cells, CELLS * row) < 0n) return undefined;
    const c = Atomics.load(this.#cells, CELLS * row + 1);
    return c > 0n ? this.epochMs + Number(c) - 1 : undefined;
  }

  /** What the row's handler finished with on its thread; undefined while it has not. */
  finishedWith(row: number): TableResult | undefined {
    if (Atomics.load(this.#cells, CELLS * row) >= 0n) return undefined;
    const c = Atomics.load(this.#cells, CELLS * row + 1);
    return c < 0n ? TABLE_RESULTS[Number(-c) - 1] : undefined;
  }

  // Worker thread

  /** First thing a thread does with a task: the main thread can tell "never reached a thread" from "died here". */
  take(row: number, threadId: number): void {
    Atomics.store(this.#cells, CELLS * row, BigInt(threadId));
  }

  /** The row's handler starts now, or its watchdog clock restarts (at an abort, for the grace). */
  start(row: number, atMs: number): void {
    // At least 1 (started) even if the wall clock stepped back past the epoch.
    Atomics.store(this.#cells, CELLS * row + 1, BigInt(Math.max(0, Math.round(atMs - this.epochMs)) + 1));
  }

  /** The handler finished on this thread with `result`. */
  finish(row: number, threadId: number, result: TableResult): void {
    Atomics.store(this.#cells, CELLS * row + 1, BigInt(-(1 + TABLE_RESULTS.indexOf(result))));
    Atomics.store(this.#cells, CELLS * row, BigInt(-threadId));
  }
}
