// The real loader on handler folders written to a temp dir: errors a user can act on (issue 13).
// A syntax error names file, line and column; a folder of uncompiled TypeScript says how to build;
// test files compiled beside the handlers are not handlers.
import t, { type Test } from 'tap';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { importHandler, listHandlerFiles, loadHandlers } from '../../dist/handlers.js';

const CFG = { queuePrefix: '', concurrency: 10, queues: {} };
const OK = 'export default { handle() { return true; } };\n';

/** A temp folder holding `files` (name → source), with a package.json making .js ESM. */
function folder(t: Test, files: Record<string, string>): string {
  return t.testdir({ 'package.json': JSON.stringify({ type: 'module' }), ...files });
}

t.test('a syntax error names the file, line and column', async (t) => {
  const dir = folder(t, {
    'bad.js': ['export default {', '  queue: "bad",', '  handle() {', '    return true;', '  }}', '};', ''].join('\n'),
    'tabs.mjs': 'export default {\n\thandle() { return = 1; },\n};\n',
  });
  const bad = join(dir, 'bad.js');
  await t.rejects(importHandler(bad), {
    code: 'ERR_HANDLER_INVALID',
    message: `handler ${bad} failed to load: SyntaxError: Unexpected token '}' at ${bad}:6:1`,
  });
  const tabs = join(dir, 'tabs.mjs');
  await t.rejects(importHandler(tabs), { message: `handler ${tabs} failed to load: SyntaxError: Unexpected token '=' at ${tabs}:2:20` });
  // The start (loadHandlers) fails with the same line.
  await t.rejects(loadHandlers({ ...CFG, handlersDir: dir }), { code: 'ERR_HANDLER_INVALID', message: new RegExp(`at ${bad}:6:1$`) });
});

t.test('a missing named import and a throw at import time name where', async (t) => {
  const dir = folder(t, {
    '_lib.mjs': 'export const one = 1;\n',
    'link.mjs': `import { two } from './_lib.mjs';\n${OK}`,
    'env.mjs': `const url = process.env.NO_SUCH_VAR_13;\nif (!url) throw new Error('NO_SUCH_VAR_13 is not set');\n${OK}`,
  });
  const link = join(dir, 'link.mjs');
  await t.rejects(importHandler(link), {
    message: `handler ${link} failed to load: SyntaxError: The requested module './_lib.mjs' does not provide an export named 'two' at ${link}:1:10`,
  });
  const env = join(dir, 'env.mjs');
  await t.rejects(importHandler(env), { message: `handler ${env} failed to load: Error: NO_SUCH_VAR_13 is not set at ${env}:2:17` });
});

t.test('a syntax error in a module the handler imports says the handler file parses', async (t) => {
  const dir = folder(t, { '_broken.mjs': 'export const x = ;\n', 'uses.mjs': `import './_broken.mjs';\n${OK}` });
  const uses = join(dir, 'uses.mjs');
  await t.rejects(importHandler(uses), {
    message: `handler ${uses} failed to load: SyntaxError: Unexpected token ';' (in a module it imports: the handler file itself parses)`,
  });
});

t.test('a misspelt key fails the load naming the nearest key, before the missing handle', async (t) => {
  const dir = folder(t, {
    'email.mjs': 'export default { queue: "email", maxRecieveCount: 3, handle() { return true; } };\n',
    'typo.mjs': 'export default { handler() { return true; } };\n',
  });
  await t.rejects(loadHandlers({ ...CFG, handlersDir: dir }), {
    code: 'ERR_HANDLER_INVALID',
    message: `handler ${join(dir, 'email.mjs')}: unknown key "maxRecieveCount" (did you mean "maxReceiveCount"?)`,
  });
  await t.rejects(importHandler(join(dir, 'typo.mjs')), { message: /unknown key "handler" \(did you mean "handle"\?\)$/ });
});

t.test('a folder of TypeScript sources only fails saying they are not compiled and how to build', async (t) => {
  const dir = folder(t, { 'email.ts': 'export default {};\n', 'email.test.ts': '', 'types.d.ts': '' });
  const err = await listHandlerFiles(dir).then(
    () => undefined,
    (e: Error & { code?: string }) => e,
  );
  t.equal(err?.code, 'ERR_HANDLERS_DIR');
  t.equal(
    err?.message,
    `handlers folder ${dir} holds TypeScript sources (email.ts) that are not compiled, and no .js/.mjs handler: ` +
      'Node runs the compiled JavaScript. Build them (npm run build, or tsc with an outDir, e.g. dist/handlers) ' +
      'and point handlersDir (EVENTBUS_HANDLERS_DIR) at the compiled folder',
  );
  // loadHandlers (the supervisor's and the CLI's path) fails the same way.
  await t.rejects(loadHandlers({ ...CFG, handlersDir: dir }), { code: 'ERR_HANDLERS_DIR', message: /not compiled/ });
});

t.test('an empty folder, or one of declarations and tests only, lists no handler (as before)', async (t) => {
  t.same(await listHandlerFiles(folder(t, {})), []);
  t.same(await listHandlerFiles(folder(t, { 'email.d.ts': '', 'email.test.ts': '', 'email.spec.mts': '', '_util.ts': '' })), []);
  t.same(await loadHandlers({ ...CFG, handlersDir: folder(t, {}) }), []);
});

t.test('compiled test files beside the handlers are not handlers; sources beside compiled ones are fine', async (t) => {
  const dir = folder(t, {
    'email.js': OK,
    'email.ts': '',
    'email.test.js': 'throw new Error("a test file was loaded as a handler");\n',
    'email.spec.js': 'throw new Error("a spec file was loaded as a handler");\n',
    'email.test.mjs': 'throw new Error("a test file was loaded as a handler");\n',
    'billing.spec.mjs': 'throw new Error("a spec file was loaded as a handler");\n',
    'contest.js': OK,
  });
  mkdirSync(join(dir, 'sub'));
  writeFileSync(join(dir, 'sub', 'x.js'), OK);
  t.same(await listHandlerFiles(dir), [join(dir, 'contest.js'), join(dir, 'email.js')]);
  t.same((await loadHandlers({ ...CFG, handlersDir: dir })).map((h) => h.queue), ['contest', 'email']);
});

t.test('queues.<name>.groupConcurrency overrides the handler\'s; refused for an ordered handler, naming the config key', async (t) => {
  const dir = folder(t, {
    'fair.mjs': 'export default { queue: "fair", groupConcurrency: 4, handle() { return true; } };\n',
    'plain.mjs': 'export default { queue: "plain", handle() { return true; } };\n',
  });
  const byQueue = async (queues: Record<string, { groupConcurrency?: number }>) => new Map((await loadHandlers({ ...CFG, queues, handlersDir: dir })).map((h) => [h.queue, h.groupConcurrency]));
  t.same(await byQueue({}), new Map([['fair', 4], ['plain', null]]), 'the handlers\' own values');
  t.same(await byQueue({ fair: { groupConcurrency: 1 }, plain: { groupConcurrency: 2 } }), new Map([['fair', 1], ['plain', 2]]), 'the config wins, and can set it');
  const ordered = folder(t, { 'seq.mjs': 'export default { queue: "seq", ordered: true, handle() { return true; } };\n' });
  await t.rejects(loadHandlers({ ...CFG, queues: { seq: { groupConcurrency: 2 } }, handlersDir: ordered }), {
    code: 'ERR_HANDLER_INVALID',
    message: /config queues\.seq\.groupConcurrency is for standard queues/,
  });
});
