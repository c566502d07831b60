// Progress of the long CLI operations (`dlq redrive`, `replay`) on stderr, so stdout keeps only data:
// a cli-progress bar on a terminal; otherwise a plain line on the first update, then at most one every
// PROGRESS_LINE_INTERVAL_MS, and one at the end (so CI logs show a run that takes minutes).
import cliProgress from 'cli-progress';

/** A plain progress line at most this often when stderr is not a terminal. */
export const PROGRESS_LINE_INTERVAL_MS = 5_000;

export interface ProgressOptions {
  /** Where it goes (default: process.stderr); a bar only when this is a TTY. */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
  /** The bar's format (cli-progress tokens: {bar} {value} {total} and the payload's keys). */
  barFormat: string;
  /** The plain line for `done` of `total` (total: an estimate, or null when unknown) and the payload. */
  line(done: number, total: number | null, payload: Record<string, string | number>): string;
  /** Expected count; null when not known (the bar then grows with what is done). */
  total: number | null;
  /** The payload before the first update. */
  payload: Record<string, string | number>;
  intervalMs?: number;
  now?: () => number;
}

export interface Progress {
  update(done: number, payload: Record<string, string | number>): void;
  /** Fewer to do (items that turned out not to count). */
  shrink(by: number): void;
  /** The expected count, when it becomes known. */
  setTotal(total: number): void;
  /** Ends the bar, or prints the last line when it differs from the one printed before. */
  stop(): void;
}

/** A bar on a terminal, timed lines otherwise; `done` never goes backwards. */
export function createProgress(o: ProgressOptions): Progress {
  const stream = o.stream ?? process.stderr;
  if (stream.isTTY === true) return barProgress(stream, o);
  const interval = o.intervalMs ?? PROGRESS_LINE_INTERVAL_MS;
  const now = o.now ?? Date.now;
  let total = o.total;
  let done = 0;
  let payload = o.payload;
  let lastLineAt = -Infinity;
  let lastLine = '';
  const print = () => {
    const text = o.line(done, total, payload);
    if (text === lastLine) return;
    lastLine = text;
    lastLineAt = now();
    stream.write(`${text}\n`);
  };
  return {
    update(d, p) {
      done = Math.max(done, d);
      payload = p;
      if (total !== null && done > total) total = done;
      if (now() - lastLineAt >= interval) print();
    },
    shrink(by) {
      if (total !== null) total = Math.max(done, total - by);
    },
    setTotal(n) {
      total = Math.max(done, n);
    },
    stop() {
      if (done > 0 || lastLine !== '') print();
    },
  };
}

function barProgress(stream: NodeJS.WritableStream, o: ProgressOptions): Progress {
  const bar = new cliProgress.SingleBar({ stream, format: o.barFormat, hideCursor: true, clearOnComplete: false, etaBuffer: 50 }, cliProgress.Presets.shades_classic);
  let total = Math.max(o.total ?? 1, 1);
  let done = 0;
  bar.start(total, 0, o.payload);
  return {
    update(d, p) {
      done = Math.max(done, d);
      if (done > total) bar.setTotal((total = done));
      bar.update(done, p);
    },
    shrink(by) {
      total = Math.max(done, total - by, 1);
      bar.setTotal(total);
    },
    setTotal(n) {
      total = Math.max(done, n, 1);
      bar.setTotal(total);
    },
    stop() {
      // The total was an estimate (SQS's approximate count): end the bar at what was actually done.
      if (done > 0 && done !== total) bar.setTotal(done);
      bar.stop();
    },
  };
}
