// `eventbus new handler NAME`: writes a handler and its test to start from (issue 13, part 6).
import type { Command } from 'commander';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { QUEUE_NAME_RE } from '../aws.js';
import { UsageError } from './common.js';

/** Room left in the 80-character SQS name for the dead-letter queue's `-dlq`. */
const DLQ_SUFFIX = '-dlq';

/** Checks NAME: an SQS queue name with room for `-dlq`, not a path, not a file the loader skips. */
export function checkHandlerName(name: string): void {
  if (/[/\\]/.test(name)) throw new UsageError(`handler name "${name}" is a path: give the queue name and the folder with --dir`);
  if (name.startsWith('_')) throw new UsageError(`handler name "${name}" starts with _: the loader skips such files (they are helpers, not handlers)`);
  if (!QUEUE_NAME_RE.test(name) || !QUEUE_NAME_RE.test(`${name}${DLQ_SUFFIX}`)) {
    const max = 80 - DLQ_SUFFIX.length;
    throw new UsageError(`handler name "${name}" is not a queue name: 1-${max} of A-Z a-z 0-9 _ - (SQS allows 80, less "${DLQ_SUFFIX}" for its dead-letter queue)`);
  }
}

/** Parses --events A,B: event types, non-empty, without spaces; duplicates dropped. */
export function parseEventTypes(list: string | undefined): string[] {
  if (list === undefined) return [];
  const types = list.split(',');
  for (const type of types) {
    if (type === '') throw new UsageError(`--events "${list}" has an empty event type: list them as A,B (no spaces)`);
    if (/\s/.test(type)) throw new UsageError(`--events "${list}": event type "${type}" has a space: list them as A,B (no spaces)`);
  }
  return [...new Set(types)];
}

