// The raw ceiling: BENCH_POLLERS loops of ReceiveMessage(up to 10) -> handler inline -> DeleteMessageBatch,
// sharing BENCH_C slots (a message holds its slot from receive until its delete returned).
import { DeleteMessageBatchCommand, ReceiveMessageCommand } from '@aws-sdk/client-sqs';
import { handle, makeClient, onStop, opts } from './common.mjs';

const pollers = Number(process.env.BENCH_POLLERS ?? 4);
const sqs = makeClient();
const ac = new AbortController();
let stopped = false;

let free = opts.cap;
const waiting = [];
/** Takes up to 10 free slots, waiting for at least one. */
async function acquire() {
  while (free < 1) await new Promise((resolve) => waiting.push(resolve));
  const k = Math.min(10, free);
  free -= k;
  return k;
}
function release(k) {
  if (k <= 0) return;
  free += k;
  while (waiting.length && free > 0) waiting.shift()();
}

async function poller() {
  while (!stopped) {
    const k = await acquire();
    let messages = [];
    try {
      const out = await sqs.send(
        new ReceiveMessageCommand({ QueueUrl: opts.queueUrl, MaxNumberOfMessages: k, WaitTimeSeconds: 20 }),
        { abortSignal: ac.signal },
      );
      messages = out.Messages ?? [];
    } catch (err) {
      release(k);
      if (stopped) return;
      process.stderr.write(`receive failed: ${err?.message ?? err}\n`);
      await new Promise((r) => setTimeout(r, 100));
      continue;
    }
    release(k - messages.length);
    if (messages.length === 0) continue;
    const ok = [];
    let pending = null;
    for (const m of messages) {
      try {
        const r = handle(m.Body);
        if (r && typeof r.then === 'function') (pending ??= []).push(r.then(() => ok.push(m), () => undefined));
        else ok.push(m);
      } catch {
        // not deleted: comes back after the visibility timeout
      }
    }
    if (pending) await Promise.all(pending);
    try {
      if (ok.length) {
        const out = await sqs.send(
          new DeleteMessageBatchCommand({
            QueueUrl: opts.queueUrl,
            Entries: ok.map((m, i) => ({ Id: String(i), ReceiptHandle: m.ReceiptHandle })),
          }),
        );
        if (out.Failed?.length) process.stderr.write(`delete failed for ${out.Failed.length}\n`);
      }
    } catch (err) {
      process.stderr.write(`delete failed: ${err?.message ?? err}\n`);
    }
    release(messages.length);
  }
}

const loops = Array.from({ length: pollers }, () => poller());
onStop(async () => {
  stopped = true;
  ac.abort();
  await Promise.allSettled(loops);
});
