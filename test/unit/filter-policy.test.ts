// Pure parts of provisioning: filter policies, their SNS limits, and the human plan.
import t from 'tap';
import {
  canonicalEqual,
  checkFilterPolicy,
  filterPolicyFor,
  formatActions,
  policySid,
  type ProvisionAction,
} from '../../dist/publisher/provision.js';
import { EventBusError } from '../../dist/errors.js';

t.test('filterPolicyFor', async (t) => {
  t.equal(filterPolicyFor(null), null, 'no events: no filter (every event)');
  t.same(filterPolicyFor(['USER_CREATED']), { 'event-type': ['USER_CREATED'] });
  t.same(
    filterPolicyFor(['USER_COMMENT', 'USER_CREATED', 'A_FIRST', 'USER_COMMENT']),
    { 'event-type': ['A_FIRST', 'USER_COMMENT', 'USER_CREATED'] },
    'sorted and deduplicated, so reruns compare equal',
  );
  const input = ['B', 'A'];
  filterPolicyFor(input);
  t.same(input, ['B', 'A'], 'the input array is not sorted in place');
});

t.test('checkFilterPolicy accepts what SNS accepts', async (t) => {
  t.doesNotThrow(() => checkFilterPolicy(null, 'audit'));
  const events150 = Array.from({ length: 150 }, (_, i) => `EVENT_${i}`);
  t.doesNotThrow(() => checkFilterPolicy(filterPolicyFor(events150), 'email'), '150 values is the limit, inclusive');
  t.doesNotThrow(() => checkFilterPolicy({ a: ['1'], b: ['1'], c: ['1'], d: ['1'], e: ['1', '2', '3'] }, 'q'), '5 keys');
  t.doesNotThrow(() => checkFilterPolicy({ a: ['1', '2', '3', '4', '5'], b: Array.from({ length: 30 }, (_, i) => `${i}`) }, 'q'), '5 x 30 = 150');
});

t.test('checkFilterPolicy rejects what SNS rejects, naming the queue', async (t) => {
  const events151 = Array.from({ length: 151 }, (_, i) => `EVENT_${i}`);
  const limit = (queue: string, pattern: RegExp) => (err: unknown) =>
    err instanceof EventBusError && err.code === 'ERR_FILTER_POLICY_LIMIT' && err.message.includes(queue) && pattern.test(err.message);

  t.throws(() => checkFilterPolicy(filterPolicyFor(events151), 'email'), { code: 'ERR_FILTER_POLICY_LIMIT' });
  let caught: unknown;
  try {
    checkFilterPolicy(filterPolicyFor(events151), 'email');
  } catch (err) {
    caught = err;
  }
  t.ok(limit('email', /151 value combinations.*150/)(caught), `151 values: ${(caught as Error)?.message}`);

  try {
    checkFilterPolicy({ a: ['1'], b: ['1'], c: ['1'], d: ['1'], e: ['1'], f: ['1'] }, 'billing');
    t.fail('6 keys must throw');
  } catch (err) {
    t.ok(limit('billing', /6 keys.*5/)(err), `6 keys: ${(err as Error).message}`);
  }

  try {
    checkFilterPolicy({ a: ['1', '2', '3', '4', '5', '6'], b: Array.from({ length: 26 }, (_, i) => `${i}`) }, 'audit');
    t.fail('6 x 26 = 156 combinations must throw');
  } catch (err) {
    t.ok(limit('audit', /156 value combinations/)(err), 'combinations are the product over keys');
  }

  try {
    checkFilterPolicy({ 'event-type': [] }, 'empty');
    t.fail('a key without values must throw');
  } catch (err) {
    t.ok(limit('empty', /no values/)(err), 'a key without values matches nothing');
  }

  const huge = Array.from({ length: 100 }, (_, i) => `E${i}_${'x'.repeat(3000)}`);
  try {
    checkFilterPolicy(filterPolicyFor(huge), 'big');
    t.fail('over 256 KiB must throw');
  } catch (err) {
    t.ok(limit('big', /bytes/)(err), 'policy size is limited to 256 KiB');
  }
});

t.test('formatActions: one line per action and a counts line', async (t) => {
  const actions: ProvisionAction[] = [
    { kind: 'ok', resource: 'topic events', detail: 'arn:aws:sns:us-east-1:000000000000:events' },
    { kind: 'create', resource: 'queue email-dlq', detail: 'MessageRetentionPeriod=1209600 (14 days)' },
    { kind: 'create', resource: 'queue email', detail: 'VisibilityTimeout=30, redrive to email-dlq after 5' },
    { kind: 'update', resource: 'subscription email', detail: 'every event (no filter) -> event-type in [A, B]' },
    { kind: 'delete', resource: 'subscription old', detail: 'not owned by any handler' },
    { kind: 'ok', resource: 'subscription other', detail: '' },
  ];
  const out = formatActions(actions);
  const lines = out.split('\n');
  t.equal(lines.length, actions.length + 1);
  t.equal(lines[0], '= ok topic events (arn:aws:sns:us-east-1:000000000000:events)');
  t.equal(lines[2], '+ create queue email (VisibilityTimeout=30, redrive to email-dlq after 5)');
  t.equal(lines[3], '~ update subscription email (every event (no filter) -> event-type in [A, B])');
  t.equal(lines[4], '- delete subscription old (not owned by any handler)');
  t.equal(lines[5], '= ok subscription other', 'no empty parentheses for an empty detail');
  t.equal(lines[6], '2 to create, 1 to update, 1 to delete, 2 ok');
  t.equal(formatActions([]), '0 to create, 0 to update, 0 to delete, 0 ok');
});

t.test('policySid is stable per topic, for a name or an ARN', async (t) => {
  t.equal(policySid('events'), 'eventbus-sns-events');
  t.equal(policySid('arn:aws:sns:eu-west-1:123456789012:events'), 'eventbus-sns-events');
  t.not(policySid('events'), policySid('other'));
});

t.test('canonicalEqual compares policies structurally', async (t) => {
  t.ok(canonicalEqual({ a: 1, b: { c: ['x'] } }, { b: { c: 'x' }, a: 1 }), 'key order and one-element arrays do not matter');
  t.notOk(canonicalEqual({ a: ['x', 'y'] }, { a: ['y', 'x'] }), 'order of longer arrays matters');
  t.notOk(canonicalEqual({ a: 1 }, { a: 1, b: 2 }));
  t.ok(canonicalEqual(null, null));
  t.notOk(canonicalEqual(null, { 'event-type': ['A'] }));
});
