// `eventbus check`: the handlers and config against AWS's quotas and against each other, with no
// AWS call (the live comparison is src/check/live.ts, read by the CLI).
import type { Config } from '../config.js';
import { sortFindings, type Finding } from './findings.js';
import { collectPublishers, type CheckHandler, type CheckInput, type PublisherManifest } from './input.js';
import { runRules } from './rules.js';

export { RULES, type Rule } from './rules.js';
export { LIVE_RULES, runLiveRules, type LiveSnapshot } from './live.js';
export { exitCodeOf, formatText, sortFindings, toReport, type CheckReport, type Finding, type Level } from './findings.js';
export { loadForCheck, parseManifest, type CheckHandler, type CheckInput, type PublisherManifest } from './input.js';

/** The rules' input from loaded handlers, the config and the manifests. */
export function checkInput(
  handlers: CheckHandler[],
  config: Readonly<Config>,
  manifests: PublisherManifest[],
  region: string | null,
): CheckInput {
  return {
    handlers,
    config,
    manifests,
    publishers: collectPublishers(handlers, manifests, config),
    region,
    // Issue 18 (S3 payloads) sets this from its config.
    claimCheckBytes: null,
  };
}

/** The static findings, sorted (errors first). */
export function runCheck(input: CheckInput, loadFindings: readonly Finding[] = []): Finding[] {
  return sortFindings([...loadFindings, ...runRules(input)]);
}
