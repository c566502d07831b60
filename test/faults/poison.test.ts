// Poison input: bodies no publisher of ours sends (not JSON, JSON of the wrong shape, no event-type,
// forged SNS envelopes, deep nesting, maximum sizes, odd unicode), sent raw to SQS and through SNS.
// Expected (SPEC "Decoding", "Guarantees"): a lenient handler gets every one of them as an event and
// it is deleted; a strict handler rejects the ones it cannot use, which end in the DLQ with the reason
// logged; the supervisor never crashes and never drops a body.
import t from 'tap';
import { SendMessageCommand, type MessageAttributeValue } from '@aws-sdk/client-sqs';
import { readHandlerLog, readyz, record, saveOutput, spawnSupervisor, supervisorConfig, tempFile, waitFor, world } from '../helpers/faults.js';

/** SQS's limit until 2025 and still SNS's; AWS raised SQS to 1 MiB in 2025, which is also fauxqs' limit. */
const KIB_256 = 262_144;
const MIB_1 = 1_048_576;

/** A JSON ORDER body padded to exactly `bytes` bytes. */
function paddedOrder(orderId: string, bytes: number): string {
  const base = JSON.stringify({ type: 'ORDER', data: { orderId, pad: '' } });
  return JSON.stringify({ type: 'ORDER', data: { orderId, pad: 'p'.repeat(bytes - Buffer.byteLength(base)) } });
}

interface Case {
  name: string;
  body: string;
  attributes?: Record<string, MessageAttributeValue>;
  /** Does the strict (ORDER with a string orderId) handler accept it? */
  strictAccepts: boolean;
  /** The event type the lenient handler must see (undefined: do not check). */
  type?: string | null;
  /**
   * Fails in the lenient handler too (which accepts any event but must record it): ends in the DLQ of
   * the lenient queue as well, with this reason logged. (Bodies cross to the threads as strings and
   * are decoded there, so every body reaches its handler.)
   */
  undeliverable?: RegExp;
}

const str = (v: string): MessageAttributeValue => ({ DataType: 'String', StringValue: v });
const envelope = (message: unknown, attrs?: unknown) => JSON.stringify({ Type: 'Notification', MessageId: 'forged', Message: message, ...(attrs ? { MessageAttributes: attrs } : {}) });
const deep = (levels: number) => '['.repeat(levels) + ']'.repeat(levels);

