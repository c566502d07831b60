// What every consumer's handler does, so all consumers run the same logic:
// record the event id (and, for latency runs, publish-to-handler-start), then the handler's work.
import { appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { threadId } from 'node:worker_threads';

/** Milliseconds on CLOCK_MONOTONIC: comparable across processes and threads of this machine. */
export const hrNow = () => Number(process.hrtime.bigint()) / 1e6;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** The handlers of the issue: noop; io = await 20 ms; cpu = 4 ms of synchronous CPU. */
export function makeWork(kind) {
  switch (kind) {
    case 'noop':
      return () => undefined;
    case 'io':
      return () => sleep(20);
    case 'cpu':
      return () => {
        const end = performance.now() + 4;
        while (performance.now() < end) {
          // busy
        }
      };
    default:
      throw new Error(`unknown handler ${kind}`);
  }
}

/**
 * Decodes an SQS body as a subscription delivers it: the SNS envelope with the CloudEvent in `Message`
 * (raw delivery: the event is the body). The peers run this in their handlers; eventbus decodes itself.
 */
export function decodeBody(body) {
  const outer = JSON.parse(body);
  return outer && outer.Type === 'Notification' && typeof outer.Message === 'string' ? JSON.parse(outer.Message) : outer;
}

/**
 * Records handled event ids in memory and appends them to `<dir>/<pid>-<thread>.txt` every 250 ms,
 * at flush() and at exit: one line per handled message, `id` or `id latencyMs`.
 */
export function createRecorder(dir) {
  const file = join(dir, `${process.pid}-${threadId}.txt`);
  // BENCH_RECORD_SYNC=1: one append per message, so a host killed with -9 loses no record.
  if (process.env.BENCH_RECORD_SYNC === '1') {
    return {
      record(event) {
        appendFileSync(file, `${event.id}\n`);
      },
      flush() {},
    };
  }
  let buf = [];
  const flush = () => {
    if (buf.length === 0) return;
    const lines = buf.join('\n') + '\n';
    buf = [];
    appendFileSync(file, lines);
  };
  const timer = setInterval(flush, 250);
  timer.unref();
  process.on('exit', flush);
  return {
    /** Call at handler start with the decoded event. */
    record(event) {
      const sentAt = event?.data?.sentAt;
      buf.push(typeof sentAt === 'number' ? `${event.id} ${(hrNow() - sentAt).toFixed(3)}` : event.id);
    },
    flush,
  };
}

/** One handler as the peers use it: decode, record, work. Returns undefined or a promise. */
export function makePeerHandler(kind, recorder) {
  const work = makeWork(kind);
  return (body) => {
    const event = decodeBody(body);
    recorder.record(event);
    return work(event);
  };
}
