// package.json `engines` names exactly the supported Node lines: 20.11+, 22 and 24 (issue 20).
import t from 'tap';
import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { engines: { node: string } };

/** Whether `version` satisfies a range of `^X.Y.Z` alternatives joined by `||` (the only form we use). */
function satisfies(range: string, version: string): boolean {
  const [major, minor, patch] = version.replace(/^v/, '').split('.').map(Number) as [number, number, number];
  return range.split('||').some((alt) => {
    const m = /^\^(\d+)\.(\d+)\.(\d+)$/.exec(alt.trim());
    if (!m) throw new Error(`engines.node: "${alt.trim()}" is not of the form ^X.Y.Z`);
    const [a, b, c] = [Number(m[1]), Number(m[2]), Number(m[3])];
    return major === a && (minor > b || (minor === b && patch >= c));
  });
}

t.test('engines.node accepts 20.11+, 22 and 24, and nothing else', async (t) => {
  const range = pkg.engines.node;
  for (const v of ['20.11.0', '20.19.5', '22.0.0', '22.21.1', '24.0.0', '24.11.0']) t.ok(satisfies(range, v), `${v} is supported`);
  for (const v of ['18.20.0', '20.10.0', '21.7.3', '23.11.0', '25.0.0', '26.0.0']) t.notOk(satisfies(range, v), `${v} is not`);
  t.ok(satisfies(range, process.version), `the Node running this test (${process.version}) is one of them`);
});
