// Start-time checks of ordered handlers (issue 17), in the spirit of `eventbus check`: what the
// handlers declare tells where an ordered handler may never see an event.
import type { ResolvedHandler } from './handlers.js';

export interface Warning {
  msg: string;
  fields: Record<string, unknown>;
}

/**
 * An ordered handler receives only events published with a `groupId`. For each event type an ordered
 * handler subscribes to that a handler here declares in `publishes`: a warning that its `ctx.publish`
 * must pass a `groupId` for the event to reach the ordered handler (a declaration cannot say whether it
 * does). Undeclared publishes are not known, and not reported.
 */
export function groupWarnings(handlers: readonly ResolvedHandler[]): Warning[] {
  const out: Warning[] = [];
  for (const o of handlers.filter((h) => h.ordered)) {
    for (const p of handlers) {
      if (!p.publishes) continue;
      const types = p.publishes.filter((t) => o.events === null || o.events.includes(t));
      if (types.length === 0) continue;
      out.push({
        msg: 'an ordered handler gets only events published with a groupId: pass one in ctx.publish of these types',
        fields: { orderedQueue: o.queue, publisher: p.queue, types },
      });
    }
  }
  return out;
}
