// What crosses the thread boundary for a thrown value (issue 13): plain data that keeps the stack
// and the cause chain, bounded, for any value a handler can throw.
import t from 'tap';
import { reviveError, stackForEvent, toErrorInfo, truncateUtf8 } from '../../dist/errors.js';

t.test('an Error: name, message, stack, string code and causes, as structured-clone-safe data', async (t) => {
  const inner = Object.assign(new RangeError('inner'), { code: 'E_INNER' });
  const info = toErrorInfo(new Error('outer', { cause: inner }));
  t.equal(info.name, 'Error');
  t.equal(info.message, 'outer');
  t.match(info.stack, /^Error: outer\n\s+at /);
  t.match(info.cause, { name: 'RangeError', message: 'inner', code: 'E_INNER' });
  t.same(structuredClone(info), info, 'survives postMessage unchanged');
});

t.test('cycles, deep chains, throwing getters and odd values never throw', async (t) => {
  const a = new Error('a');
  const b = new Error('b', { cause: a });
  a.cause = b;
  let depth = 0;
  for (let e = toErrorInfo(a) as { cause?: unknown } | undefined; e; e = (e as { cause?: unknown }).cause as typeof e) depth++;
  t.ok(depth <= 9, `a cycle stops at the depth bound (${depth})`);
  const self = new Error('self');
  self.cause = self;
  t.notOk(toErrorInfo(self).cause, 'a cause that is the error itself is not followed');
  const nasty = new Error('nasty');
  Object.defineProperty(nasty, 'message', {
    get() {
      throw new Error('getter');
    },
  });
  t.match(toErrorInfo(nasty), { name: 'NonError', message: /cannot be described/ });
  t.same(toErrorInfo(undefined), { name: 'NonError', message: 'undefined was thrown' });
  t.same(toErrorInfo(null), { name: 'NonError', message: 'null was thrown' });
  t.same(toErrorInfo(42), { name: 'NonError', message: 'a number was thrown: 42' });
  t.same(toErrorInfo([1, 2]), { name: 'NonError', message: 'an array was thrown: [1,2]' });
  const circular: Record<string, unknown> = {};
  circular.self = circular;
  t.match(toErrorInfo(circular), { name: 'NonError', message: /object was thrown/ });
  t.ok(toErrorInfo(new Error('x'.repeat(100_000))).message.length <= 4096, 'a huge message is bounded');
});

t.test('revived for the log: the original class name and the causes', async (t) => {
  const e = reviveError(toErrorInfo(new TypeError('t', { cause: new Error('c') })));
  t.equal(e.constructor.name, 'TypeError', "pino's err serializer reports the constructor's name");
  t.equal(e.name, 'TypeError');
  t.match((e.cause as Error).message, 'c');
  t.ok(e instanceof Error);
});

t.test('the failure event stack: causes included, at most 2 KiB, never a split character', async (t) => {
  t.equal(stackForEvent({ name: 'NonError', message: 'x' }), null, 'nothing with a stack');
  const s = stackForEvent({ name: 'Error', message: 'm', stack: 'Error: m\n    at f (a.js:1:2)', cause: { name: 'E2', message: 'n', stack: 'E2: n' } });
  t.equal(s, 'Error: m\n    at f (a.js:1:2)\ncaused by: E2: n');
  for (const ch of ['a', 'é', '€', '😀']) {
    const cut = truncateUtf8(ch.repeat(5_000), 2_048);
    t.ok(Buffer.byteLength(cut) <= 2_048, `${ch}: within the bound`);
    t.notMatch(cut, /\uFFFD/, `${ch}: no broken character`);
    t.ok(cut.endsWith('…'));
  }
  t.equal(truncateUtf8('short', 2_048), 'short');
});
