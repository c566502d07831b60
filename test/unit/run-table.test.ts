// The run table is the one place that knows the shared rows' layout; both threads use this class.
import t from 'tap';
import { RunTable, TABLE_RESULTS } from '../../dist/worker/run-table.js';

t.test('a row goes from free to taken, started and settled', async (t) => {
  const table = new RunTable(4, 1_000);
  t.equal(table.rows, 4);
  t.equal(table.takenBy(2), undefined);
  t.ok(table.notStarted(2));
  table.take(2, 7);
  t.equal(table.takenBy(2), 7);
  t.ok(table.notStarted(2), 'taken, handler not started');
  t.equal(table.startedAtMs(2), undefined);
  table.start(2, 5_000);
  t.notOk(table.notStarted(2));
  t.equal(table.startedAtMs(2), 5_000);
  t.equal(table.finishedWith(2), undefined);
  table.finish(2, 7, 'failure');
  t.equal(table.finishedWith(2), 'failure');
  t.equal(table.takenBy(2), 7, 'still names its thread');
  t.equal(table.startedAtMs(2), undefined, 'a settled row has no running clock');
  t.notOk(table.notStarted(2));
  table.clear(2);
  t.equal(table.takenBy(2), undefined);
  t.ok(table.notStarted(2));
  for (const r of [0, 1, 3]) t.equal(table.takenBy(r), undefined, `row ${r} untouched`);
});

t.test('every result a thread can record reads back', async (t) => {
  const table = new RunTable(TABLE_RESULTS.length, 0);
  TABLE_RESULTS.forEach((r, i) => table.finish(i, 3, r));
  t.same(TABLE_RESULTS.map((_, i) => table.finishedWith(i)), [...TABLE_RESULTS]);
});

t.test('times do not wrap after 24.86 days, nor after years', async (t) => {
  // Broke: ms since the epoch in an Int32 cell wrapped negative after 2^31 ms (24.86 days of uptime).
  const epoch = Date.UTC(2026, 0, 1);
  const table = new RunTable(1, epoch);
  for (const days of [24, 25, 26, 400, 3650]) {
    const at = epoch + days * 86_400_000 + 123;
    table.start(0, at);
    t.equal(table.startedAtMs(0), at, `${days} days after the epoch`);
  }
});

t.test('a clock that stepped back past the epoch still reads as started', async (t) => {
  const table = new RunTable(1, 10_000);
  table.take(0, 1);
  table.start(0, 9_000);
  t.notOk(table.notStarted(0));
  t.equal(table.startedAtMs(0), 10_000, 'clamped to the epoch');
});

t.test('a worker thread sees the same rows through the buffer it was handed', async (t) => {
  const main = new RunTable(2, 500);
  const thread = new RunTable(main.buffer, main.epochMs);
  thread.take(1, 9);
  thread.start(1, 1_500);
  t.equal(main.takenBy(1), 9);
  t.equal(main.startedAtMs(1), 1_500);
});
