// Shared setup of the peer consumer processes: options from the environment, the SQS client,
// the recorder, and a SIGTERM that stops the consumer, flushes the handled ids and exits.
import { SQS, SQSClient } from '@aws-sdk/client-sqs';
import { createRecorder, makePeerHandler } from '../lib/work.mjs';

export const opts = {
  endpoint: must('BENCH_ENDPOINT'),
  queueUrl: must('BENCH_QUEUE_URL'),
  handler: must('BENCH_HANDLER'),
  cap: Number(must('BENCH_C')),
  idsDir: must('BENCH_IDS_DIR'),
};

function must(name) {
  const v = process.env[name];
  if (!v) {
    process.stderr.write(`${name} is not set\n`);
    process.exit(2);
  }
  return v;
}

/** The client every consumer uses: explicit endpoint (fauxqs queue URLs do not resolve), test credentials. */
const clientConfig = () => ({
  endpoint: opts.endpoint,
  region: 'us-east-1',
  credentials: { accessKeyId: 'test', secretAccessKey: 'test' },
});
export function makeClient() {
  return new SQSClient(clientConfig());
}
/** The aggregated client (methods per operation), which squiss-ts wants. */
export function makeAggregatedClient() {
  return new SQS(clientConfig());
}

export const recorder = createRecorder(opts.idsDir);
export const handle = makePeerHandler(opts.handler, recorder);

/** On SIGTERM/SIGINT: run `stop` (bounded to 5 s), flush, exit 0. */
export function onStop(stop) {
  let stopping = false;
  const finish = (code) => {
    recorder.flush();
    process.exit(code);
  };
  for (const sig of ['SIGTERM', 'SIGINT']) {
    process.on(sig, () => {
      if (stopping) finish(1);
      stopping = true;
      setTimeout(() => finish(0), 5000).unref();
      Promise.resolve()
        .then(stop)
        .then(
          () => finish(0),
          (err) => {
            process.stderr.write(`stop failed: ${err?.stack ?? err}\n`);
            finish(1);
          },
        );
    });
  }
  // Orphaned (the harness was killed hard): stop too.
  const parent = process.ppid;
  setInterval(() => {
    if (process.ppid !== parent) finish(1);
  }, 1000).unref();
}
