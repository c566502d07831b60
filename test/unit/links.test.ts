// Every relative link in README.md, docs/**/*.md and deploy/**/*.md resolves to a file in this
// repository (issue 20: README linked ../shared/SPEC.md, outside it), and a #fragment into a
// Markdown file names one of its headings (GitHub's anchors).
import t from 'tap';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { ROOT } from '../helpers/process.js';

function markdownFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return markdownFiles(p);
    return e.name.endsWith('.md') ? [p] : [];
  });
}

/** The text outside fenced code blocks and inline code spans (links there are examples, not links). */
function prose(text: string): string {
  return text
    .replace(/^(\s*)(`{3,}|~{3,})[^\n]*\n[\s\S]*?^\1?\s*\2[^\n]*$/gm, '')
    .replace(/`[^`\n]*`/g, '');
}

/** Link targets: inline `[text](target "title")`, images, and reference definitions `[x]: target`. */
function links(text: string): string[] {
  const body = prose(text);
  const out: string[] = [];
  for (const m of body.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) out.push(m[1]!);
  for (const m of body.matchAll(/^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+"[^"]*")?\s*$/gm)) out.push(m[1]!);
  return out;
}

/** GitHub's heading anchors: lower case, punctuation dropped, spaces as '-', repeats numbered. */
function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const m of prose(text).matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const base = m[1]!
      .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  // Headings inside code spans lose their backticks, not their words: add those spellings too.
  for (const m of text.matchAll(/^#{1,6}\s+(.+?)\s*$/gm)) {
    out.add(m[1]!.toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-'));
  }
  return out;
}

const files = [join(ROOT, 'README.md'), ...markdownFiles(join(ROOT, 'docs')), ...markdownFiles(join(ROOT, 'deploy'))];

t.test('the pages to check are there', async (t) => {
  t.ok(files.length >= 10, `${files.length} Markdown files`);
  t.ok(files.some((f) => f.endsWith(join('docs', 'REFERENCE.md'))), 'docs/REFERENCE.md is among them');
});

for (const file of files) {
  const rel = relative(ROOT, file);
  t.test(rel, async (t) => {
    const text = readFileSync(file, 'utf8');
    let checked = 0;
    for (const target of links(text)) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto: ...
      checked++;
      const [path, fragment] = target.split('#') as [string, string | undefined];
      const abs = path === '' ? file : resolve(dirname(file), decodeURIComponent(path));
      const inside = abs === ROOT.replace(/\/$/, '') || abs.startsWith(ROOT.endsWith(sep) ? ROOT : ROOT + sep);
      t.ok(inside, `${target}: inside the repository`);
      t.ok(existsSync(abs), `${target}: ${relative(ROOT, abs) || '.'} exists`);
      if (fragment && existsSync(abs) && statSync(abs).isFile() && abs.endsWith('.md')) {
        t.ok(anchors(readFileSync(abs, 'utf8')).has(fragment), `${target}: #${fragment} is a heading of ${relative(ROOT, abs)}`);
      }
    }
    if (rel === 'README.md') t.ok(checked >= 10, `README.md: ${checked} relative links checked`);
  });
}

t.test('README links the reference, not the shared SPEC', async (t) => {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  t.ok(links(readme).includes('docs/REFERENCE.md'));
  t.notMatch(readme, /shared\/SPEC\.md/);
});

t.test('the checker catches what it is for', async (t) => {
  t.same(links('see [x](../outside.md) and `[y](code.md)`\n```\n[z](fenced.md)\n```\n[r]: other.md'), ['../outside.md', 'other.md']);
  t.ok(anchors('## How the supervisor works\n### `eventbus check`\n## A, b & c').has('how-the-supervisor-works'));
  t.ok(anchors('### `eventbus check`').has('eventbus-check'));
  t.ok(anchors('## A, b & c').has('a-b--c'));
});
