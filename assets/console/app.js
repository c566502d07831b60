// The eventbus console (README "Console"): preact + htm, uPlot for the charts; no build step.
// Every number comes from /console/api/* with the bearer token of this tab (sessionStorage only).
import { html, render, useState, useEffect, useRef, useCallback } from './vendor/preact-htm.js';

const TOKEN_KEY = 'eventbus-console-token';
const POLL_MS = 2000;
const MAX_POINTS = 300;

let token = sessionStorage.getItem(TOKEN_KEY);
const authListeners = new Set();

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/** One call of the console's JSON API; a 401 asks the page for the token. */
async function api(path, { method = 'GET', body } = {}) {
  const headers = { accept: 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`/console/api/${path}`, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'omit', cache: 'no-store' });
  const text = await res.text();
  let json;
  try {
    json = text ? JSON.parse(text) : {};
  } catch {
    json = { error: text };
  }
  if (res.status === 401) {
    for (const l of authListeners) l();
    throw new ApiError(401, json.error ?? 'the bearer token is missing or wrong');
  }
  if (!res.ok) throw new ApiError(res.status, json.error ?? res.statusText);
  return json;
}

/** Calls `fn` now and every `ms` while mounted (one request at a time). */
function usePoll(fn, ms, deps) {
  useEffect(() => {
    let stopped = false;
    let timer;
    const tick = async () => {
      try {
        await fn();
      } finally {
        if (!stopped) timer = setTimeout(tick, ms);
      }
    };
    tick();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, deps);
}

function useHash() {
  const [hash, setHash] = useState(location.hash || '#/overview');
  useEffect(() => {
    const on = () => setHash(location.hash || '#/overview');
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return hash;
}

const fmt = (n, digits = 0) => (n === null || n === undefined ? '–' : Number(n).toLocaleString(undefined, { maximumFractionDigits: digits, minimumFractionDigits: 0 }));
const fmtRate = (n) => (n >= 10 ? fmt(n, 0) : fmt(n, 2));
const fmtMs = (n) => (n === null || n === undefined ? '–' : n >= 1000 ? `${fmt(n / 1000, 2)} s` : `${fmt(n, n < 10 ? 1 : 0)} ms`);
const fmtTime = (ms) => new Date(ms).toLocaleString();

function ErrorNote({ error }) {
  if (!error) return null;
  return html`<div class="notice error" role="alert">${String(error.message ?? error)}</div>`;
}

// ---------------------------------------------------------------- token

function TokenPrompt({ onToken, wrong }) {
  const [value, setValue] = useState('');
  const submit = (e) => {
    e.preventDefault();
    if (value.trim()) onToken(value.trim());
  };
  return html`<main class="token">
    <h1>eventbus console</h1>
    <p>This console needs the API token (<code>http.apiToken</code>). It is kept for this tab only.</p>
    ${wrong ? html`<div class="notice error" role="alert">That token was refused.</div>` : null}
    <form onSubmit=${submit}>
      <label>API token <input type="password" name="token" autocomplete="current-password" autofocus value=${value} onInput=${(e) => setValue(e.target.value)} /></label>
      <button class="primary" type="submit">Open the console</button>
    </form>
  </main>`;
}

// ---------------------------------------------------------------- charts

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

/** A small uPlot chart of one queue's received / succeeded / failed per second. */
function RateChart({ data, label }) {
  const el = useRef(null);
  const plot = useRef(null);
  useEffect(() => {
    const U = globalThis.uPlot;
    if (!U || !el.current) return undefined;
    const axis = { stroke: cssVar('--muted'), grid: { stroke: cssVar('--line'), width: 1 }, ticks: { stroke: cssVar('--line') }, font: '11px system-ui' };
    plot.current = new U(
      {
        width: Math.max(260, el.current.clientWidth || 320),
        height: 110,
        legend: { show: false },
        cursor: { show: false },
        scales: { y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
        axes: [{ ...axis, space: 60 }, { ...axis, size: 40 }],
        series: [
          {},
          { label: 'received/s', stroke: cssVar('--received'), width: 1.5 },
          { label: 'succeeded/s', stroke: cssVar('--succeeded'), width: 1.5 },
          { label: 'failed/s', stroke: cssVar('--failed'), width: 1.5 },
        ],
      },
      data,
      el.current,
    );
    return () => plot.current?.destroy();
  }, []);
  useEffect(() => {
    plot.current?.setData(data);
  }, [data]);
  return html`<div class="chart" ref=${el} role="img" aria-label=${label}></div>`;
}

// ---------------------------------------------------------------- overview

function Overview() {
  const [view, setView] = useState(null);
  const [error, setError] = useState(null);
  const series = useRef({ t: [], queues: {} });
  const last = useRef(undefined);
  usePoll(
    async () => {
      try {
        const o = await api(`overview${last.current ? `?since=${last.current}` : ''}`);
        const s = series.current;
        s.t.push(...o.series.t.map((t) => t / 1000));
        for (const [q, v] of Object.entries(o.series.queues)) {
          const qs = (s.queues[q] ??= { received: [], succeeded: [], failed: [] });
          // A queue that appeared later: pad its history.
          for (const k of ['received', 'succeeded', 'failed']) {
            while (qs[k].length < s.t.length - v[k].length) qs[k].push(null);
            qs[k].push(...v[k]);
          }
        }
        const drop = s.t.length - MAX_POINTS;
        if (drop > 0) {
          s.t.splice(0, drop);
          for (const qs of Object.values(s.queues)) for (const k of ['received', 'succeeded', 'failed']) qs[k].splice(0, drop);
        }
        if (o.series.t.length) last.current = o.series.t[o.series.t.length - 1];
        setView(o);
        setError(null);
      } catch (err) {
        if (err.status !== 401) setError(err);
      }
    },
    POLL_MS,
    [],
  );
  if (!view) return html`<${ErrorNote} error=${error} /><p class="loading">Reading the supervisor…</p>`;
  const s = series.current;
  return html`
    <${ErrorNote} error=${error} />
    <h2>Queues</h2>
    <table aria-label="handler queues">
      <thead><tr>
        <th>Queue</th><th>Events</th>
        <th class="num">Visible</th><th class="num">In flight</th><th class="num">Delayed</th><th class="num">DLQ</th>
        <th class="num">Received/s</th><th class="num">Succeeded/s</th><th class="num">Failed/s</th>
        <th class="num">p50</th><th class="num">p99</th><th class="num">Here / cap</th>
        <th class="num">Received</th><th class="num">Succeeded</th><th class="num">Failed</th>
      </tr></thead>
      <tbody>
        ${view.queues.map(
          (q) => html`<tr data-queue=${q.queue}>
            <th scope="row">${q.queue}${q.ordered ? html` <span class="muted">(ordered)</span>` : null}</th>
            <td>${q.events ? q.events.join(', ') : html`<span class="muted">every event</span>`}</td>
            <td class="num" data-col="visible">${fmt(q.visible)}</td>
            <td class="num" data-col="inFlight">${fmt(q.inFlight)}</td>
            <td class="num" data-col="delayed">${fmt(q.delayed)}</td>
            <td class="num" data-col="dlq">${q.dlq ? html`<a href=${`#/dlq/${encodeURIComponent(q.queue)}`} class=${q.dlqDepth ? 'bad' : ''}>${fmt(q.dlqDepth)}</a>` : html`<span class="muted">none</span>`}</td>
            <td class="num">${fmtRate(q.rate.received)}</td>
            <td class="num ok">${fmtRate(q.rate.succeeded)}</td>
            <td class="num ${q.rate.failed ? 'bad' : ''}">${fmtRate(q.rate.failed)}</td>
            <td class="num">${fmtMs(q.p50Ms)}</td>
            <td class="num">${fmtMs(q.p99Ms)}</td>
            <td class="num" title="received here and not settled (of which waiting for a slot or group) / cap">${fmt(q.inFlightHere)}${q.waitingHere ? html` <span class="muted">(${fmt(q.waitingHere)})</span>` : null} / ${fmt(q.cap)}</td>
            <td class="num" data-col="received">${fmt(q.received)}</td>
            <td class="num" data-col="succeeded">${fmt(q.succeeded)}</td>
            <td class="num" data-col="failed">${fmt(q.failed)}</td>
          </tr>`,
        )}
      </tbody>
    </table>
    <h2>Per second, last ${Math.max(1, Math.round((s.t.length * view.intervalMs) / 60000))} min</h2>
    <div class="legend" aria-hidden="true"><span class="received">received/s</span><span class="succeeded">succeeded/s</span><span class="failed">failed/s</span></div>
    <div class="cards">
      ${view.queues.map((q) => {
        const qs = s.queues[q.queue] ?? { received: [], succeeded: [], failed: [] };
        return html`<section class="card" aria-label=${`queue ${q.queue}`}>
          <h3>${q.queue}</h3>
          <${RateChart} key=${q.queue} label=${`${q.queue}: received, succeeded and failed per second`} data=${[s.t.slice(), qs.received.slice(), qs.succeeded.slice(), qs.failed.slice()]} />
          <div class="stats"><span>p50 ${fmtMs(q.p50Ms)}</span><span>p99 ${fmtMs(q.p99Ms)}</span><span>${fmt(q.inFlightHere)} / ${fmt(q.cap)} running here</span></div>
        </section>`;
      })}
    </div>
    <h2>Threads</h2>
    ${view.threads
      ? html`<div class="threads" aria-label="worker threads">
          ${view.threads.map(
            (t) => html`<div class="thread"><div>thread ${t.id} <span class="muted">${fmt(t.load * 100)} %</span></div><div class="bar" role="meter" aria-valuemin="0" aria-valuemax="100" aria-valuenow=${Math.round(t.load * 100)} aria-label=${`thread ${t.id} load`}><span style=${`width:${Math.round(t.load * 100)}%`}></span></div></div>`,
          )}
        </div>`
      : html`<p class="muted">Thread loads are per process: in a cluster each child's threads are not shown here.</p>`}
    <p class="muted">Updated ${fmtTime(view.at)}, every ${view.intervalMs / 1000} s. Rates over the last 10 s, p50/p99 over the last minute.</p>`;
}

// ---------------------------------------------------------------- failures

function Failures() {
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  usePoll(
    async () => {
      try {
        setData(await api('failures?limit=50'));
        setError(null);
      } catch (err) {
        if (err.status !== 401) setError(err);
      }
    },
    POLL_MS,
    [],
  );
  if (!data) return html`<${ErrorNote} error=${error} /><p class="loading">Reading failures…</p>`;
  return html`
    <${ErrorNote} error=${error} />
    <h2>Latest failures</h2>
    <p class="muted">${fmt(data.total)} since the start; the latest ${data.kept} are kept in memory.${data.note ? ` ${data.note}` : ''}</p>
    ${data.failures.length === 0
      ? html`<p>No failure yet.</p>`
      : html`<table aria-label="failures">
          <thead><tr><th>When</th><th>Queue</th><th>Event type</th><th>Result</th><th class="num">Receive</th><th>Error</th></tr></thead>
          <tbody>
            ${data.failures.map(
              (f) => html`<tr data-event-id=${f.eventId}>
                <td>${fmtTime(f.at)}</td>
                <td>${f.queue}${f.child !== undefined ? html` <span class="muted">child ${f.child}</span>` : null}</td>
                <td>${f.eventType ?? html`<span class="muted">undecoded</span>`}<br /><a href=${`#/events/${encodeURIComponent(f.eventId)}`} class="muted">event ${f.eventId}</a></td>
                <td class="bad">${f.result}</td>
                <td class="num">${f.receiveCount}</td>
                <td>${f.error ?? ''}${f.stack ? html`<details><summary>stack</summary><pre>${f.stack}</pre></details>` : null}</td>
              </tr>`,
            )}
          </tbody>
        </table>`}`;
}

// ---------------------------------------------------------------- dead letters

function DeadLetters({ info, queue }) {
  const queues = info.queues.filter((q) => q.dlq);
  const current = queue && queues.some((q) => q.queue === queue) ? queue : queues[0]?.queue;
  if (!info.dlq) return html`<p>Dead letters are not served here.</p>`;
  if (!current) return html`<p>No handler queue has a DLQ.</p>`;
  return html`
    <h2>Dead letters</h2>
    <div class="tabs" role="group" aria-label="queues">
      ${queues.map((q) => html`<button type="button" aria-pressed=${q.queue === current ? 'true' : 'false'} onClick=${() => (location.hash = `#/dlq/${encodeURIComponent(q.queue)}`)}>${q.queue}</button>`)}
    </div>
    <${DlqBrowser} key=${current} queue=${current} dlqName=${queues.find((q) => q.queue === current).dlqName} />`;
}

function DlqBrowser({ queue, dlqName }) {
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  const [selected, setSelected] = useState(new Set());
  const [confirm, setConfirm] = useState(null);
  const [outcome, setOutcome] = useState(null);
  const [busy, setBusy] = useState(false);
  const load = useCallback(async () => {
    setBusy(true);
    try {
      setData(await api(`dlq/${encodeURIComponent(queue)}/messages?max=20`));
      setError(null);
    } catch (err) {
      if (err.status !== 401) setError(err);
    } finally {
      setBusy(false);
    }
  }, [queue]);
  useEffect(() => {
    load();
  }, [load]);
  const toggle = (id) => {
    const next = new Set(selected);
    if (next.has(id)) next.delete(id);
    else next.add(id);
    setSelected(next);
  };
  const redrive = async (what) => {
    setConfirm(null);
    setBusy(true);
    try {
      const r = await api(`dlq/${encodeURIComponent(queue)}/redrive`, { method: 'POST', body: what === 'all' ? { all: true } : { messageIds: [...selected] } });
      setOutcome(r);
      setSelected(new Set());
      setError(null);
    } catch (err) {
      if (err.status !== 401) setError(err);
    } finally {
      setBusy(false);
    }
    await load();
  };
  const messages = data?.messages ?? [];
  return html`
    <${ErrorNote} error=${error} />
    <div class="row">
      <button type="button" onClick=${load} disabled=${busy}>Refresh</button>
      <button type="button" class="primary" disabled=${busy || selected.size === 0} onClick=${() => setConfirm('selected')}>Redrive selected (${selected.size})</button>
      <button type="button" disabled=${busy || messages.length === 0} onClick=${() => setConfirm('all')}>Redrive all</button>
      <span class="muted">${dlqName}: ${data ? `${messages.length} shown` : 'reading…'} (browsing releases them at once)</span>
    </div>
    ${confirm
      ? html`<div class="notice confirm" role="alertdialog" aria-label="confirm redrive">
          <p>${confirm === 'all' ? `Move every message of ${dlqName} back to ${queue}?` : `Move ${selected.size} message(s) back to ${queue}?`} Their handler runs them again.</p>
          <div class="row"><button type="button" class="danger" autofocus onClick=${() => redrive(confirm)}>Confirm redrive</button><button type="button" onClick=${() => setConfirm(null)}>Cancel</button></div>
        </div>`
      : null}
    <div role="status" aria-live="polite">
      ${outcome ? html`<div class=${`notice ${outcome.failed ? 'error' : ''}`}>Redrive: moved ${outcome.moved}, failed ${outcome.failed}${outcome.notDeleted ? `, ${outcome.notDeleted} copied but not deleted` : ''}.${outcome.more ? ' More remain in the DLQ: redrive all again to go on.' : ''}${outcome.errors?.length ? ` ${outcome.errors.join('; ')}` : ''}</div>` : null}
    </div>
    ${data?.problems?.length ? html`<div class="notice error">${data.problems.join('; ')}</div>` : null}
    ${data && messages.length === 0 ? html`<p>${dlqName} is empty.</p>` : null}
    ${messages.map(
      (m) => html`<article class="card" data-message-id=${m.messageId} aria-label=${`dead letter ${m.messageId}`}>
        <div class="row">
          <label class="inline"><input type="checkbox" checked=${selected.has(m.messageId)} onChange=${() => toggle(m.messageId)} /> select</label>
          <strong>${m.event?.type ?? '?'}</strong>
          <span class="muted">event ${m.event?.id ?? '?'} · message ${m.messageId} · received ${m.receiveCount ?? '?'} time(s)${m.sentTimestampMs ? ` · sent ${fmtTime(m.sentTimestampMs)}` : ''}</span>
        </div>
        ${m.deadLetterReason ? html`<p class="bad">Dead-letter reason: ${m.deadLetterReason}</p>` : html`<p class="muted">Moved here by SQS after maxReceiveCount receives (no reason recorded).</p>`}
        <details><summary>event</summary><pre>${JSON.stringify(m.event, null, 2)}</pre></details>
        <details><summary>attributes</summary><pre>${JSON.stringify(m.attributes, null, 2)}</pre></details>
        ${m.offloaded ? html`<details><summary>offloaded payload</summary><pre>${JSON.stringify(m.offloaded, null, 2)}</pre></details>` : null}
      </article>`,
    )}`;
}

// ---------------------------------------------------------------- events

function EventView({ id }) {
  const [data, setData] = useState(null);
  const [error, setError] = useState(null);
  useEffect(() => {
    api(`events/${encodeURIComponent(id)}`).then(
      (d) => setData(d),
      (err) => err.status !== 401 && setError(err),
    );
  }, [id]);
  return html`<h2>Event ${id}</h2>
    <p><a href="#/events">← all events</a></p>
    <${ErrorNote} error=${error} />
    ${data ? html`<pre aria-label="event JSON">${JSON.stringify(data.event, null, 2)}</pre>` : null}`;
}

function PublishForm({ info }) {
  const types = [...new Set(info.queues.flatMap((q) => q.events ?? []))].sort();
  const [type, setType] = useState(types[0] ?? '');
  const [data, setData] = useState('{}');
  const [result, setResult] = useState(null);
  const [error, setError] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    let parsed;
    try {
      parsed = JSON.parse(data);
    } catch (err) {
      setError(new Error(`data is not JSON: ${err.message}`));
      return;
    }
    try {
      const r = await api('publish', { method: 'POST', body: { type, data: parsed } });
      setResult(r.published);
      setError(null);
    } catch (err) {
      if (err.status !== 401) setError(err);
    }
  };
  return html`<section class="card" aria-label="publish a test event">
    <h3>Publish a test event <span class="muted">(npm start only)</span></h3>
    <form class="filters" onSubmit=${submit}>
      <label>Type
        ${types.length
          ? html`<select value=${type} onChange=${(e) => setType(e.target.value)}>${types.map((t) => html`<option value=${t}>${t}</option>`)}</select>`
          : html`<input value=${type} onInput=${(e) => setType(e.target.value)} />`}
      </label>
      <label>Data (JSON) <textarea rows="2" cols="40" value=${data} onInput=${(e) => setData(e.target.value)}></textarea></label>
      <button class="primary" type="submit">Publish</button>
    </form>
    <div role="status" aria-live="polite">${result ? html`Published <a href=${`#/events/${encodeURIComponent(result.id)}`}>${result.id}</a>.` : null}</div>
    <${ErrorNote} error=${error} />
  </section>`;
}

function Events({ info }) {
  const [filters, setFilters] = useState({ type: '', since: '', until: '', limit: '20' });
  const [form, setForm] = useState(filters);
  const [cursors, setCursors] = useState([null]);
  const [page, setPage] = useState(null);
  const [open, setOpen] = useState(null);
  const [error, setError] = useState(null);
  const cursor = cursors[cursors.length - 1];
  useEffect(() => {
    const p = new URLSearchParams();
    for (const k of ['type', 'since', 'until', 'limit']) if (filters[k]) p.set(k, filters[k]);
    if (cursor) p.set('cursor', cursor);
    api(`events?${p}`).then(
      (d) => {
        setPage(d);
        setError(null);
      },
      (err) => err.status !== 401 && setError(err),
    );
  }, [filters, cursor]);
  if (!info.archive) return html`<p>The archive is off (<code>archive.enabled</code>): no events to show.</p>`;
  const submit = (e) => {
    e.preventDefault();
    setCursors([null]);
    setFilters({ ...form });
  };
  const field = (k) => (e) => setForm({ ...form, [k]: e.target.value });
  return html`
    ${info.publish ? html`<${PublishForm} info=${info} />` : null}
    <h2>Events</h2>
    <form class="filters" onSubmit=${submit} aria-label="event filters">
      <label>Type(s) <input name="type" placeholder="USER_CREATED,USER_COMMENT" value=${form.type} onInput=${field('type')} /></label>
      <label>Since <input name="since" placeholder="24h or 2026-01-01T00:00:00Z" value=${form.since} onInput=${field('since')} /></label>
      <label>Until <input name="until" placeholder="now" value=${form.until} onInput=${field('until')} /></label>
      <label>Per page <select name="limit" value=${form.limit} onChange=${field('limit')}>${['10', '20', '50', '100'].map((n) => html`<option value=${n}>${n}</option>`)}</select></label>
      <button class="primary" type="submit">Apply</button>
    </form>
    <${ErrorNote} error=${error} />
    ${page
      ? html`<table aria-label="events">
          <thead><tr><th>Time</th><th>Type</th><th>Id</th><th>Source</th><th></th></tr></thead>
          <tbody>
            ${page.events.map(
              (ev) => html`<tr data-event-id=${ev.id}>
                <td>${ev.time ? fmtTime(Date.parse(ev.time)) : ''}</td><td>${ev.type}</td><td><a href=${`#/events/${encodeURIComponent(ev.id)}`}>${ev.id}</a></td><td>${ev.source}</td>
                <td><button type="button" aria-expanded=${open === ev.id ? 'true' : 'false'} onClick=${() => setOpen(open === ev.id ? null : ev.id)}>JSON</button></td>
              </tr>${open === ev.id ? html`<tr><td colspan="5"><pre>${JSON.stringify(ev, null, 2)}</pre></td></tr>` : null}`,
            )}
          </tbody>
        </table>
        ${page.events.length === 0 ? html`<p>No event matches.</p>` : null}
        <div class="row" role="navigation" aria-label="pages">
          <button type="button" disabled=${cursors.length === 1} onClick=${() => setCursors(cursors.slice(0, -1))}>Previous page</button>
          <span class="muted">page ${cursors.length}</span>
          <button type="button" disabled=${!page.nextCursor} onClick=${() => setCursors([...cursors, page.nextCursor])}>Next page</button>
        </div>`
      : html`<p class="loading">Reading the archive…</p>`}`;
}

// ---------------------------------------------------------------- the app

const PAGES = [
  ['overview', 'Overview'],
  ['failures', 'Failures'],
  ['dlq', 'Dead letters'],
  ['events', 'Events'],
];

function App() {
  const hash = useHash();
  const [info, setInfo] = useState(null);
  const [needToken, setNeedToken] = useState(false);
  const [wrong, setWrong] = useState(false);
  const [error, setError] = useState(null);
  const loadInfo = useCallback(async () => {
    try {
      setInfo(await api('info'));
      setNeedToken(false);
      setError(null);
    } catch (err) {
      if (err.status === 401) setNeedToken(true);
      else setError(err);
    }
  }, []);
  useEffect(() => {
    const on = () => {
      setNeedToken(true);
      setWrong(Boolean(token));
    };
    authListeners.add(on);
    loadInfo();
    return () => authListeners.delete(on);
  }, []);
  if (needToken) {
    return html`<${TokenPrompt}
      wrong=${wrong}
      onToken=${(t) => {
        token = t;
        sessionStorage.setItem(TOKEN_KEY, t);
        setWrong(false);
        loadInfo();
      }}
    />`;
  }
  if (!info) return html`<${ErrorNote} error=${error} /><p class="loading">Loading…</p>`;
  const [, pageName = 'overview', arg] = /^#\/([^/]*)\/?(.*)$/.exec(hash) ?? [];
  const name = PAGES.some(([p]) => p === pageName) ? pageName : 'overview';
  let argument;
  try {
    argument = arg ? decodeURIComponent(arg) : undefined;
  } catch {
    argument = undefined; // a malformed link (#/events/%E0): the page's list, not a blank page
  }
  let body;
  if (name === 'overview') body = info.live ? html`<${Overview} />` : html`<p>No supervisor runs here: the overview is on the supervisor's port.</p>`;
  else if (name === 'failures') body = info.live ? html`<${Failures} />` : html`<p>No supervisor runs here: failures are on the supervisor's port.</p>`;
  else if (name === 'dlq') body = html`<${DeadLetters} info=${info} queue=${argument} />`;
  else body = argument ? html`<${EventView} key=${argument} id=${argument} />` : html`<${Events} info=${info} />`;
  return html`
    <header class="top">
      <h1>eventbus console</h1>
      <nav aria-label="pages"><ul>
        ${PAGES.map(([p, label]) => html`<li><a href=${`#/${p}`} aria-current=${p === name ? 'page' : undefined}>${label}</a></li>`)}
      </ul></nav>
      <span class="meta">${info.role}${info.processes > 1 ? ` · ${info.processes} processes` : ''} · v${info.version}</span>
    </header>
    <main>${body}</main>`;
}

const root = document.getElementById('app');
root.textContent = '';
render(html`<${App} />`, root);
