/** Public API: handler definitions, the publisher, and the event types. */
export { defineHandler } from './types.js';
export type { CloudEvent, EventOptions, HandlerContext, HandlerDefinition, HandlerResult } from './types.js';
export { createPublisher, derivedEventId } from './publisher/index.js';
export type { Publisher, PublisherOptions, BatchEntry, BatchResult } from './publisher/index.js';
export { EventBusError, ErrorCodes } from './errors.js';
export type { ErrorCode } from './errors.js';
