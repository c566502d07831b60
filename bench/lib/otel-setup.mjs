// A telemetry.setup module for the tracing-cost bench (BENCHMARKS.md "Tracing"): the OpenTelemetry
// SDK sampling every span (the default AlwaysOn sampler; parent-based on a sampled parent), a
// BatchSpanProcessor as production uses, and an exporter that keeps nothing (in memory, dropped at
// each export) so the cost measured is eventbus's spans and the SDK's, not an exporter's I/O.
// BENCH_EB_CONFIG='{"telemetry":{"setup":"<repo>/bench/lib/otel-setup.mjs"}}'
import { context, propagation, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, BatchSpanProcessor, InMemorySpanExporter } from '@opentelemetry/sdk-trace-base';

class DroppingExporter extends InMemorySpanExporter {
  export(spans, done) {
    super.export(spans, done);
    this.reset();
  }
}

context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
propagation.setGlobalPropagator(new W3CTraceContextPropagator());
trace.setGlobalTracerProvider(new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(new DroppingExporter())] }));
