// Per-entry failures of SQS batch calls, through the real Acker and SDK against the emulator, with a
// proxy that answers DeleteMessageBatch itself: fauxqs never fails an entry (FAUXQS.md), AWS does
// (InternalError on a busy partition: worth another try; ReceiptHandleIsInvalid, SenderFault: never).
import t from 'tap';
import { createServer, request, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { CreateQueueCommand, GetQueueAttributesCommand, ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { Acker } from '../../dist/supervisor/settle/acker.js';
import { SqsHealth } from '../../dist/supervisor/serve/health.js';
import { createAwsClients } from '../../dist/aws.js';
import { createLogger } from '../../dist/log.js';
import { emulator, uniqueName, type TestEmulator } from '../helpers/emulator.js';

type Answer = (entries: Array<{ Id: string }>) => { Successful: Array<{ Id: string }>; Failed: Array<Record<string, unknown>> } | null;

/** Forwards every call to the emulator, except DeleteMessageBatch calls that `answer` answers itself (null = forward). */
async function entryProxy(emu: TestEmulator, answer: { current: Answer }) {
  const target = new URL(emu.aws.endpoint!);
  const deletes: number[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (String(req.headers['x-amz-target'] ?? '').endsWith('.DeleteMessageBatch')) {
        const input = JSON.parse(body.toString()) as { Entries: Array<{ Id: string }> };
        deletes.push(input.Entries.length);
        const out = answer.current(input.Entries);
        if (out) {
          res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' });
          res.end(JSON.stringify(out));
          return;
        }
      }
      const up = request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, host: target.host } }, (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      });
      up.on('error', () => res.destroy());
      up.end(body);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    deletes,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

async function setup(t: { teardown(fn: () => unknown): void }, answer: { current: Answer }) {
  const emu = await emulator();
  t.teardown(() => emu.stop());
  const proxy = await entryProxy(emu, answer);
  t.teardown(() => proxy.close());
  const clients = createAwsClients({ ...emu.aws, endpoint: proxy.endpoint });
  t.teardown(() => clients.sqs.destroy());
  const name = uniqueName('ack');
  const url = (await emu.sqs.send(new CreateQueueCommand({ QueueName: name, Attributes: { VisibilityTimeout: '1' } }))).QueueUrl!;
  const errors: Array<{ operation: string; count: number }> = [];
  const acker = new Acker({
    sqs: clients.sqs,
    log: createLogger({ level: 'silent' }),
    health: new SqsHealth(),
    onError: (_q, operation, count) => errors.push({ operation, count }),
    lingerMs: 1,
  });
  const q = { queue: name, url };
  const receiveOne = async () => {
    await emu.sqs.send(new SendMessageCommand({ QueueUrl: url, MessageBody: 'x' }));
    const m = (await emu.sqs.send(new ReceiveMessageCommand({ QueueUrl: url, MaxNumberOfMessages: 1, WaitTimeSeconds: 1 }))).Messages?.[0];
    if (!m?.ReceiptHandle) throw new Error('no message received');
    return m.ReceiptHandle;
  };
  const depth = async () => {
    const a = (await emu.sqs.send(new GetQueueAttributesCommand({ QueueUrl: url, AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'] }))).Attributes ?? {};
    return Number(a.ApproximateNumberOfMessages) + Number(a.ApproximateNumberOfMessagesNotVisible);
  };
  return { acker, q, proxy, errors, receiveOne, depth };
}

t.test('a delete entry that failed on the server side is sent again, and the message is gone', async (t) => {
  // Expected: Failed[] with SenderFault false (InternalError) -> the Batcher retries that entry; the
  // caller's promise resolves once SQS deleted it. Untested before: a regression here would leave
  // every such message to come back and run again.
  let first = true;
  const answer = {
    current: ((entries) => {
      if (!first) return null;
      first = false;
      return { Successful: [], Failed: entries.map((e) => ({ Id: e.Id, Code: 'InternalError', Message: 'try again', SenderFault: false })) };
    }) as Answer,
  };
  const { acker, q, proxy, errors, receiveOne, depth } = await setup(t, answer);
  const handle = await receiveOne();
  await acker.delete(q, handle);
  t.same(proxy.deletes, [1, 1], 'one call failed the entry, a second one deleted it');
  t.same(errors, [{ operation: 'DeleteMessageBatch', count: 1 }], 'the failed entry was counted');
  t.equal(await depth(), 0, 'the message is deleted');
});

t.test('a delete entry that failed with SenderFault is not sent again: its caller gets the error', async (t) => {
  // Expected: ReceiptHandleIsInvalid (SenderFault true) cannot pass on another try; the delete
  // rejects at once and the message comes back by itself (safe under at-least-once).
  const answer = {
    current: ((entries) => ({ Successful: [], Failed: entries.map((e) => ({ Id: e.Id, Code: 'ReceiptHandleIsInvalid', Message: 'bad handle', SenderFault: true })) })) as Answer,
  };
  const { acker, q, proxy, errors, receiveOne, depth } = await setup(t, answer);
  const handle = await receiveOne();
  const err = await acker.delete(q, handle).then(
    () => null,
    (e: unknown) => e as Error,
  );
  t.ok(err, 'the delete rejected');
  t.equal(err?.name, 'ReceiptHandleIsInvalid');
  t.same(proxy.deletes, [1], 'not retried');
  t.same(errors, [{ operation: 'DeleteMessageBatch', count: 1 }]);
  t.equal(await depth(), 1, 'the message is still on the queue and comes back');
});

t.test('in one batch call, only the failed entries are sent again', async (t) => {
  // Expected: of three entries, the one that failed (retryable) goes in the second call alone; the
  // two that succeeded are not sent twice.
  let first = true;
  const answer = {
    current: ((entries) => {
      if (!first || entries.length < 3) return null;
      first = false;
      return { Successful: entries.slice(1).map((e) => ({ Id: e.Id })), Failed: [{ Id: entries[0]!.Id, Code: 'InternalError', Message: 'x', SenderFault: false }] };
    }) as Answer,
  };
  const { acker, q, proxy, receiveOne } = await setup(t, answer);
  const handles = [await receiveOne(), await receiveOne(), await receiveOne()];
  await Promise.all(handles.map((h) => acker.delete(q, h)));
  t.same(proxy.deletes, [3, 1], 'the second call carried only the failed entry');
});
