// A handler definition's keys: the list the loader checks is the type's list, and a misspelt key
// fails naming the nearest valid one (issue 13: `maxRecieveCount` was ignored and 5 receives used).
import t from 'tap';
import { DEFINITION_KEYS, checkDefinitionKeys, resolveHandler } from '../../dist/handlers.js';
import { editDistance, nearest } from '../../dist/suggest.js';
import type { AnyHandlerDefinition, HandlerDefinition, TypedHandlerDefinition } from '../../dist/types.js';

// Compile-time: the runtime list and the keys of each definition form are the same keys.
type Equal<A, B> = (<X>() => X extends A ? 1 : 2) extends <X>() => X extends B ? 1 : 2 ? true : false;
const sameKeys: Equal<(typeof DEFINITION_KEYS)[number], keyof HandlerDefinition> = true;
const sameKeysTyped: Equal<(typeof DEFINITION_KEYS)[number], keyof TypedHandlerDefinition<{}>> = true;
const sameKeysAny: Equal<(typeof DEFINITION_KEYS)[number], keyof AnyHandlerDefinition> = true;

const CFG = { queuePrefix: '', concurrency: 10, queues: {} };
const handle = () => true;

t.test('the key list matches the type', async (t) => {
  t.equal(sameKeys, true);
  t.equal(sameKeysTyped, true);
  t.equal(sameKeysAny, true);
  t.equal(new Set(DEFINITION_KEYS).size, DEFINITION_KEYS.length, 'no key twice');
});

t.test('edit distance counts a swap of neighbours as one edit', async (t) => {
  t.equal(editDistance('maxRecieveCount', 'maxReceiveCount'), 1);
  t.equal(editDistance('', 'abc'), 3);
  t.equal(editDistance('abc', ''), 3);
  t.equal(editDistance('kitten', 'sitting'), 3);
  t.equal(editDistance('queue', 'queue'), 0);
});

t.test('nearest suggests close keys only', async (t) => {
  t.equal(nearest('maxRecieveCount', DEFINITION_KEYS), 'maxReceiveCount');
  t.equal(nearest('handler', DEFINITION_KEYS), 'handle');
  t.equal(nearest('event', DEFINITION_KEYS), 'events');
  t.equal(nearest('timeout', DEFINITION_KEYS), 'timeoutMs');
  t.equal(nearest('visibilityTimeoutSec', DEFINITION_KEYS), 'visibilityTimeout');
  t.equal(nearest('MaxReceiveCount', DEFINITION_KEYS), 'maxReceiveCount', 'case is ignored');
  t.equal(nearest('foo', DEFINITION_KEYS), undefined);
  t.equal(nearest('retries', DEFINITION_KEYS), undefined);
  t.equal(nearest('q', DEFINITION_KEYS), undefined);
});

t.test('an unknown key fails naming the file, the key and the nearest valid key', async (t) => {
  const file = '/abs/handlers/email.js';
  t.throws(() => resolveHandler(file, { maxRecieveCount: 3, handle } as HandlerDefinition, CFG), {
    code: 'ERR_HANDLER_INVALID',
    message: 'handler /abs/handlers/email.js: unknown key "maxRecieveCount" (did you mean "maxReceiveCount"?)',
  });
  t.throws(() => checkDefinitionKeys(file, { colour: 'red', handle }), {
    code: 'ERR_HANDLER_INVALID',
    message: `handler /abs/handlers/email.js: unknown key "colour" (valid keys: ${DEFINITION_KEYS.join(', ')})`,
  });
  t.throws(() => checkDefinitionKeys(file, { queu: 'a', retries: 2, handle }), {
    message: 'handler /abs/handlers/email.js: unknown key "queu" (did you mean "queue"?); unknown key "retries"',
  });
});

t.test('every valid key passes', async (t) => {
  const def = Object.fromEntries(DEFINITION_KEYS.map((k) => [k, undefined]));
  t.doesNotThrow(() => checkDefinitionKeys('/abs/x.js', def));
  const full: HandlerDefinition = {
    queue: 'full',
    events: ['A'],
    concurrency: 2,
    visibilityTimeout: 30,
    timeoutMs: 1000,
    maxReceiveCount: 3,
    setup() {},
    handle,
    teardown() {},
  };
  t.equal(resolveHandler('/abs/full.js', full, CFG).queue, 'full');
});