const CASES: Case[] = [
  { name: 'plain text', body: 'plain text, not JSON', strictAccepts: false, type: null },
  { name: 'broken JSON', body: '{"type":"ORDER","data":{"orderId":', strictAccepts: false, type: null },
  { name: 'JSON after a BOM', body: '\uFEFF{"type":"ORDER","data":{"orderId":"bom"}}', strictAccepts: false, type: null },
  { name: 'JSON array', body: '[1,"two",{"three":3}]', strictAccepts: false, type: null },
  { name: 'JSON null', body: 'null', strictAccepts: false, type: null },
  { name: 'JSON number', body: '42', strictAccepts: false, type: null },
  { name: 'JSON string', body: '"ORDER"', strictAccepts: false, type: null },
  { name: 'type is a number', body: '{"type":42,"data":{"orderId":"n"}}', strictAccepts: false, type: null },
  { name: 'type is empty', body: '{"type":"","data":{"orderId":"e"}}', strictAccepts: false, type: null },
  { name: 'no type, no event-type attribute', body: '{"orderId":"lonely"}', strictAccepts: false, type: null },
  { name: 'no type, event-type attribute', body: '{"orderId":"attr"}', attributes: { 'event-type': str('ORDER') }, strictAccepts: true, type: 'ORDER' },
  { name: 'event-type attribute of DataType Number', body: '{"orderId":"num"}', attributes: { 'event-type': { DataType: 'Number', StringValue: '7' } }, strictAccepts: false, type: '7' },
  { name: 'binary attribute only', body: '{"orderId":"bin"}', attributes: { blob: { DataType: 'Binary', BinaryValue: new Uint8Array([0, 1, 2, 255]) } }, strictAccepts: false, type: null },
  { name: 'ORDER without orderId', body: '{"type":"ORDER","data":{"id":1}}', strictAccepts: false, type: 'ORDER' },
  { name: 'ORDER with data an array', body: '{"type":"ORDER","data":[1,2]}', strictAccepts: false, type: 'ORDER' },
  { name: 'valid ORDER (control)', body: '{"type":"ORDER","data":{"orderId":"ok"}}', strictAccepts: true, type: 'ORDER' },
  { name: '__proto__ and constructor keys', body: '{"type":"ORDER","__proto__":{"polluted":true},"constructor":{"prototype":{"x":1}},"data":{"orderId":"proto","__proto__":{"admin":true}}}', strictAccepts: true, type: 'ORDER' },
  { name: 'forged envelope, Message not a string', body: envelope({ type: 'ORDER', data: { orderId: 'x' } }), strictAccepts: false },
  { name: 'forged envelope, Message not JSON', body: envelope('not json', { 'event-type': { Type: 'String', Value: 'ORDER' } }), strictAccepts: false, type: 'ORDER' },
  { name: 'forged envelope, attributes garbage', body: envelope('{"orderId":"g"}', { 'event-type': 'ORDER', x: null }), strictAccepts: false, type: null },
  { name: 'forged envelope, valid ORDER', body: envelope('{"type":"ORDER","data":{"orderId":"env"}}'), strictAccepts: true, type: 'ORDER' },
  // Valid JSON, but deeper than structured clone can copy to a worker thread: no handler can get it.
  { name: 'deeply nested JSON (20,000 levels)', body: deep(20_000), strictAccepts: false, undeliverable: /^RangeError: Maximum call stack size exceeded/ },
  { name: 'ORDER of exactly 256 KiB', body: paddedOrder('256k', KIB_256), strictAccepts: true, type: 'ORDER' },
  { name: 'text of exactly 256 KiB', body: 'x'.repeat(KIB_256), strictAccepts: false, type: null },
  { name: 'ORDER of 1 MiB - 1 (fauxqs and AWS SQS maximum)', body: paddedOrder('1m', MIB_1 - 1), strictAccepts: true, type: 'ORDER' },
  { name: 'odd unicode in an ORDER (RTL override, zero-width, combining, U+FFFD, U+2028)', body: JSON.stringify({ type: 'ORDER', data: { orderId: '\u202Eevil\u200B\u0301\uFFFD\u2028\u2029\u4e2d\u6587\t\r\n' } }), strictAccepts: true, type: 'ORDER' },
  { name: 'odd unicode event-type attribute', body: '{"orderId":"u"}', attributes: { 'event-type': str('ORD\u00c9R\u200B\u202E') }, strictAccepts: false, type: 'ORD\u00c9R\u200B\u202E' },
  { name: 'odd unicode, not JSON', body: '\u202E\u200B\u2028\uFFFD\u00e9\u4e2d', strictAccepts: false, type: null },
];

