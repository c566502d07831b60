// Shared by test/e2e/readme.test.ts and readme-package.test.ts: README's fenced blocks and their
// `<!-- not run: reason -->` markers, and running a block with bash.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from '../helpers/process.js';

export const SHELLS = new Set(['sh', 'bash', 'shell', 'console', 'zsh']);
export const MARK = /^\s*<!--\s*not run:\s*(.*?)\s*-->\s*$/;

export interface Block {
  line: number;
  lang: string;
  code: string;
  /** The reason of its `<!-- not run: ... -->` marker; null = it runs. */
  notRun: string | null;
}

/** The fenced code blocks of a Markdown text, with the marker on the line before each (blank lines between allowed). */
export function fencedBlocks(text: string): { blocks: Block[]; strayMarks: number[] } {
  const lines = text.split('\n');
  const blocks: Block[] = [];
  const marks = new Map<number, string>(); // line index of a marker -> reason
  lines.forEach((l, i) => {
    const m = MARK.exec(l);
    if (m) marks.set(i, m[1]!);
  });
  const used = new Set<number>();
  for (let i = 0; i < lines.length; i++) {
    const open = /^(\s*)(`{3,}|~{3,})\s*([\w-]*)/.exec(lines[i]!);
    if (!open) continue;
    const [, indent, fence, lang] = open as unknown as [string, string, string, string];
    const body: string[] = [];
    let j = i + 1;
    while (j < lines.length && !new RegExp(`^\\s*${fence[0] === '`' ? '`' : '~'}{${fence.length},}\\s*$`).test(lines[j]!)) {
      body.push(lines[j]!.startsWith(indent) ? lines[j]!.slice(indent.length) : lines[j]!);
      j++;
    }
    let k = i - 1;
    while (k >= 0 && lines[k]!.trim() === '') k--;
    const notRun = k >= 0 && marks.has(k) ? marks.get(k)! : null;
    if (notRun !== null) used.add(k);
    blocks.push({ line: i + 1, lang: lang.toLowerCase(), code: body.join('\n'), notRun });
    i = j;
  }
  const strayMarks = [...marks.keys()].filter((k) => !used.has(k)).map((k) => k + 1);
  return { blocks, strayMarks };
}

export const README = readFileSync(join(ROOT, 'README.md'), 'utf8');
export const { blocks, strayMarks } = fencedBlocks(README);
export const shellBlocks = blocks.filter((b) => SHELLS.has(b.lang));

/** The bash lines every block starts with: npm and npx as README uses them, nothing else. */
export const PRELUDE = `
npm() {
  if [ "$1" = run ] && [ "$2" = eventbus ]; then shift 2; [ "\${1:-}" = -- ] && shift; eventbus "$@"; return; fi
  echo "README test: 'npm $*' is not run here: mark its block <!-- not run: reason -->" >&2; return 97
}
npx() {
  if [ "$1" = eventbus ]; then shift; eventbus "$@"; return; fi
  echo "README test: 'npx $*' is not run here: mark its block <!-- not run: reason -->" >&2; return 97
}
`;

export function run(code: string, cwd: string, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const child = spawn('bash', ['-e', '-o', 'pipefail', '-c', `${PRELUDE}\n${code}\n`], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('exit', (c) => {
      clearTimeout(timer);
      resolve({ code: c, out });
    });
  });
}

export function waitFor(child: ChildProcess, output: () => string, re: RegExp, timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${re}; output:\n${output().slice(-3000)}`));
    }, timeoutMs);
    const check = () => {
      if (re.test(output())) {
        cleanup();
        resolve();
      }
    };
    const onExit = () => {
      cleanup();
      reject(new Error(`exited while waiting for ${re}; output:\n${output().slice(-3000)}`));
    };
    const cleanup = () => {
      clearTimeout(timer);
      child.stdout!.off('data', check);
      child.stderr!.off('data', check);
      child.off('exit', onExit);
    };
    child.stdout!.on('data', check);
    child.stderr!.on('data', check);
    child.on('exit', onExit);
    check();
  });
}

