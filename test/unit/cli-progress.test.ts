// Progress of the long CLI operations off a terminal (issue 20): a line at the first update, then at
// most one per interval, and one at the end, so CI logs show a long redrive or replay.
import t from 'tap';
import { PassThrough } from 'node:stream';
import { createProgress } from '../../dist/cli/progress.js';

t.test('off a terminal: first update, then one line per interval, and the end', async (t) => {
  const out = new PassThrough();
  let text = '';
  out.on('data', (d: Buffer) => (text += d.toString()));
  let now = 1_000;
  const p = createProgress({
    stream: out,
    barFormat: '{bar}',
    line: (done, total, pl) => `${done}/${total ?? '?'} ${pl.x}`,
    total: 100,
    payload: { x: 'a' },
    intervalMs: 5_000,
    now: () => now,
  });
  p.update(10, { x: 'b' });
  now += 4_999;
  p.update(20, { x: 'c' });
  now += 1;
  p.update(30, { x: 'd' });
  now += 100;
  p.update(25, { x: 'e' });
  p.shrink(10);
  p.stop();
  t.same(text.trim().split('\n'), ['10/100 b', '30/100 d', '30/90 e'], 'at 0 ms, at 5 s, and at the end; never backwards; the total shrinks');
});

t.test('off a terminal: the total grows past an estimate, and nothing is printed for a run that did nothing', async (t) => {
  const out = new PassThrough();
  let text = '';
  out.on('data', (d: Buffer) => (text += d.toString()));
  const p = createProgress({ stream: out, barFormat: '{bar}', line: (d, tot) => `${d}/${tot}`, total: 5, payload: {}, now: () => 0 });
  p.update(8, {});
  p.stop();
  t.same(text.trim().split('\n'), ['8/8'], 'the estimate was low: the total follows what was done; the end line equals the last one and is not repeated');
  const quiet = new PassThrough();
  let none = '';
  quiet.on('data', (d: Buffer) => (none += d.toString()));
  createProgress({ stream: quiet, barFormat: '{bar}', line: () => 'x', total: null, payload: {} }).stop();
  t.equal(none, '');
});
