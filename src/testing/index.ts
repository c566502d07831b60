// eventbus/testing: helpers for testing handlers in the user's own project. `makeEvent` builds an
// event as a handler receives it; `runHandler` runs one through a definition in this process, as a
// worker thread would; `startTestBus` runs the real supervisor on the embedded emulator.
export { makeEvent, TEST_SOURCE, type MakeEventOptions } from './make-event.js';
export { runHandler, type LogLine, type RunHandlerOptions, type RunHandlerResult } from './run-handler.js';
export {
  startTestBus,
  type ResultFilter,
  type TestBus,
  type TestBusConfig,
  type TestBusEndpoints,
  type TestBusOptions,
  type TestBusQueue,
  type TestResult,
} from './test-bus.js';
export type { CloudEvent, EventOptions, HandlerContext, HandlerDefinition, HandlerResult, TypedHandlerDefinition } from '../types.js';
