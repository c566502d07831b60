// metrics/alerts.yml and metrics/dashboard.json: promtool accepts the rules, every alert fires on
// the input it is meant for (and stays quiet on healthy input), and every metric and label the
// rules and panels use exists in metrics/registry.ts.
import t, { type Test } from 'tap';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { createMetrics } from '../../dist/metrics/registry.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ALERTS = join(ROOT, 'metrics', 'alerts.yml');
const DASHBOARD = join(ROOT, 'metrics', 'dashboard.json');

/** An executable on PATH (or in /usr/bin), or null. */
function findBinary(name: string): string | null {
  for (const dir of [...(process.env.PATH ?? '').split(delimiter), '/usr/bin', '/usr/local/bin']) {
    if (dir && existsSync(join(dir, name))) return join(dir, name);
  }
  return null;
}

function run(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1) : 0;
      resolve({ code, out: `${stdout}${stderr}` });
    });
  });
}

/** The `alert:` names and `expr:` texts of a rules file (inline or block scalars). */
function alertRules(text: string): Array<{ alert: string; expr: string }> {
  const lines = text.split('\n');
  const rules: Array<{ alert: string; expr: string }> = [];
  let alert: string | null = null;
  for (let i = 0; i < lines.length; i++) {
    const a = /^\s*-?\s*alert:\s*(\S+)\s*$/.exec(lines[i]!);
    if (a) {
      alert = a[1]!;
      continue;
    }
    const e = /^(\s*)expr:\s*(.*)$/.exec(lines[i]!);
    if (!e || alert === null) continue;
    const indent = e[1]!.length;
    let value = e[2]!.trim();
    if (/^[|>][-+]?$/.test(value)) {
      const block: string[] = [];
      while (i + 1 < lines.length && (lines[i + 1]!.trim() === '' || /^\s*/.exec(lines[i + 1]!)![0].length > indent)) {
        block.push(lines[++i]!.trim());
      }
      value = block.join(' ').trim();
    } else if (/^(['"]).*\1$/.test(value)) {
      value = value.slice(1, -1);
    }
    rules.push({ alert, expr: value });
    alert = null;
  }
  return rules;
}

const alertsText = readFileSync(ALERTS, 'utf8');
const rules = alertRules(alertsText);
const ALERT_NAMES = ['EventbusDLQNotEmpty', 'EventbusBacklogAgeGrowing', 'EventbusHandlerErrorRatio', 'EventbusNotReady', 'EventbusSQSErrors'];

const promtool = findBinary('promtool');
const skipTool = !promtool && !process.env.CI ? 'promtool is not installed (apt-get install prometheus); CI runs this' : false;

t.test('alerts.yml has the five alerts, each with severity, summary, description and runbook', async (t) => {
  t.same(rules.map((r) => r.alert).sort(), [...ALERT_NAMES].sort());
  t.match(alertsText, /^groups:\n\s+- name: eventbus\n/m, 'one group named eventbus');
  const blocks = alertsText.split(/^\s+- alert: /m).slice(1);
  t.equal(blocks.length, ALERT_NAMES.length);
  for (const b of blocks) {
    const name = b.split('\n')[0]!.trim();
    t.match(b, /\n\s+for: \d+m\n/, `${name} has a for duration`);
    t.match(b, /\n\s+severity: (warning|critical)\n/, `${name} has a severity`);
    for (const k of ['summary', 'description', 'runbook']) t.match(b, new RegExp(`\\n\\s+${k}: \\S`), `${name} has a ${k}`);
  }
});

t.test('every alert links its runbook, docs/runbooks/<alert>.md, which says what it means, what to check, what to do', async (t) => {
  const parsed = parseYaml(alertsText) as { groups: Array<{ rules: Array<{ alert: string; annotations: Record<string, string> }> }> };
  const all = parsed.groups.flatMap((g) => g.rules);
  t.same(all.map((r) => r.alert).sort(), [...ALERT_NAMES].sort());
  for (const r of all) {
    t.equal(r.annotations.runbook_url, `docs/runbooks/${r.alert}.md`, `${r.alert}: runbook_url`);
    const file = join(ROOT, 'docs', 'runbooks', `${r.alert}.md`);
    t.ok(existsSync(file), `${r.alert}: ${file} exists`);
    if (!existsSync(file)) continue;
    const page = readFileSync(file, 'utf8');
    t.match(page, new RegExp(`^# ${r.alert}\\n`), `${r.alert}: the page is titled with the alert`);
    for (const part of ['What it means', 'What to check', 'What to do']) t.match(page, `**${part}.**`, `${r.alert}: the page has "${part}"`);
  }
  const index = readFileSync(join(ROOT, 'docs', 'runbooks', 'README.md'), 'utf8');
  for (const a of ALERT_NAMES) t.match(index, `[${a}.md](${a}.md)`, `docs/runbooks/README.md lists ${a}`);
});

t.test('promtool check rules accepts alerts.yml', { skip: skipTool }, async (t) => {
  if (!promtool) return t.fail('promtool is required in CI: apt-get install -y --no-install-recommends prometheus');
  const r = await run(promtool, ['check', 'rules', ALERTS]);
  t.equal(r.code, 0, r.out);
  t.match(r.out, /SUCCESS: 5 rules found/);
});

/** promtool unit tests: firing input → ALERTS{alertstate="firing"}; healthy input → no alert. */
function unitTests(): string {
  const firing = (alertname: string, at: string, labels: string, state = 'firing') => `
      - expr: ALERTS{alertname="${alertname}"}
        eval_time: ${at}
        exp_samples:
          - labels: 'ALERTS{alertname="${alertname}", alertstate="${state}", ${labels}}'
            value: 1`;
  const quiet = (alertname: string, at: string) => `
      - eval_time: ${at}
        alertname: ${alertname}
        exp_alerts: []`;
  return `rule_files:
  - ${JSON.stringify(ALERTS)}
evaluation_interval: 1m
tests:
  # A DLQ with messages (reported by two hosts) fires after 5m; the main queue's backlog does not.
  - interval: 1m
    input_series:
      - series: 'eventbus_queue_messages{queue="email-dlq", state="visible", instance="a", job="eventbus"}'
        values: '3x20'
      - series: 'eventbus_queue_messages{queue="email-dlq", state="visible", instance="b", job="eventbus"}'
        values: '3x20'
      - series: 'eventbus_queue_messages{queue="email", state="visible", instance="a", job="eventbus"}'
        values: '50x20'
    promql_expr_test:${firing('EventbusDLQNotEmpty', '3m', 'severity="warning", queue="email-dlq"', 'pending')}${firing('EventbusDLQNotEmpty', '10m', 'severity="warning", queue="email-dlq"')}
  - interval: 1m
    input_series:
      - series: 'eventbus_queue_messages{queue="email-dlq", state="visible", instance="a", job="eventbus"}'
        values: '0x20'
      - series: 'eventbus_queue_messages{queue="email-dlq", state="in_flight", instance="a", job="eventbus"}'
        values: '2x20'
    alert_rule_test:${quiet('EventbusDLQNotEmpty', '10m')}

  # Messages start about 15 minutes after they were sent: p95 age over 300 s.
  - interval: 1m
    input_series:
      - series: 'eventbus_message_age_seconds_bucket{queue="email", le="60", instance="a", job="eventbus"}'
        values: '0x40'
      - series: 'eventbus_message_age_seconds_bucket{queue="email", le="300", instance="a", job="eventbus"}'
        values: '0x40'
      - series: 'eventbus_message_age_seconds_bucket{queue="email", le="900", instance="a", job="eventbus"}'
        values: '0+10x40'
      - series: 'eventbus_message_age_seconds_bucket{queue="email", le="+Inf", instance="a", job="eventbus"}'
        values: '0+10x40'
    promql_expr_test:${firing('EventbusBacklogAgeGrowing', '25m', 'severity="warning", queue="email"')}
  # Nothing is handled (no age samples) but the visible backlog keeps growing.
  - interval: 1m
    input_series:
      - series: 'eventbus_queue_messages{queue="billing", state="visible", instance="a", job="eventbus"}'
        values: '200+10x60'
    promql_expr_test:${firing('EventbusBacklogAgeGrowing', '40m', 'severity="warning", queue="billing"')}
  # Fresh messages and a large but steady backlog: quiet.
  - interval: 1m
    input_series:
      - series: 'eventbus_message_age_seconds_bucket{queue="email", le="1", instance="a", job="eventbus"}'
        values: '0+10x60'
      - series: 'eventbus_message_age_seconds_bucket{queue="email", le="+Inf", instance="a", job="eventbus"}'
        values: '0+10x60'
      - series: 'eventbus_queue_messages{queue="email", state="visible", instance="a", job="eventbus"}'
        values: '5000x60'
    alert_rule_test:${quiet('EventbusBacklogAgeGrowing', '40m')}

  # 10% of results are errors: fires; 1%: quiet.
  - interval: 1m
    input_series:
      - series: 'eventbus_handler_results_total{queue="email", event_type="USER_CREATED", result="success", instance="a", job="eventbus"}'
        values: '0+90x30'
      - series: 'eventbus_handler_results_total{queue="email", event_type="USER_CREATED", result="error", instance="a", job="eventbus"}'
        values: '0+10x30'
    promql_expr_test:${firing('EventbusHandlerErrorRatio', '20m', 'severity="warning", queue="email"')}
  - interval: 1m
    input_series:
      - series: 'eventbus_handler_results_total{queue="email", event_type="USER_CREATED", result="success", instance="a", job="eventbus"}'
        values: '0+99x30'
      - series: 'eventbus_handler_results_total{queue="email", event_type="USER_CREATED", result="timeout", instance="a", job="eventbus"}'
        values: '0+1x30'
    alert_rule_test:${quiet('EventbusHandlerErrorRatio', '20m')}

  # A worker that stops answering scrapes, and no worker at all.
  - interval: 1m
    input_series:
      - series: 'up{job="eventbus", instance="10.0.0.1:9464"}'
        values: '1x5 0x20'
      - series: 'up{job="eventbus", instance="10.0.0.2:9464"}'
        values: '1x25'
    promql_expr_test:${firing('EventbusNotReady', '15m', 'severity="critical", job="eventbus", instance="10.0.0.1:9464"')}
  - interval: 1m
    input_series:
      - series: 'up{job="other", instance="x"}'
        values: '1x20'
    promql_expr_test:${firing('EventbusNotReady', '10m', 'severity="critical", job="eventbus"')}
  - interval: 1m
    input_series:
      - series: 'up{job="eventbus", instance="10.0.0.1:9464"}'
        values: '1x20'
    alert_rule_test:${quiet('EventbusNotReady', '15m')}

  # ReceiveMessage keeps failing: fires after 10m; errors that stopped: quiet.
  - interval: 1m
    input_series:
      - series: 'eventbus_sqs_errors_total{queue="email", operation="ReceiveMessage", instance="a", job="eventbus"}'
        values: '0+60x30'
    promql_expr_test:${firing('EventbusSQSErrors', '8m', 'severity="warning", queue="email", operation="ReceiveMessage"', 'pending')}${firing('EventbusSQSErrors', '20m', 'severity="warning", queue="email", operation="ReceiveMessage"')}
  - interval: 1m
    input_series:
      - series: 'eventbus_sqs_errors_total{queue="email", operation="ReceiveMessage", instance="a", job="eventbus"}'
        values: '0 5 7 7x30'
    alert_rule_test:${quiet('EventbusSQSErrors', '25m')}
`;
}

t.test('promtool test rules: each alert fires on its input and stays quiet on healthy input', { skip: skipTool }, async (t) => {
  if (!promtool) return t.fail('promtool is required in CI: apt-get install -y --no-install-recommends prometheus');
  const dir = mkdtempSync(join(tmpdir(), 'eventbus-alerts-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const file = join(dir, 'alerts.test.yml');
  writeFileSync(file, unitTests());
  const r = await run(promtool, ['test', 'rules', file]);
  t.equal(r.code, 0, r.out);
  t.match(r.out, /SUCCESS/);
  t.notMatch(r.out, /FAILED/);
});

// --- metric names and labels ------------------------------------------------------------------

const metrics = createMetrics({ defaultMetrics: true });
// eventbus_ready exists in every process with a /readyz (the supervisor registers it at start).
metrics.followReadiness(() => true);
// So do the saturation gauges in every process that runs handlers (the supervisor, at start).
metrics.followSlots(() => ({ queues: [{ queue: 'q', cap: 1, used: 0 }], poolUtilization: 0 }));
const known = new Map<string, Set<string> | null>(); // name -> label names (null: any, for default metrics)
for (const m of await metrics.registry.getMetricsAsJSON()) {
  const names = String(m.type) === 'histogram' ? [`${m.name}_bucket`, `${m.name}_sum`, `${m.name}_count`] : [m.name];
  for (const n of names) known.set(n, null);
  // Gauges made inside follow*() are not properties of `metrics`: their labels are those of their values.
  if (m.name.startsWith('eventbus_') && String(m.type) === 'gauge' && m.values.length) known.set(m.name, new Set(m.values.flatMap((v) => Object.keys(v.labels))));
}
for (const v of Object.values(metrics)) {
  const m = v as { name?: unknown; labelNames?: unknown; constructor: { name: string } };
  if (typeof m.name !== 'string' || !Array.isArray(m.labelNames)) continue;
  const labels = new Set<string>(m.labelNames as string[]);
  if (m.constructor.name === 'Histogram') {
    known.set(`${m.name}_bucket`, new Set([...labels, 'le']));
    known.set(`${m.name}_sum`, labels);
    known.set(`${m.name}_count`, labels);
  } else {
    known.set(m.name, labels);
  }
}
/** Standard series Prometheus adds for every target. */
known.set('up', new Set());
/** Labels Prometheus attaches to every scraped series. */
const TARGET_LABELS = ['job', 'instance'];
/** Label values the SPEC enumerates. */
const ENUMS: Record<string, string[]> = {
  state: ['visible', 'in_flight', 'delayed'],
  result: ['success', 'failure', 'error', 'timeout', 'crashed', 'rejected', 'invalid'],
  // eventbus_messages_released_total's and eventbus_messages_dead_lettered_total's reasons.
  reason: ['shutdown', 'capacity', 'group', 'rejected', 'invalid', 'payload'],
};

/** Checks the metric names and labels of one PromQL expression; returns the metrics it uses. */
function checkExpr(t: Test, where: string, expr: string): string[] {
  const used = new Set<string>();
  for (const m of expr.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}/g)) used.add(m[1]!);
  for (const m of expr.matchAll(/\beventbus_[a-z0-9_]+\b/g)) used.add(m[0]);
  for (const m of expr.matchAll(/\b(?:process|nodejs)_[a-z0-9_]+\b/g)) used.add(m[0]);
  for (const m of expr.matchAll(/label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,\s*([a-zA-Z_]+)\s*\)/g)) used.add(m[1]!);
  t.ok(used.size > 0, `${where}: uses at least one metric`);
  const allLabels = new Set<string>([...TARGET_LABELS, 'le']);
  for (const name of used) {
    t.ok(known.has(name), `${where}: ${name} is defined in metrics/registry.ts (or is standard)`);
    for (const l of known.get(name) ?? []) allLabels.add(l);
  }
  for (const m of expr.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{([^}]*)\}/g)) {
    const labels = known.get(m[1]!);
    if (!labels) continue;
    for (const mm of m[2]!.matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"([^"]*)"/g)) {
      const [, label, op, value] = mm as unknown as [string, string, string, string];
      t.ok(labels.has(label) || TARGET_LABELS.includes(label), `${where}: ${m[1]} has a label ${label}`);
      if ((op === '=' || op === '!=') && ENUMS[label]) t.ok(ENUMS[label]!.includes(value), `${where}: ${label}="${value}" is a value the SPEC names`);
    }
  }
  for (const m of expr.matchAll(/\b(?:by|without|on|ignoring)\s*\(([^)]*)\)/g)) {
    for (const l of m[1]!.split(',').map((s) => s.trim()).filter(Boolean)) {
      t.ok(allLabels.has(l), `${where}: grouping label ${l} exists on the metrics used`);
    }
  }
  for (const m of expr.matchAll(/label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,\s*([a-zA-Z_]+)\s*\)/g)) {
    t.ok(known.get(m[1]!)?.has(m[2]!), `${where}: ${m[1]} has a label ${m[2]}`);
  }
  return [...used];
}

