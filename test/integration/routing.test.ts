// Events reach exactly the queues whose filter policy matches; successes are deleted.
import t from 'tap';
import { startBus, waitFor } from '../helpers/bus.js';

t.test('filter policies route each event type to its handlers; success deletes', async (t) => {
  const bus = await startBus([
    { queue: 'email', events: ['USER_CREATED', 'USER_COMMENT'] },
    { queue: 'billing', events: ['USER_CREATED', 'STRIPE_INCOMING_WEBHOOK'] },
    { queue: 'audit' }, // no events: every event
  ]);
  t.teardown(() => bus.stop());

  await bus.publisher.createEvent('USER_CREATED', { email: 'ada@example.com' });
  await bus.publisher.createEvent('USER_COMMENT', { comment: 'hi' });
  await bus.publisher.createEvent('STRIPE_INCOMING_WEBHOOK', { type: 'invoice.paid' });
  await bus.publisher.createEvent('SOMETHING_ELSE', {});

  await waitFor('audit to see all 4 events', () => bus.ended('audit').length >= 4);
  await waitFor('email and billing to see theirs', () => bus.ended('email').length >= 2 && bus.ended('billing').length >= 2);
  const types = (q: string) => bus.ended(q).map((s) => s.type).sort();
  t.same(types('email'), ['USER_COMMENT', 'USER_CREATED']);
  t.same(types('billing'), ['STRIPE_INCOMING_WEBHOOK', 'USER_CREATED']);
  t.same(types('audit'), ['SOMETHING_ELSE', 'STRIPE_INCOMING_WEBHOOK', 'USER_COMMENT', 'USER_CREATED']);

  const created = bus.ended('email').find((s) => s.type === 'USER_CREATED')!;
  t.same(created.data, { email: 'ada@example.com' }, 'the handler gets the data');
  t.equal(created.receiveCount, 1);

  for (const q of ['email', 'billing', 'audit']) {
    await waitFor(`${q} to be empty`, async () => {
      const d = await bus.depth(q);
      return d.visible === 0 && d.inFlight === 0;
    });
  }
  const metrics = await bus.sup.metrics.registry.getSingleMetricAsString('eventbus_messages_deleted_total');
  t.match(metrics, /eventbus_messages_deleted_total\{queue="audit"\} 4/);
  t.match(metrics, /eventbus_messages_deleted_total\{queue="email"\} 2/);
  // Nothing more arrives later: no duplicates.
  await new Promise((r) => setTimeout(r, 1500));
  t.equal(bus.started('audit').length, 4, 'each event handled once');
});
