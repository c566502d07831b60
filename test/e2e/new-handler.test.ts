// `eventbus new handler NAME` through the real CLI into a temp project: it writes the handler and
// its test, refuses to overwrite either (nothing written), rejects bad names and event types with
// exit 2, and the handler it writes compiles under the repo's strict settings and loads.
import t, { type Test } from 'tap';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync, statSync, symlinkSync, unlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../helpers/process.js';
import { loadHandlers, importHandler } from '../../dist/handlers.js';

const CLI = join(ROOT, 'bin', 'eventbus.js');
const TSC = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

function run(cwd: string, args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, args, { cwd, env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp' } }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ code, out: String(stdout), err: String(stderr) });
    });
  });
}

/** A project that depends on eventbus (this repo, linked) with the repo's compiler settings. */
function project(t: Test): string {
  const dir = t.testdir({
    'package.json': JSON.stringify({ name: 'app', type: 'module', private: true }),
    'tsconfig.json': JSON.stringify({
      extends: join(ROOT, 'tsconfig.base.json'),
      compilerOptions: {
        rootDir: 'handlers',
        outDir: 'dist/handlers',
        composite: false,
        declaration: false,
        sourceMap: false,
        typeRoots: [join(ROOT, 'node_modules', '@types')],
      },
      include: ['handlers/*.ts'],
    }),
  });
  mkdirSync(join(dir, 'node_modules', '@eventbus-sqs'), { recursive: true });
  symlinkSync(ROOT, join(dir, 'node_modules', '@eventbus-sqs', 'eventbus'), 'dir');
  return dir;
}

t.test('writes the handler and its test, then refuses to overwrite either', async (t) => {
  const dir = project(t);
  const r = await run(dir, [CLI, 'new', 'handler', 'email', '--events', 'USER_CREATED,USER_COMMENT']);
  t.equal(r.code, 0, r.err);
  t.match(r.out, /^wrote handlers\/email\.ts\nwrote handlers\/email\.test\.ts\n/);
  t.match(r.out, /npm run build .*\n.*node --test dist\/handlers\/email\.test\.js .*\n.*npm start/);
  const handlerFile = join(dir, 'handlers', 'email.ts');
  const testFile = join(dir, 'handlers', 'email.test.ts');
  const handler = readFileSync(handlerFile, 'utf8');
  const test = readFileSync(testFile, 'utf8');
  t.match(handler, "import { defineHandler } from '@eventbus-sqs/eventbus';");
  t.match(handler, "  queue: 'email',");
  t.match(handler, "  events: ['USER_CREATED', 'USER_COMMENT'],");
  t.match(handler, '//   events: { USER_CREATED: z.object(', 'the schema map form, as a comment');
  t.match(test, "import { makeEvent, runHandler } from '@eventbus-sqs/eventbus/testing';");
  t.match(test, "import handler from './email.js';");
  t.match(test, "test('email handles USER_CREATED', async () => {");
  t.match(test, "test('email handles USER_COMMENT', async () => {");
  t.match(test, "runHandler(handler, makeEvent('USER_COMMENT', ");

  // Both exist: exit 1 naming them, both unchanged.
  const before = [handlerFile, testFile].map((f) => statSync(f).mtimeMs);
  writeFileSync(handlerFile, `${handler}// edited\n`);
  const again = await run(dir, [CLI, 'new', 'handler', 'email', '--events', 'OTHER']);
  t.equal(again.code, 1);
  t.match(again.err, /^eventbus: handlers\/email\.ts and handlers\/email\.test\.ts already exist: not overwriting \(nothing written\)/);
  t.equal(readFileSync(handlerFile, 'utf8'), `${handler}// edited\n`, 'the handler is unchanged');
  t.equal(readFileSync(testFile, 'utf8'), test, 'the test is unchanged');
  t.equal(statSync(testFile).mtimeMs, before[1]);
  // Only the test exists: still nothing written.
  unlinkSync(handlerFile);
  const one = await run(dir, [CLI, 'new', 'handler', 'email']);
  t.equal(one.code, 1);
  t.match(one.err, /^eventbus: handlers\/email\.test\.ts already exists: not overwriting \(nothing written\)/);
  t.notOk(existsSync(handlerFile), 'the handler was not written');
  t.equal(readFileSync(testFile, 'utf8'), test);
});

