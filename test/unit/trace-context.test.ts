// Trace context as events carry it (issue 15): W3C traceparent/tracestate parsing, the X-Ray header
// SQS gives as AWSTraceHeader, and what eventbus does with no OpenTelemetry SDK registered (the
// default): no spans, and ctx.publish still carries the triggering event's context downstream.
import t from 'tap';
import { formatTraceparent, logIds, parseTraceparent, parseXRayHeader, tracer } from '../../dist/telemetry/index.js';
import { runHandler } from '../../dist/testing/index.js';
import { makeEvent } from '../../dist/testing/index.js';
import { loadConfig } from '../../dist/config.js';
import { createLogger } from '../../dist/log.js';
import { Supervisor } from '../../dist/supervisor/supervisor.js';

const TRACE = '0af7651916cd43dd8448eb211c80319c';
const SPAN = 'b7ad6b7169203331';

t.test('traceparent: valid, sampled or not, with tracestate', async (t) => {
  const sc = parseTraceparent(`00-${TRACE}-${SPAN}-01`, 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7');
  t.match(sc, { traceId: TRACE, spanId: SPAN, traceFlags: 1, isRemote: true });
  t.equal(sc?.traceState?.get('congo'), 't61rcWkgMzE');
  t.equal(formatTraceparent(sc!), `00-${TRACE}-${SPAN}-01`);
  t.equal(parseTraceparent(`00-${TRACE}-${SPAN}-00`)?.traceFlags, 0);
  // A later version may add fields; only the first four are read.
  t.equal(parseTraceparent(`01-${TRACE}-${SPAN}-01-extra`)?.traceId, TRACE);
  t.same(logIds(`00-${TRACE}-${SPAN}-01`), { trace_id: TRACE, span_id: SPAN });
});

t.test('traceparent: anything malformed is ignored (null), never an error', async (t) => {
  for (const bad of [
    undefined,
    null,
    42,
    '',
    'garbage',
    `00-${TRACE}-${SPAN}`,
    `00-${TRACE.toUpperCase()}-${SPAN}-01`,
    `00-${'0'.repeat(32)}-${SPAN}-01`,
    `00-${TRACE}-${'0'.repeat(16)}-01`,
    `ff-${TRACE}-${SPAN}-01`,
    `00-${TRACE}-${SPAN}-01-extra`,
    `0-${TRACE}-${SPAN}-01`,
    { traceparent: `00-${TRACE}-${SPAN}-01` },
  ]) {
    t.equal(parseTraceparent(bad), null, JSON.stringify(bad) ?? String(bad));
  }
});

t.test('AWSTraceHeader (X-Ray): Root and Parent become the W3C parent', async (t) => {
  t.match(parseXRayHeader('Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1'), {
    traceId: '5759e988bd862e3fe1be46a994272793',
    spanId: '53995c3f42cd8ad8',
    traceFlags: 1,
  });
  t.equal(parseXRayHeader('Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=0')?.traceFlags, 0);
  t.equal(parseXRayHeader('Root=1-5759e988-bd862e3fe1be46a994272793;Sampled=1'), null, 'no Parent: nothing to continue');
  t.equal(parseXRayHeader('Root=2-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8'), null);
  t.equal(parseXRayHeader('nonsense'), null);
  t.equal(parseXRayHeader(undefined), null);
});

t.test('no SDK registered: no tracer, and ctx.publish carries the triggering context', async (t) => {
  t.equal(tracer(), null, 'the API is the no-op one: span work is skipped');
  const traceparent = `00-${TRACE}-${SPAN}-01`;
  const event = makeEvent('IN', {}, { extensions: { traceparent, tracestate: 'a=1' } });
  const handler = { queue: 'q', async handle(_e: unknown, ctx: any) {
    await ctx.publish('OUT', {});
    await ctx.publish('MINE', {}, { extensions: { traceparent: `00-${TRACE}-${'1'.repeat(16)}-01` } });
    ctx.log.info('hello');
  } };
  const r = await runHandler(handler, event);
  t.equal(r.result, 'success');
  t.equal(r.published[0]?.traceparent, traceparent, "the new event continues the event's own context");
  t.equal(r.published[0]?.tracestate, 'a=1');
  t.equal(r.published[1]?.traceparent, `00-${TRACE}-${'1'.repeat(16)}-01`, "a context the caller gives wins");
  t.notOk('trace_id' in (r.logs.find((l) => l.msg === 'hello') ?? {}), 'no span recording: no ids on log lines');
  const untraced = await runHandler(handler, makeEvent('IN', {}));
  t.equal(untraced.published[0]?.traceparent, undefined, 'an event without context publishes without one');
  const bad = await runHandler(handler, makeEvent('IN', {}, { extensions: { traceparent: 'garbage' } }));
  t.equal(bad.result, 'success', 'a malformed traceparent is not a failure');
  t.equal(bad.published[0]?.traceparent, undefined, 'and is not passed on');
});

t.test('telemetry.setup: from the env; a module that does not load fails the start naming the key', async (t) => {
  t.equal(loadConfig({ env: { EVENTBUS_TELEMETRY_SETUP: './otel.mjs' } }).telemetry.setup, './otel.mjs');
  t.equal(loadConfig({ env: {} }).telemetry.setup, null, 'unset by default');
  const config = loadConfig({ env: {}, overrides: { telemetry: { setup: '/nonexistent/otel-setup.mjs' }, handlersDir: '/nonexistent/handlers' } });
  const sup = new Supervisor({ config, log: createLogger({ level: 'silent' }) });
  await t.rejects(sup.start(), { code: 'ERR_CONFIG_INVALID', message: /^invalid config: telemetry\.setup: cannot load file:\/\/\/nonexistent\/otel-setup\.mjs: / });
});
