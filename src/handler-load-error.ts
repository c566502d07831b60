// Why a handler module failed to load, and where (file:line:column).
//
// Node's import() reports a syntax error without its location: on Node 20, 22 and 24 the stack of a
// parse error holds only loader frames (the location sits in a private symbol, printed only for an
// uncaught error). `node --check FILE` is stable on all three, parses with the same module-format
// rules as import(), and prints `FILE:LINE`, the source line and a caret under the column. It runs
// only for a load that failed with a SyntaxError and no location. (vm.SourceTextModule would parse
// in process but needs --experimental-vm-modules; vm.Script and vm.compileFunction reject ESM.)
import { execFile } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** A parse of one file takes milliseconds; this only bounds a stuck child. */
const CHECK_TIMEOUT_MS = 10_000;

/** `SyntaxError: Unexpected token '}' at /abs/handlers/bad.js:12:5`, or without ` at ...` when unknown. */
export async function describeLoadError(file: string, err: unknown): Promise<string> {
  if (!(err instanceof Error)) return String(err);
  const what = `${err.name}: ${err.message}`;
  const at = locationInStack(err.stack ?? '');
  if (at) return `${what} at ${at}`;
  if (err.name !== 'SyntaxError') return what;
  const checked = await checkSyntax(file);
  if (checked === 'parses') return `${what} (in a module it imports: the handler file itself parses)`;
  return checked ? `${what} at ${checked}` : what;
}

/**
 * The location an error's stack gives: the `file:///x.js:LINE` header with a caret line that Node
 * puts on link errors (a missing named export), else the top frame in a file.
 */
export function locationInStack(stack: string): string | undefined {
  const header = /^(file:\/\/[^\n]+?):(\d+)\n[^\n]*\n([ \t]*)\^/.exec(stack);
  if (header) return `${toPath(header[1]!)}:${header[2]}:${header[3]!.length + 1}`;
  const frame = /^\s+at (?:.*? \()?(file:\/\/[^\s)]+?):(\d+):(\d+)\)?$/m.exec(stack);
  if (frame) return `${toPath(frame[1]!)}:${frame[2]}:${frame[3]}`;
  return undefined;
}

/** `FILE:LINE:COLUMN` of the file's first syntax error, 'parses' when it has none, undefined when unknown. */
export async function checkSyntax(file: string): Promise<string | 'parses' | undefined> {
  // NODE_OPTIONS is dropped: a --require or --import in it has no business in a parse.
  const env = { ...process.env };
  delete env.NODE_OPTIONS;
  const result = await new Promise<{ ok: boolean; stderr: string }>((resolve) => {
    execFile(process.execPath, ['--check', file], { env, timeout: CHECK_TIMEOUT_MS, encoding: 'utf8' }, (error, _stdout, stderr) => {
      resolve({ ok: !error, stderr: String(stderr ?? '') });
    });
  });
  if (result.ok) return 'parses';
  const names = [file, pathToFileURL(file).href].map((n) => n.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('|');
  const m = new RegExp(`^(?:${names}):(\\d+)\\n[^\\n]*\\n([ \\t]*)\\^`, 'm').exec(result.stderr);
  return m ? `${file}:${m[1]}:${m[2]!.length + 1}` : undefined;
}

function toPath(url: string): string {
  try {
    return fileURLToPath(url);
  } catch {
    return url;
  }
}