t.test('the written handler compiles under the strict settings and loads as a handler', async (t) => {
  const dir = project(t);
  t.equal((await run(dir, [CLI, 'new', 'handler', 'email', '--events', 'USER_CREATED,USER_COMMENT'])).code, 0);
  const tsc = await run(dir, [TSC, '-p', 'tsconfig.json']);
  t.equal(tsc.code, 0, `tsc: ${tsc.out}${tsc.err}`);
  const [h, ...rest] = await loadHandlers({ handlersDir: join(dir, 'dist', 'handlers'), queuePrefix: '', concurrency: 10, queues: {} });
  t.equal(rest.length, 0);
  t.match(h, { queue: 'email', events: ['USER_COMMENT', 'USER_CREATED'] });
  // Its handle logs and returns true (success).
  const def = await importHandler(h!.file);
  const lines: unknown[] = [];
  const log = { info: (...args: unknown[]) => lines.push(args) };
  const ret = await def.handle({ specversion: '1.0', id: 'e1', source: 'test', type: 'USER_CREATED', time: new Date().toISOString(), data: {} }, { log } as never);
  t.equal(ret, true);
  t.same(lines, [[{ eventId: 'e1', eventType: 'USER_CREATED' }, 'handled']]);
  // Its test compiled beside it (not loaded as a handler, above) and passes with node --test.
  t.ok(existsSync(join(dir, 'dist', 'handlers', 'email.test.js')), 'the test compiled beside the handler');
  const test = await run(dir, ['--test', '--test-reporter=tap', join('dist', 'handlers', 'email.test.js')]);
  t.equal(test.code, 0, `node --test: ${test.out}${test.err}`);
  t.match(test.out, /^# pass 2$/m, 'one passing test per event type');
  t.match(test.out, /^# fail 0$/m);
});

t.test('without --events the handler takes every event', async (t) => {
  const dir = project(t);
  t.equal((await run(dir, [CLI, 'new', 'handler', 'email'])).code, 0);
  t.notMatch(readFileSync(join(dir, 'handlers', 'email.ts'), 'utf8'), /^ {2}events:/m);
  t.equal((await run(dir, [TSC, '-p', 'tsconfig.json'])).code, 0);
  const [h] = await loadHandlers({ handlersDir: join(dir, 'dist', 'handlers'), queuePrefix: '', concurrency: 10, queues: {} });
  t.equal(h?.events, null);
});

t.test('bad names and event types are usage errors (exit 2) and write nothing', async (t) => {
  const dir = project(t);
  const cases: Array<[string[], RegExp]> = [
    [['x/email'], /handler name "x\/email" is a path: give the queue name and the folder with --dir/],
    [['email.ts'], /handler name "email\.ts" is not a queue name: 1-76 of A-Z a-z 0-9 _ -/],
    [['a'.repeat(77)], /is not a queue name: 1-76/],
    [['_email'], /starts with _: the loader skips such files/],
    [['email', '--events', 'A,,B'], /--events "A,,B" has an empty event type/],
    [['email', '--events', 'A, B'], /event type " B" has a space/],
    [['email', '--events', ''], /--events "" has an empty event type/],
  ];
  for (const [args, re] of cases) {
    const r = await run(dir, [CLI, 'new', 'handler', ...args]);
    t.equal(r.code, 2, args.join(' '));
    t.match(r.err, re);
  }
  t.equal((await run(dir, [CLI, 'new', 'handler', 'a'.repeat(76)])).code, 0, '76 characters fit');
  t.notOk(existsSync(join(dir, 'handlers', 'email.ts')));
  t.notOk(existsSync(join(dir, 'handlers', 'x')));
});

t.test('--help shows an example', async (t) => {
  const r = await run(ROOT, [CLI, 'new', 'handler', '--help']);
  t.equal(r.code, 0);
  t.match(r.out, /Usage: eventbus new handler \[options\] <name>/);
  t.match(r.out, /eventbus new handler email --events USER_CREATED,USER_COMMENT/);
});
