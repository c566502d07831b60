// What `eventbus check` reports: findings, their order, the text lines and the --json document.

/** error: cannot work (exit 1); warning: works, but not as configured or not for long; info: a figure or a hint. */
export type Level = 'error' | 'warning' | 'info';

/** One finding of one rule. `queue` is the logical queue name when the finding is about one queue. */
export interface Finding {
  level: Level;
  rule: string;
  queue?: string;
  message: string;
}

const ORDER: Record<Level, number> = { error: 0, warning: 1, info: 2 };

/** Errors first, then warnings, then infos; within a level, rule order (stable sort). */
export function sortFindings(findings: readonly Finding[]): Finding[] {
  return [...findings].sort((a, b) => ORDER[a.level] - ORDER[b.level]);
}

export interface CheckSummary {
  errors: number;
  warnings: number;
  infos: number;
}

export function summarize(findings: readonly Finding[]): CheckSummary {
  const n = (l: Level) => findings.filter((f) => f.level === l).length;
  return { errors: n('error'), warnings: n('warning'), infos: n('info') };
}

/** Exit status of `eventbus check`: 1 with any error, else 0 (usage errors exit 2 before this). */
export function exitCodeOf(findings: readonly Finding[]): 0 | 1 {
  return findings.some((f) => f.level === 'error') ? 1 : 0;
}

/** One line per finding: `error filter-policy-combinations [orders]: ...`. */
export function formatFinding(f: Finding): string {
  return `${f.level} ${f.rule}${f.queue !== undefined ? ` [${f.queue}]` : ''}: ${f.message}`;
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** The text report: one line per finding, then the summary line. */
export function formatText(findings: readonly Finding[], scope: string): string {
  const s = summarize(findings);
  const lines = findings.map(formatFinding);
  lines.push(`check: ${plural(s.errors, 'error')}, ${plural(s.warnings, 'warning')}, ${plural(s.infos, 'info')} (${scope})`);
  return lines.join('\n');
}

/** The --json document (README "eventbus check"): stable keys, findings in report order. */
export interface CheckReport {
  ok: boolean;
  live: boolean;
  summary: CheckSummary;
  findings: Finding[];
}

export function toReport(findings: readonly Finding[], live: boolean): CheckReport {
  return { ok: exitCodeOf(findings) === 0, live, summary: summarize(findings), findings: [...findings] };
}