t.test('every metric and label the alert rules use exists', async (t) => {
  t.equal(rules.length, ALERT_NAMES.length, 'one expr per alert');
  for (const r of rules) checkExpr(t, r.alert, r.expr);
  t.ok(rules.find((r) => r.alert === 'EventbusNotReady')?.expr.includes('up{job="eventbus"}'), 'readiness is alerted on through up{job="eventbus"}');
});

interface Panel {
  type: string;
  title: string;
  targets?: Array<{ expr: string; datasource?: { uid?: string } }>;
  datasource?: { type?: string; uid?: string };
  panels?: Panel[];
}

t.test('dashboard.json: variables, panels, and every metric it queries exists', async (t) => {
  const d = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as {
    schemaVersion: number;
    uid: string;
    templating: { list: Array<{ name: string; type: string; query: unknown; multi?: boolean; datasource?: { uid?: string } }> };
    panels: Panel[];
  };
  t.ok(d.schemaVersion >= 36 && d.schemaVersion <= 41, `schemaVersion ${d.schemaVersion}`);
  const vars = new Map(d.templating.list.map((v) => [v.name, v]));
  t.equal(vars.get('datasource')?.type, 'datasource');
  t.equal(vars.get('datasource')?.query, 'prometheus');
  const queue = vars.get('queue');
  t.equal(queue?.type, 'query');
  t.equal(queue?.multi, true, 'queue is multi-value');
  t.equal(queue?.datasource?.uid, '${datasource}');
  const queueQuery = typeof queue?.query === 'string' ? queue.query : (queue?.query as { query: string }).query;
  t.equal(queueQuery, 'label_values(eventbus_messages_received_total, queue)');
  checkExpr(t, 'variable queue', queueQuery);

  const panels = d.panels.flatMap((p) => [p, ...(p.panels ?? [])]).filter((p) => p.type !== 'row');
  const exprs = panels.flatMap((p) => (p.targets ?? []).map((x) => ({ panel: p, expr: x.expr })));
  t.ok(panels.length >= 8, `${panels.length} panels`);
  for (const p of panels) {
    t.equal(p.datasource?.uid, '${datasource}', `${p.title}: uses the datasource variable`);
    t.ok((p.targets ?? []).length > 0, `${p.title}: has queries`);
  }
  const used = new Set<string>();
  for (const { panel, expr } of exprs) for (const m of checkExpr(t, panel.title, expr)) used.add(m);
  // What the brief asks the dashboard to show.
  for (const m of [
    'eventbus_messages_received_total',
    'eventbus_messages_deleted_total',
    'eventbus_handler_results_total',
    'eventbus_handler_duration_seconds_bucket',
    'eventbus_message_age_seconds_bucket',
    'eventbus_messages_in_flight',
    'eventbus_queue_messages',
    'eventbus_visibility_extensions_total',
    'eventbus_sqs_errors_total',
    'eventbus_child_restarts_total',
    // Issue 20: webhooks, saturation, thread pool load, event-loop delay, readiness and versions,
    // and the ordered/fair-delivery gauges of issue 17.
    'eventbus_webhook_requests_total',
    'eventbus_messages_prefetched',
    'process_cpu_seconds_total',
    'nodejs_eventloop_lag_p99_seconds',
    'eventbus_ready',
    'eventbus_build_info',
    'eventbus_groups_active',
    'eventbus_messages_waiting_for_group',
  ]) {
    t.ok(used.has(m), `the dashboard shows ${m}`);
  }
  for (const q of ['0.5', '0.95', '0.99']) {
    for (const h of ['eventbus_handler_duration_seconds_bucket', 'eventbus_message_age_seconds_bucket']) {
      t.ok(exprs.some((e) => e.expr.includes(`histogram_quantile(${q},`) && e.expr.includes(h)), `p${Number(q) * 100} of ${h}`);
    }
  }
  t.ok(exprs.some((e) => /eventbus_queue_messages\{[^}]*-dlq/.test(e.expr)), 'a DLQ depth panel (queue="<name>-dlq")');
  t.ok(exprs.some((e) => /eventbus_messages_released_total\{[^}]*reason="group"/.test(e.expr)), 'messages released for their group');
  // Process-wide metrics are only eventbus's when joined with an eventbus-only series.
  for (const { panel, expr } of exprs) {
    if (/\b(process|nodejs)_[a-z_]+/.test(expr)) t.match(expr, /and on \(instance, job\) eventbus_build_info/, `${panel.title}: restricted to eventbus targets`);
  }
  // No two panels overlap on the grid.
  const cells = new Map<string, string>();
  for (const p of d.panels as Array<Panel & { gridPos: { x: number; y: number; w: number; h: number } }>) {
    for (let y = p.gridPos.y; y < p.gridPos.y + p.gridPos.h; y++) {
      for (let x = p.gridPos.x; x < p.gridPos.x + p.gridPos.w; x++) {
        const k = `${x},${y}`;
        if (cells.has(k)) t.fail(`${p.title} overlaps ${cells.get(k)} at ${k}`);
        cells.set(k, p.title);
      }
    }
  }
  t.equal(new Set(d.panels.map((p) => (p as { id?: number }).id)).size, d.panels.length, 'panel ids are unique');
});
