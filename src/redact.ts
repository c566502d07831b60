// The one redaction of credentials in connection strings, used wherever a URL or DSN is printed
// (start log, `eventbus config`, store locations) and on error texts that may carry one (pg errors).

export const REDACTED = '[redacted]';

/** `scheme://` followed by the rest of a URL token (up to white space or a quote). */
const URL_TOKEN = /\b([a-z][a-z0-9+.-]*:\/\/)([^\s'"<>]*)/gi;
/**
 * A password given as a parameter: `?password=`, `&sslpassword=` in a URL, `password = 'x y'` in a
 * libpq key=value string, `"password":"x"` in JSON. The value runs to the next separator, or is quoted.
 */
const PASSWORD_PARAM = /((?:\b(?:ssl)?pass(?:word|wd)?\s*=|["'](?:ssl)?pass(?:word|wd)?["']\s*:)\s*)('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|[^\s&;,#'"]*)/gi;

/**
 * Returns `text` with every password it can find replaced by `[redacted]`:
 * - in URLs of any scheme (`postgres://`, `postgresql://`, `socket://`): the userinfo's password,
 *   taking the LAST `@` of the token as its end, as the WHATWG URL parser (and so pg) does, so an
 *   unencoded `@` or `/` in the password is covered; the user name is kept;
 * - `password=` / `sslpassword=` parameters (URL query, libpq key=value, quoted or not), and JSON
 *   `"password": "..."`;
 * - when `known` (the configured connection string) is given, any occurrence of its password, raw,
 *   percent-decoded, or a piece of it (an error may quote part of a URL the parser split wrongly).
 */
export function redactDsn(text: string, known?: string | null): string {
  let out = text.replace(URL_TOKEN, (_m, scheme: string, rest: string) => scheme + redactUserinfo(rest));
  out = out.replace(PASSWORD_PARAM, (_m, key: string, value: string) => (value === '' || value === REDACTED ? key + value : key + REDACTED));
  for (const secret of knownSecrets(known)) out = out.split(secret).join(REDACTED);
  return out;
}

function redactUserinfo(rest: string): string {
  const at = rest.lastIndexOf('@');
  if (at < 0) return rest;
  const userinfo = rest.slice(0, at);
  const colon = userinfo.indexOf(':');
  if (colon < 0 || userinfo.slice(colon + 1) === REDACTED) return rest;
  return `${userinfo.slice(0, colon)}:${REDACTED}${rest.slice(at)}`;
}

/** Shortest piece of a known password worth replacing on its own. */
const MIN_PIECE = 4;

/** The password of a connection string in every spelling an error text might quote, longest first. */
function knownSecrets(dsn: string | null | undefined): string[] {
  if (!dsn) return [];
  const found = new Set<string>();
  const add = (s: string | undefined) => {
    if (!s) return;
    found.add(s);
    try {
      found.add(decodeURIComponent(s));
    } catch {
      // not percent-encoded
    }
    for (const piece of s.split(/[/?#@:&=]/)) if (piece.length >= MIN_PIECE) found.add(piece);
  };
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(dsn);
  if (scheme) {
    const rest = dsn.slice(scheme[0].length);
    const at = rest.lastIndexOf('@');
    const colon = rest.indexOf(':');
    if (at >= 0 && colon >= 0 && colon < at) add(rest.slice(colon + 1, at));
  }
  for (const m of dsn.matchAll(PASSWORD_PARAM)) add(unquote(m[2] ?? ''));
  found.delete('');
  found.delete(REDACTED);
  return [...found].sort((a, b) => b.length - a.length);
}

function unquote(v: string): string {
  return /^(['"]).*\1$/s.test(v) ? v.slice(1, -1).replace(/\\(.)/g, '$1') : v;
}

/**
 * A copy of `err` whose message, stack and cause chain went through redactDsn (name and `code`
 * kept), for errors from a driver that was handed `dsn`. Other fields are dropped: a driver may hang
 * its whole config on an error.
 */
export function redactError(err: unknown, dsn?: string | null, depth = 0): Error {
  if (!(err instanceof Error)) return new Error(redactDsn(String(err), dsn));
  const copy = new Error(redactDsn(err.message, dsn));
  copy.name = err.name;
  copy.stack = err.stack === undefined ? undefined : redactDsn(err.stack, dsn);
  for (const k of ['code', 'severity', 'errno', 'syscall'] as const) {
    const v = (err as unknown as Record<string, unknown>)[k];
    if (typeof v === 'string' || typeof v === 'number') (copy as unknown as Record<string, unknown>)[k] = v;
  }
  if (err.cause !== undefined && depth < 5) copy.cause = redactError(err.cause, dsn, depth + 1);
  return copy;
}
