// sqs-consumer (bbc), in one of its two modes (BENCH_SQSC_MODE):
//  - message: handleMessage, batchSize 10 (a batch's messages are handled concurrently, each deleted alone);
//  - batch:   handleMessageBatch, batchSize 10 (one DeleteMessageBatch per batch).
// A Consumer holds at most one batch of 10 in flight, so ceil(C / 10) instances share one client.
import { Consumer } from 'sqs-consumer';
import { handle, makeClient, onStop, opts } from './common.mjs';

const mode = process.env.BENCH_SQSC_MODE ?? 'message';
const sqs = makeClient();
const instances = Math.max(1, Math.ceil(opts.cap / 10));
const batchSize = Math.min(10, opts.cap);

function handleOne(m) {
  const r = handle(m.Body);
  return r && typeof r.then === 'function' ? r.then(() => m) : m;
}

const consumers = [];
for (let i = 0; i < instances; i++) {
  const c = Consumer.create({
    queueUrl: opts.queueUrl,
    sqs,
    batchSize,
    waitTimeSeconds: 20,
    strictReturn: true,
    ...(mode === 'batch'
      ? {
          async handleMessageBatch(messages) {
            const out = [];
            let pending = null;
            for (const m of messages) {
              const r = handleOne(m);
              if (r instanceof Promise) (pending ??= []).push(r.then((x) => out.push(x)));
              else out.push(r);
            }
            if (pending) await Promise.all(pending);
            return out;
          },
        }
      : {
          async handleMessage(m) {
            return handleOne(m);
          },
        }),
  });
  c.on('error', (err) => process.stderr.write(`sqs-consumer error: ${err?.message ?? err}\n`));
  c.on('processing_error', (err) => process.stderr.write(`sqs-consumer processing_error: ${err?.message ?? err}\n`));
  consumers.push(c);
}
for (const c of consumers) c.start();

onStop(() => {
  for (const c of consumers) c.stop({ abort: true });
});
