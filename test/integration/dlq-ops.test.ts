// The DLQ operations behind `eventbus dlq` and the console (src/dlq/ops.ts), against the emulator:
// browsing leaves every message in the DLQ and visible at once, and a redrive of chosen message ids
// moves exactly those (the others received on the way are released untouched).
import t from 'tap';
import { CreateQueueCommand, ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { browseDlq, redriveDlq, type DlqMessage } from '../../dist/dlq/ops.js';
import { readDepth } from '../../dist/cli/status.js';
import { emulator, uniqueName } from '../helpers/emulator.js';

const emu = await emulator();
t.teardown(() => emu.stop());

async function world(n: number) {
  const queueName = uniqueName('dlqops');
  const pair = { queueName, dlqName: `${queueName}-dlq` };
  const sourceUrl = (await emu.sqs.send(new CreateQueueCommand({ QueueName: pair.queueName }))).QueueUrl!;
  const dlqUrl = (await emu.sqs.send(new CreateQueueCommand({ QueueName: pair.dlqName }))).QueueUrl!;
  for (let i = 0; i < n; i++) {
    const event = { specversion: '1.0', id: `ev-${i}`, type: 'USER_CREATED', source: 'test', time: new Date().toISOString(), datacontenttype: 'application/json', data: { i } };
    await emu.sqs.send(
      new SendMessageCommand({
        QueueUrl: dlqUrl,
        MessageBody: JSON.stringify(event),
        MessageAttributes: {
          'event-type': { DataType: 'String', StringValue: 'USER_CREATED' },
          ...(i === 0 ? { 'eventbus-dead-letter-reason': { DataType: 'String', StringValue: 'rejected: NonRetryableError: bad address' } } : {}),
        },
      }),
    );
  }
  return { pair, sourceUrl, dlqUrl };
}

t.test('browse decodes every message, with the dead-letter reason, and leaves them all visible', async (t) => {
  const { pair, dlqUrl } = await world(13);
  const seen: DlqMessage[] = [];
  const r = await browseDlq(emu.sqs, pair, dlqUrl, { max: 100, onMessage: (m) => void seen.push(m) });
  t.equal(r.shown, 13);
  t.same(r.problems, []);
  t.same(seen.map((m) => m.event.id).sort(), Array.from({ length: 13 }, (_, i) => `ev-${i}`).sort());
  const first = seen.find((m) => m.event.id === 'ev-0')!;
  t.equal(first.deadLetterReason, 'rejected: NonRetryableError: bad address');
  t.equal(first.event.type, 'USER_CREATED');
  t.same(first.event.data, { i: 0 });
  t.equal(first.receiveCount, 1);
  t.type(first.sentTimestampMs, 'number');
  t.equal(seen.find((m) => m.event.id === 'ev-1')!.deadLetterReason, null);
  const depth = await readDepth(emu.sqs, pair.dlqName, dlqUrl);
  t.equal(depth.visible, 13, 'released at once: all visible again');
  t.equal(depth.inFlight, 0);
});

t.test('browse stops at max', async (t) => {
  const { pair, dlqUrl } = await world(5);
  const r = await browseDlq(emu.sqs, pair, dlqUrl, { max: 2, onMessage: () => {} });
  t.equal(r.shown, 2);
  t.equal((await readDepth(emu.sqs, pair.dlqName, dlqUrl)).visible, 5);
});

t.test('redrive of chosen ids moves exactly those and releases the rest', async (t) => {
  const { pair, sourceUrl, dlqUrl } = await world(12);
  const all: DlqMessage[] = [];
  await browseDlq(emu.sqs, pair, dlqUrl, { max: 100, onMessage: (m) => void all.push(m) });
  const chosen = all.filter((m) => ['ev-3', 'ev-7', 'ev-11'].includes(m.event.id));
  t.equal(chosen.length, 3);
  const batches: number[] = [];
  const r = await redriveDlq(emu.sqs, pair, dlqUrl, sourceUrl, { max: Infinity, only: new Set(chosen.map((m) => m.messageId)), onBatch: (_r, moved) => void batches.push(moved) });
  t.equal(r.moved, 3);
  t.equal(r.failed, 0);
  t.same(r.errors, []);
  t.same([...r.movedIds].sort(), chosen.map((m) => m.messageId).sort());
  t.equal(batches.reduce((a, b) => a + b, 0), 3);
  const dlq = await readDepth(emu.sqs, pair.dlqName, dlqUrl);
  t.equal(dlq.visible, 9, 'the 9 others are in the DLQ and visible at once');
  t.equal(dlq.inFlight, 0);
  const got = await emu.sqs.send(new ReceiveMessageCommand({ QueueUrl: sourceUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1 }));
  t.same((got.Messages ?? []).map((m) => (JSON.parse(m.Body!) as { id: string }).id).sort(), ['ev-11', 'ev-3', 'ev-7']);
});

t.test('redrive of an id no longer in the DLQ moves nothing and stops', async (t) => {
  const { pair, sourceUrl, dlqUrl } = await world(3);
  const r = await redriveDlq(emu.sqs, pair, dlqUrl, sourceUrl, { max: Infinity, only: new Set(['not-a-message-id']) });
  t.equal(r.moved, 0);
  t.equal(r.failed, 0);
  t.equal((await readDepth(emu.sqs, pair.dlqName, dlqUrl)).visible, 3);
});

t.test('an aborted signal stops before the next batch', async (t) => {
  const { pair, sourceUrl, dlqUrl } = await world(4);
  const ac = new AbortController();
  ac.abort();
  const r = await redriveDlq(emu.sqs, pair, dlqUrl, sourceUrl, { max: Infinity, signal: ac.signal });
  t.equal(r.aborted, true);
  t.equal(r.moved, 0);
  t.equal((await readDepth(emu.sqs, pair.dlqName, dlqUrl)).visible, 4);
});
