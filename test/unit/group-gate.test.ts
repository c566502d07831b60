// The group gate with AWS's FIFO receive: several messages of one group in one receive (fauxqs serves
// one per group per receive, FAUXQS.md F5, so the integration tests never park an ordered message).
// Expected: one of a group runs, the rest park without a slot, the next starts only after the previous
// was deleted, and a failure sends the group's parked messages back to SQS.
import t from 'tap';
import { Capacity } from '../../dist/supervisor/receive/capacity.js';
import { GroupGate, groupFromBody, type RunNow } from '../../dist/supervisor/run/group-gate.js';
import type { InFlight, InFlightMessage } from '../../dist/supervisor/in-flight.js';
import type { QueueRuntime, ReceivedMessage } from '../../dist/supervisor/queue.js';
import type { ResolvedHandler } from '../../dist/handlers.js';
import { createLogger } from '../../dist/log.js';

function setup(o: Partial<ResolvedHandler>, cap = 10) {
  const handler = { queue: 'q', ordered: false, groupConcurrency: null, ...o } as ResolvedHandler;
  const queue = { queue: 'q', url: 'u', arn: 'a', dlqUrl: null, handler } as QueueRuntime;
  const capacity = new Capacity(cap, { q: cap });
  const released: Array<[string, string]> = [];
  const inFlight = { release: async (m: InFlightMessage, reason: string) => (released.push([m.messageId, reason]), true) } as unknown as InFlight;
  const started: Array<{ m: ReceivedMessage; done: (m: ReceivedMessage, deleted: boolean) => void }> = [];
  const run: RunNow = (ms, _held, done) => {
    for (const m of ms) started.push({ m, done });
  };
  const gauges: Record<string, number> = {};
  const gauge = (name: string) => ({ set: (_l: unknown, v: number) => void (gauges[name] = v) });
  const gate = new GroupGate({
    queue,
    capacity,
    inFlight,
    run,
    metrics: { groupsActive: gauge('groups'), waitingForGroup: gauge('waiting') } as never,
    log: createLogger({ level: 'silent' }),
  });
  /** Receives messages the way the poller does: a running slot each, then admit. */
  const receive = async (...ids: string[]) => {
    const n = await capacity.acquire('q', ids.length);
    if (n !== ids.length) throw new Error('no slots');
    const ms = ids.map((id) => ({ messageId: id, receiptHandle: `rh-${id}`, body: '{}', attributes: undefined, sqsAttributes: undefined, receiveCount: 1, sentTimestampMs: undefined, groupId: id[0] }));
    gate.admit(ms, ms.map((m) => ({ messageId: m.messageId }) as InFlightMessage));
  };
  /** A started message's handler finished and its delete (or backoff) settled. */
  const finish = (id: string, deleted: boolean) => {
    const s = started.find((x) => x.m.messageId === id)!;
    capacity.finish('q');
    capacity.settled('q');
    s.done(s.m, deleted);
  };
  const turn = () => new Promise((r) => setImmediate(r));
  return { gate, capacity, started: () => started.map((s) => s.m.messageId), released, gauges, receive, finish, turn };
}

t.test('ordered: one of a group runs, the others park and give their slot back; the next starts after the delete', async (t) => {
  const g = setup({ ordered: true });
  await g.receive('a1', 'a2', 'a3', 'b1');
  t.same(g.started(), ['a1', 'b1'], 'one per group started');
  t.equal(g.capacity.held('q'), 2, 'the parked two gave their slots back (other groups can be received)');
  t.equal(g.gauges.waiting, 2);
  t.equal(g.gauges.groups, 2);
  g.finish('a1', true);
  await g.turn();
  t.same(g.started(), ['a1', 'b1', 'a2'], 'a2 starts once a1 is deleted, with a promoted slot');
  t.equal(g.capacity.held('q'), 2);
  g.finish('b1', true);
  g.finish('a2', true);
  await g.turn();
  t.same(g.started(), ['a1', 'b1', 'a2', 'a3']);
  t.equal(g.gauges.waiting, 0);
});

t.test('ordered: a failure (or a failed delete) releases the group\'s parked messages behind it; other groups go on', async (t) => {
  const g = setup({ ordered: true });
  await g.receive('a1', 'a2', 'a3', 'b1', 'b2');
  g.finish('a1', false);
  await g.turn();
  t.same(g.released, [['a2', 'group'], ['a3', 'group']], "A's parked messages released (visibility 0): SQS serves them after a1's retry");
  t.same(g.started(), ['a1', 'b1'], 'nothing of A started');
  g.finish('b1', true);
  await g.turn();
  t.same(g.started(), ['a1', 'b1', 'b2'], 'B goes on');
  t.equal(g.capacity.held('q'), 1, 'slots balanced');
});

t.test('a full park keeps the slot (backpressure); stop releases what is parked and gives its slots back', async (t) => {
  const g = setup({ ordered: true }, 2);
  // 2 slots: the bound is MIN_PARKED (100) slotless messages; the 101st parked keeps its slot.
  for (let i = 0; i <= 101; i++) await g.receive(`a${i}`);
  t.equal(g.gauges.waiting, 101, '101 parked');
  t.equal(g.capacity.held('q'), 2, 'the running one and the 101st parked hold the two slots');
  const ac = new AbortController();
  const full = await Promise.race([g.capacity.acquire('q', 1, ac.signal).then(() => 'got'), new Promise((r) => setTimeout(() => r('none'), 20))]);
  ac.abort();
  t.equal(full, 'none', 'no slot left: the queue receives no more (backpressure)');
  t.equal(await g.gate.stop(), 101);
  t.equal(g.released.filter(([, r]) => r === 'shutdown').length, 101, 'released at stop');
  t.equal(g.capacity.held('q'), 1, 'only the running message holds a slot');
});

t.test('groupConcurrency on a standard queue: at most N of a group at once; the group comes from the body without MessageGroupId', async (t) => {
  const g = setup({ groupConcurrency: 2 });
  await g.receive('a1', 'a2', 'a3', 'a4', 'b1');
  t.same(g.started(), ['a1', 'a2', 'b1']);
  g.finish('a1', false);
  await g.turn();
  t.same(g.started(), ['a1', 'a2', 'b1', 'a3'], 'a failure on a standard queue only frees the place');
  t.same(g.released, []);
  const event = JSON.stringify({ specversion: '1.0', id: 'x', type: 'T', groupid: 'tenant-7' });
  t.equal(groupFromBody(JSON.stringify({ Type: 'Notification', Message: event })), 'tenant-7', 'SNS envelope');
  t.equal(groupFromBody(event), 'tenant-7', 'raw delivery');
  t.equal(groupFromBody('not json'), undefined);
  t.equal(groupFromBody(JSON.stringify({ Type: 'Notification', Message: '{"id":1}' })), undefined);
});