/** A single-quoted TypeScript string literal. */
function quote(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** An object key: bare when it is an identifier (USER_CREATED), else quoted. */
function key(s: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(s) ? s : quote(s);
}

/** The handler module: a defineHandler with the queue, the events and a handle that logs. */
export function handlerSource(name: string, events: string[]): string {
  const example = events[0] ?? 'USER_CREATED';
  const eventsLines = events.length
    ? [
        '  // The event types this queue subscribes to (omit the key for every event). To check and type',
        "  // each event's data, give a map of Standard Schema validators (zod, valibot, arktype) instead:",
        `  //   events: { ${key(example)}: z.object({ email: z.string() }) },`,
        `  events: [${events.map(quote).join(', ')}],`,
      ]
    : [
        '  // Without `events` this queue takes every event. To subscribe to some, list their types,',
        `  //   events: [${quote(example)}],`,
        "  // or, to check and type each event's data, map them to Standard Schema validators (zod, valibot, arktype):",
        `  //   events: { ${key(example)}: z.object({ email: z.string() }) },`,
      ];
  return [
    `// The ${name} handler: the events it takes and what it does with each.`,
    '// README "Writing a handler": every key, the results, retries and the dead-letter queue.',
    `// Its test is ${name}.test.ts beside it.`,
    "import { defineHandler } from '@eventbus-sqs/eventbus';",
    '',
    'export default defineHandler({',
    `  queue: ${quote(name)}, // the logical queue; on SQS <queuePrefix>${name}, dead letters in ${name}${DLQ_SUFFIX}`,
    ...eventsLines,
    '  // concurrency: 10,       // handlers running at once on this host (default: the global cap)',
    '  // visibilityTimeout: 30, // seconds; extended while the handler runs',
    '  // timeoutMs: 60_000,     // then ctx.signal aborts and the result is `timeout`',
    `  // maxReceiveCount: 5,    // receives before SQS moves the message to ${name}${DLQ_SUFFIX}`,
    '  async handle(event, ctx) {',
    '    // SQS delivers at least once: handling one event twice must do no harm (event.id is stable).',
    '    // Return false or throw to retry with backoff; any other return deletes the message.',
    "    ctx.log.info({ eventId: event.id, eventType: event.type }, 'handled');",
    '    return true;',
    '  },',
    '});',
    '',
  ].join('\n');
}

/** The handler's test: one `node:test` case per event type through the eventbus testing kit. */
export function testSource(name: string, events: string[]): string {
  const cases = (events.length ? events : ['USER_CREATED']).flatMap((type) => [
    '',
    `test(${quote(`${name} handles ${type}`)}, async () => {`,
    "  // The event's data as its publisher sends it.",
    `  const { result, logs } = await runHandler(handler, makeEvent(${quote(type)}, { example: 'data' }));`,
    "  assert.equal(result, 'success', `logs: ${JSON.stringify(logs)}`);",
    '});',
  ]);
  return [
    `// Tests of the ${name} handler with the eventbus testing kit: no SQS, no worker threads.`,
    `// Build, then run: node --test <compiled folder>/${name}.test.js (README: eventbus/testing).`,
    "import { test } from 'node:test';",
    "import assert from 'node:assert/strict';",
    "import { makeEvent, runHandler } from '@eventbus-sqs/eventbus/testing';",
    `import handler from './${name}.js';`,
    ...cases,
    '',
  ].join('\n');
}

/** Writes `<dir>/NAME.ts` and `<dir>/NAME.test.ts`, or neither when either exists. Returns both paths. */
export function writeHandlerScaffold(dir: string, name: string, events: string[]): { handler: string; test: string } {
  const handler = join(dir, `${name}.ts`);
  const test = join(dir, `${name}.test.ts`);
  const taken = [handler, test].filter((f) => existsSync(f));
  if (taken.length) {
    throw new Error(`${taken.map(show).join(' and ')} already exist${taken.length === 1 ? 's' : ''}: not overwriting (nothing written); remove ${taken.length === 1 ? 'it' : 'them'} or pick another NAME`);
  }
  mkdirSync(dir, { recursive: true });
  // 'wx' fails rather than overwrite a file created since the check; then the handler goes too.
  writeFileSync(handler, handlerSource(name, events), { flag: 'wx' });
  try {
    writeFileSync(test, testSource(name, events), { flag: 'wx' });
  } catch (err) {
    rmSync(handler, { force: true });
    throw err;
  }
  return { handler, test };
}

function show(file: string): string {
  const rel = relative(process.cwd(), file);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel : file;
}

/** Registers `eventbus new handler NAME`. */
export function registerNew(program: Command): void {
  const cmd = program.command('new').description('write a starting point: `eventbus new handler NAME`');
  cmd
    .command('handler')
    .description('write <dir>/NAME.ts (a handler for queue NAME) and <dir>/NAME.test.ts (its test); never overwrites')
    .argument('<name>', 'the queue name (also the file name): 1-76 of A-Z a-z 0-9 _ -')
    .option('--events <types>', 'event types it subscribes to, comma-separated (default: every event)')
    .option('--dir <dir>', 'folder of the handler sources', 'handlers')
    .addHelpText(
      'after',
      [
        '',
        'Example:',
        '  eventbus new handler email --events USER_CREATED,USER_COMMENT',
        '',
        'writes handlers/email.ts and handlers/email.test.ts (exit 1, and nothing written, if either exists).',
        'Build (npm run build), run the test (node --test dist/handlers/email.test.js), then npm start.',
      ].join('\n'),
    )
    .action((name: string, o: { events?: string; dir: string }) => {
      checkHandlerName(name);
      const events = parseEventTypes(o.events);
      const dir = resolve(o.dir);
      const { handler, test } = writeHandlerScaffold(dir, name, events);
      const rel = relative(process.cwd(), dir);
      // This layout (handlers/tsconfig.json) compiles handlers/ to dist/handlers; other folders' outDir is the user's.
      const compiled = rel === 'handlers' ? join('dist', 'handlers') : '<outDir>';
      const steps: Array<[string, string]> = [
        ['npm run build', `compile it (${show(dir)}/ to ${compiled}/)`],
        [`node --test ${join(compiled, `${name}.test.js`)}`, 'run its test'],
        ['npm start', 'run it on the local emulator, then from another terminal:'],
        [`npm run eventbus -- publish --dev ${events[0] ?? 'USER_CREATED'} '{"example":"data"}'`, ''],
      ];
      const width = Math.max(...steps.filter(([, why]) => why).map(([c]) => c.length));
      process.stdout.write(
        [
          `wrote ${show(handler)}`,
          `wrote ${show(test)}`,
          '',
          'next:',
          ...steps.map(([c, why]) => `  ${why ? `${c.padEnd(width)}   # ${why}` : c}`),
          '',
        ].join('\n'),
      );
    });
}
