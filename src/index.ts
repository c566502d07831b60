/** Public API: handler definitions, the publisher, and the event types. */
export { defineHandler } from './types.js';
export type {
  AnyHandlerDefinition,
  CloudEvent,
  EventOf,
  EventOptions,
  EventSchemas,
  HandlerContext,
  HandlerDefinition,
  HandlerOptions,
  HandlerResult,
  PublishFn,
  Publishes,
  StandardSchemaV1,
  TypedHandlerDefinition,
} from './types.js';
export { createPublisher, derivedEventId } from './publisher/index.js';
export type { Publisher, PublisherOptions, BatchEntry, BatchResult } from './publisher/index.js';
export { EventBusError, ErrorCodes, NonRetryableError } from './errors.js';
export type { ErrorCode } from './errors.js';
