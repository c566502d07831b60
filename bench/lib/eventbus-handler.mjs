// The benchmark handler as an eventbus handler module (plain ES module default export).
// The harness writes a one-line module into a temporary handlers folder that re-exports this one;
// parameters come from the environment of the supervisor process (worker threads inherit it).
import { createRecorder, makeWork } from './work.mjs';

const kind = process.env.BENCH_HANDLER ?? 'noop';
const dir = process.env.BENCH_IDS_DIR;
const cap = Number(process.env.BENCH_C ?? 10);
const work = makeWork(kind);
let recorder = null;

export default {
  queue: process.env.BENCH_EB_QUEUE ?? 'q',
  concurrency: cap,
  // The multi-host bench's join/leave run shortens it, so a killed host's messages come back soon.
  visibilityTimeout: Number(process.env.BENCH_EB_VISIBILITY ?? 30),
  maxReceiveCount: 5,
  // Once per worker thread: each thread records into its own file.
  setup() {
    recorder ??= createRecorder(dir);
  },
  handle(event) {
    recorder ??= createRecorder(dir);
    recorder.record(event);
    return work(event);
  },
  teardown() {
    recorder?.flush();
  },
};
