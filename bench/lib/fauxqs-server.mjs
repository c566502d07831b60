// The benchmark's SNS/SQS backend: fauxqs (buildApp) in its own process, bound to 127.0.0.1.
// Fastify hooks on the fauxqs app do what a counting proxy would, without a second hop:
//  - count consumer SQS calls by operation (and empty receives) inside a measurement window;
//  - optionally add latency to every consumer call (half before the call is served, half before the
//    response is written), as a real AWS round trip does;
//  - report to the parent over IPC: the first ReceiveMessage of the window, the delete after which at most
//    `markDepth` messages are left (end of the warm-up), and the delete that left the queue empty.
// Requests of the harness itself carry `x-bench-harness` and are neither counted nor delayed.
// Preloading runs fauxqs's own SendMessageBatch action in this process (10 entries per call, exactly
// what the API call does, without the HTTP and SDK round trip that made preloading the slowest part).
import { buildApp } from 'fauxqs';
import { preloadMessage } from './messages.mjs';

const fauxqsDist = import.meta.resolve('fauxqs');
const { SqsStore } = await import(new URL('./sqs/sqsStore.js', fauxqsDist).href);
const { sendMessageBatch } = await import(new URL('./sqs/actions/sendMessageBatch.js', fauxqsDist).href);
const sqsStore = new SqsStore();
const app = buildApp({ logger: false, stores: { sqsStore } });

const hrNow = () => Number(process.hrtime.bigint()) / 1e6;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** The current measurement window, or null. */
let win = null;

function send(msg) {
  if (process.connected) process.send(msg);
}

function queueDepth(name) {
  const q = sqsStore.getQueueByName(name);
  if (!q) return null;
  return q.messages.length + q.inflightMessages.size + q.delayedMessages.length;
}

app.addHook('onRequest', async (req) => {
  if (!win || req.headers['x-bench-harness']) return;
  const target = req.headers['x-amz-target'];
  if (typeof target !== 'string') return; // SNS and others: not counted
  const op = target.startsWith('AmazonSQS.') ? target.slice(10) : target;
  req.benchOp = op;
  req.benchWin = win;
  win.calls[op] = (win.calls[op] ?? 0) + 1;
  if (op === 'ReceiveMessage' && win.first === null) {
    win.first = hrNow();
    win.cpuAtFirst = process.cpuUsage();
    send({ ev: 'first', id: win.id, t: win.first });
  }
  if (win.latencyMs > 0) await sleep(Math.floor(win.latencyMs / 2));
});

// Latency runs: the harness publishes events whose data has `"sentAt":-1`; the time the Publish reaches the
// emulator replaces it, so publish-to-handler-start leaves out the harness's own SDK work.
app.addHook('preHandler', async (req) => {
  const body = req.body;
  if (body && body.Action === 'Publish' && typeof body.Message === 'string' && body.Message.includes('"sentAt":-1')) {
    body.Message = body.Message.replace('"sentAt":-1', `"sentAt":${hrNow().toFixed(3)}`);
  }
});

app.addHook('onSend', async (req, reply, payload) => {
  const w = req.benchWin;
  if (!w) return payload;
  const op = req.benchOp;
  if (op === 'ReceiveMessage' && typeof payload === 'string' && !payload.includes('"ReceiptHandle"')) {
    w.emptyReceives++;
  }
  if (w.latencyMs > 0) await sleep(Math.ceil(w.latencyMs / 2));
  if (w === win && w.drainCheck && w.drained === null && (op === 'DeleteMessage' || op === 'DeleteMessageBatch') && reply.statusCode === 200) {
    const depth = queueDepth(w.queueName);
    if (w.mark === null && depth <= w.markDepth) {
      // The end of the warm-up: from here to empty is the measured steady state.
      w.mark = hrNow();
      w.markRemaining = depth;
      w.callsAtMark = { ...w.calls };
      w.emptyAtMark = w.emptyReceives;
      w.cpuAtMark = process.cpuUsage();
      send({ ev: 'mark', id: w.id, t: w.mark, remaining: depth });
    }
    if (depth === 0) {
      w.drained = hrNow();
      w.callsAtDrain = { ...w.calls };
      w.emptyAtDrain = w.emptyReceives;
      w.cpuAtDrain = process.cpuUsage();
      send({ ev: 'drained', id: w.id, t: w.drained });
    }
  }
  return payload;
});

process.on('message', (msg) => {
  switch (msg.cmd) {
    case 'open':
      win = {
        id: msg.id,
        queueName: msg.queueName,
        latencyMs: msg.latencyMs ?? 0,
        drainCheck: msg.drainCheck !== false,
        calls: {},
        emptyReceives: 0,
        first: null,
        drained: null,
        callsAtDrain: null,
        emptyAtDrain: null,
        cpuAtFirst: null,
        cpuAtDrain: null,
        markDepth: msg.markDepth ?? -1,
        mark: null,
        markRemaining: null,
        callsAtMark: null,
        emptyAtMark: null,
        cpuAtMark: null,
      };
      send({ ev: 'opened', id: msg.id });
      break;
    case 'close': {
      const w = win;
      win = null;
      send({ ev: 'closed', id: msg.id, window: w && { ...w } });
      break;
    }
    case 'preload': {
      try {
        const ids = new Array(msg.n);
        for (let start = 0; start < msg.n; start += 10) {
          const entries = [];
          for (let i = start; i < Math.min(msg.n, start + 10); i++) {
            const m = preloadMessage(i);
            ids[i] = m.id;
            entries.push({ Id: String(i - start), MessageBody: m.body });
          }
          const out = sendMessageBatch({ QueueUrl: msg.queueUrl, Entries: entries }, sqsStore);
          if (out.Failed?.length) throw new Error(`${out.Failed.length} entries failed: ${out.Failed[0].Message}`);
        }
        send({ ev: 'preloaded', id: msg.id, ids });
      } catch (err) {
        send({ ev: 'preloaded', id: msg.id, error: String(err?.message ?? err) });
      }
      break;
    }
    case 'depth':
      send({ ev: 'depth', id: msg.id, depth: queueDepth(msg.queueName) });
      break;
    case 'cpu':
      send({ ev: 'cpu', id: msg.id, cpu: process.cpuUsage() });
      break;
    case 'stop':
      void app.close().finally(() => process.exit(0));
      break;
  }
});
process.on('disconnect', () => process.exit(0));

await app.listen({ port: 0, host: '127.0.0.1' });
send({ ev: 'ready', port: app.server.address().port });