t.test('poison input never crashes the supervisor; what the handler rejects ends in the DLQ with the reason logged', async (t) => {
  const w = await world([
    { queue: 'lenient', visibilityTimeout: 10, maxReceiveCount: 3 },
    { queue: 'strict', events: ['ORDER'], visibilityTimeout: 10, maxReceiveCount: 2 },
  ]);
  t.teardown(() => w.stop());
  const logFile = tempFile('handled.jsonl');
  const sup = await spawnSupervisor(
    supervisorConfig(w, { concurrency: 8, threads: 2, retry: { baseDelaySec: 1, maxDelaySec: 1 }, shutdownTimeoutMs: 10_000 }),
    { EVENTBUS_TEST_LOG: logFile },
  );
  t.teardown(() => sup.kill());
  const started = Date.now();

  const sent = new Map<string, { c: Case; queue: string }>(); // SQS MessageId -> case
  for (const queue of ['lenient', 'strict']) {
    for (const c of CASES) {
      const r = await w.emu.sqs.send(new SendMessageCommand({ QueueUrl: await w.queueUrl(queue), MessageBody: c.body, ...(c.attributes ? { MessageAttributes: c.attributes } : {}) }));
      sent.set(r.MessageId!, { c, queue });
    }
  }
  // Through SNS: characters SQS SendMessage refuses (fauxqs rejects anything above U+FFFF and
  // control characters there) arrive JSON-escaped inside the envelope.
  const viaSns = [
    await w.publisher.createEvent('ORDER', { orderId: 'emoji \u{1F600}\u{1F3F3}\u{FE0F}\u{200D}\u{1F308} \u{10FFFF}' }),
    await w.publisher.createEvent('ORDER', { orderId: 'control \u0000\u0001\u001b[31m\u007f' }),
    await w.publisher.createEvent('ORDER', { orderId: 42 }),
  ];
  const snsAccepted = new Set([viaSns[0]!.id, viaSns[1]!.id]);

  // The strict DLQ receives every rejected body (SQS moves it on the receive after maxReceiveCount).
  const rejected = [...sent].filter(([, s]) => s.queue === 'strict' && !s.c.strictAccepts).map(([id]) => id);
  const inDlq = new Map<string, string>();
  const dlqEventIds = new Set<string>();
  await waitFor(
    'every rejected body in the strict DLQ',
    async () => {
      for (const m of await w.drain('strict', { dlq: true, remove: true })) {
        inDlq.set(m.MessageId!, m.Body!);
        try {
          dlqEventIds.add(JSON.parse(JSON.parse(m.Body!).Message).id);
        } catch {
          // a raw body
        }
      }
      return rejected.every((id) => inDlq.has(id)) && dlqEventIds.has(viaSns[2]!.id);
    },
    90_000,
    1_000,
  );
  const endedIn = (queue: string) => new Set(readHandlerLog(logFile).filter((r) => r.queue === queue && r.kind === 'end').flatMap((r) => [r.messageId, r.id]));
  const expectEnded = (queue: string, filter: (c: Case) => boolean) => [...sent].filter(([, s]) => s.queue === queue && filter(s.c)).map(([id]) => id);
  const lenientIds = expectEnded('lenient', (c) => !c.undeliverable);
  const undeliverable = expectEnded('lenient', (c) => Boolean(c.undeliverable));
  const lenientDlq = new Set<string>();
  await waitFor('the undeliverable bodies in the lenient DLQ', async () => {
    for (const m of await w.drain('lenient', { dlq: true, remove: true })) lenientDlq.add(m.MessageId!);
    return undeliverable.every((id) => lenientDlq.has(id));
  }, 60_000, 1_000);
  const acceptedIds = [...expectEnded('strict', (c) => c.strictAccepts), ...snsAccepted];
  await waitFor('every body handled by the lenient handler, every acceptable one by the strict one', () => {
    const [l, s] = [endedIn('lenient'), endedIn('strict')];
    return lenientIds.every((id) => l.has(id)) && acceptedIds.every((id) => s.has(id));
  }, 30_000, 250).catch(() => undefined); // the per-case assertions below name what is missing
  const finalLog = readHandlerLog(logFile);
  const lenientEnds = new Map(finalLog.filter((r) => r.queue === 'lenient' && r.kind === 'end').map((r) => [r.messageId, r]));
  const strictEnds = endedIn('strict');
  for (const [id, { c, queue }] of sent) {
    if (queue === 'lenient' && c.undeliverable) {
      t.ok(lenientDlq.has(id), `lenient: "${c.name}" cannot reach a handler; in the DLQ`);
    } else if (queue === 'lenient') {
      const end = lenientEnds.get(id);
      t.ok(end, `lenient: "${c.name}" reached the handler and succeeded`);
      if (end && c.type !== undefined) t.equal((end as { type?: string | null }).type ?? null, c.type, `lenient: "${c.name}" has type ${JSON.stringify(c.type)}`);
    } else if (c.strictAccepts) {
      t.ok(strictEnds.has(id), `strict: "${c.name}" accepted`);
    } else {
      t.ok(inDlq.has(id), `strict: "${c.name}" rejected, in the DLQ`);
      t.equal(inDlq.get(id), c.body, `strict: "${c.name}" is in the DLQ byte for byte`);
    }
  }
  for (const e of viaSns) {
    if (snsAccepted.has(e.id)) t.ok(strictEnds.has(e.id), `via SNS: ${JSON.stringify(e.data)} accepted`);
    else t.ok(dlqEventIds.has(e.id), 'via SNS: an ORDER with a numeric orderId rejected, in the DLQ');
  }

  // The reason is logged on the last attempt of each rejected message.
  const lastAttempt = new Map(sup.logs().filter((l) => l.msg === 'handler failed; the next receive moves the message to the DLQ').map((l) => [l.messageId, l]));
  for (const id of rejected) {
    const c = sent.get(id)!.c;
    t.match(lastAttempt.get(id)?.error, /invalid input/, `reason logged for "${c.name}": ${lastAttempt.get(id)?.error}`);
  }
  for (const id of undeliverable) t.match(lastAttempt.get(id)?.error, sent.get(id)!.c.undeliverable!, `reason logged for "${sent.get(id)!.c.name}" (lenient)`);
  const numericOrder = finalLog.find((r) => r.queue === 'strict' && r.kind === 'start' && r.id === viaSns[2]!.id);
  t.match(lastAttempt.get(numericOrder?.messageId)?.error, /invalid input: ORDER without a string orderId/, `reason logged for the ORDER with a numeric orderId (via SNS): ${lastAttempt.get(numericOrder?.messageId)?.error}`);
  // Handled once each: a decoded body is not run again after it succeeded.
  const lenientDup = finalLog.filter((r) => r.queue === 'lenient' && r.kind === 'end').length - lenientEnds.size;
  const strictDup = finalLog.filter((r) => r.queue === 'strict' && r.kind === 'end').length - new Set(finalLog.filter((r) => r.queue === 'strict' && r.kind === 'end').map((r) => r.messageId)).size;
  t.equal(lenientDup + strictDup, 0, 'no body handled twice');

  await waitFor('queues empty', async () => {
    const [a, b] = [await w.depth('lenient'), await w.depth('strict')];
    return a.visible + a.inFlight + b.visible + b.inFlight === 0;
  }, 30_000, 250);
  t.equal((await w.depth('lenient', true)).visible, 0, 'nothing else of the lenient queue in its DLQ');
  t.equal((await readyz(sup.http)).status, 200, 'still ready');
  t.equal(sup.child.exitCode, null, 'the supervisor never crashed');
  t.notMatch(sup.output(), /"level":(50|60)/, 'no error or fatal log line');
  sup.child.kill('SIGTERM');
  t.equal((await sup.exited).code, 0, 'exit 0');
  saveOutput('poison', sup.output());

  const strictSent = CASES.length + viaSns.length;
  const strictHandled = acceptedIds.filter((id) => strictEnds.has(id)).length;
  const dead = rejected.filter((id) => inDlq.has(id)).length + (dlqEventIds.has(viaSns[2]!.id) ? 1 : 0);
  const lenientHandled = lenientIds.filter((id) => lenientEnds.has(id)).length;
  const lenientDead = undeliverable.filter((id) => lenientDlq.has(id)).length;
  const strictAccepted = acceptedIds.length;
  t.equal(CASES.length - lenientHandled - lenientDead, 0, 'lenient: nothing lost');
  t.equal(strictSent - strictHandled - dead, 0, 'strict: nothing lost');
  record({
    fault: 'poison',
    case: 'lenient handler',
    injected: `${CASES.length} odd bodies sent raw to SQS (${CASES.map((c) => c.name).join('; ')})`,
    sent: CASES.length,
    handled: lenientHandled,
    deadLettered: lenientDead,
    duplicated: lenientDup,
    lost: CASES.length - lenientHandled - lenientDead,
    recoveryMs: null,
    durationMs: Date.now() - started,
  });
  record({
    fault: 'poison',
    case: 'strict handler',
    injected: `the same ${CASES.length} bodies plus ${viaSns.length} events through SNS (emoji and U+10FFFF, control characters, a numeric orderId); the handler accepts ${strictAccepted}`,
    sent: strictSent,
    handled: strictHandled,
    deadLettered: dead,
    duplicated: strictDup,
    lost: strictSent - strictHandled - dead,
    recoveryMs: null,
    durationMs: Date.now() - started,
    details: { rejectedReasons: rejected.slice(0, 3).map((id) => lastAttempt.get(id)?.error) },
  });
});
