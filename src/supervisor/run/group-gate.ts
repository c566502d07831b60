import type { Metrics } from '#metrics/registry.js';
import type { Logger } from '../../log.js';
import type { Capacity } from '../receive/capacity.js';
import type { InFlight, InFlightMessage } from '../in-flight.js';
import type { QueueRuntime, ReceivedMessage } from '../queue.js';

/** Parked messages (waiting for their group, without a slot) per queue: at least this many. */
export const MIN_PARKED = 100;
/** ... or this many per slot of the queue's cap. Past the bound, a parked message keeps its slot (backpressure). */
export const PARKED_PER_SLOT = 10;

/** Starts messages now (the dispatcher); `done` hears each one's end once it is settled: true when it was deleted. */
export type RunNow = (messages: ReceivedMessage[], held: InFlightMessage[], done: (m: ReceivedMessage, deleted: boolean) => void) => void;

export interface GroupGateOptions {
  queue: QueueRuntime;
  capacity: Capacity;
  inFlight: InFlight;
  run: RunNow;
  metrics: Pick<Metrics, 'groupsActive' | 'waitingForGroup'>;
  log: Logger;
}

interface Parked {
  m: ReceivedMessage;
  held: InFlightMessage;
  group: string;
  /** Kept its running slot (the park was full): it starts without asking Capacity. */
  slot: boolean;
}

/**
 * One queue's group gate, between the receive and the run (issue 17). A message whose group already
 * has its limit running on this host (1 on an ordered queue; `groupConcurrency` on a standard one)
 * is *parked*: in memory, in flight (InFlight extends it), its running slot given back to Capacity so
 * the queue can receive other groups' messages. When a message of the group ends, the group's next
 * parked message asks Capacity for a slot as a promotion (before the queue's receives), then starts.
 *
 * Ordered queues (SQS FIFO): a group's next message starts only once the previous one is deleted.
 * When a message fails (or its delete does), the group's parked messages are released (visibility 0):
 * SQS keeps the group locked while the failed message is in flight with its backoff, so its retry
 * comes before them; their receive counted toward maxReceiveCount all the same.
 *
 * A parked message's group: the MessageGroupId SQS returned; on a standard queue without one (no fair
 * queue), the event's `groupid` read from the body (only queues with `groupConcurrency` pay for that).
 * A message without a group is not gated. Group ids are never a metric label (unbounded).
 */
export class GroupGate {
  readonly #o: GroupGateOptions;
  readonly #limit: number;
  readonly #ordered: boolean;
  readonly #maxParked: number;
  /** Messages of a group started and not yet ended. */
  readonly #active = new Map<string, number>();
  /** Parked messages per group (so a later message of a group never overtakes a parked one). */
  readonly #parkedOf = new Map<string, number>();
  #parked: Parked[] = [];
  /** The group of each message started or parked (a body is parsed once). */
  readonly #groups = new WeakMap<ReceivedMessage, string>();
  #slotless = 0;
  #promoting = false;
  readonly #stop = new AbortController();

  constructor(options: GroupGateOptions) {
    this.#o = options;
    const h = options.queue.handler;
    this.#ordered = h.ordered;
    this.#limit = h.ordered ? 1 : (h.groupConcurrency ?? Infinity);
    this.#maxParked = Math.max(MIN_PARKED, PARKED_PER_SLOT * options.capacity.capOf(options.queue.queue));
  }

  /** Messages of the group running now (tests, status). */
  activeOf(group: string): number {
    return this.#active.get(group) ?? 0;
  }

  get parked(): number {
    return this.#parked.length;
  }

  /** Messages that hold a running slot each (the poller's, or a promotion's): started or parked. */
  admit(messages: readonly ReceivedMessage[], held: readonly InFlightMessage[]): void {
    const runM: ReceivedMessage[] = [];
    const runH: InFlightMessage[] = [];
    const q = this.#o.queue.queue;
    for (let i = 0; i < messages.length; i++) {
      const m = messages[i]!;
      const h = held[i]!;
      const group = this.#groupOf(m);
      if (group !== undefined) this.#groups.set(m, group);
      if (group === undefined || this.#stop.signal.aborted || (this.activeOf(group) < this.#limit && !this.#parkedOf.has(group))) {
        if (group !== undefined) this.#start(group);
        runM.push(m);
        runH.push(h);
        continue;
      }
      const slot = this.#slotless >= this.#maxParked;
      if (!slot) {
        this.#slotless++;
        this.#o.capacity.giveBack(q, 1);
      }
      this.#parked.push({ m, held: h, group, slot });
      this.#parkedOf.set(group, (this.#parkedOf.get(group) ?? 0) + 1);
    }
    this.#changed();
    if (runM.length) this.#o.run(runM, runH, this.#done);
  }

  /** No more starts; parked messages are released at once (visibility 0), so another host takes them now. */
  async stop(): Promise<number> {
    this.#stop.abort();
    const parked = this.#parked;
    this.#parked = [];
    this.#parkedOf.clear();
    this.#slotless = 0;
    const slots = parked.filter((p) => p.slot).length;
    if (slots) this.#o.capacity.giveBack(this.#o.queue.queue, slots);
    this.#changed();
    if (parked.length === 0) return 0;
    const released = (await Promise.all(parked.map((p) => this.#o.inFlight.release(p.held, 'shutdown')))).filter(Boolean).length;
    this.#o.log.info({ queue: this.#o.queue.queue, released, of: parked.length }, 'messages waiting for their group released at shutdown');
    return released;
  }

  readonly #done = (m: ReceivedMessage, deleted: boolean): void => {
    const group = this.#groups.get(m);
    if (group === undefined) return;
    const n = this.activeOf(group) - 1;
    if (n > 0) this.#active.set(group, n);
    else this.#active.delete(group);
    if (this.#ordered && !deleted) this.#releaseGroup(group);
    this.#changed();
    this.#pump();
  };

  #start(group: string): void {
    this.#active.set(group, this.activeOf(group) + 1);
  }

  /** Ordered queue, a message of `group` failed: its parked messages go back to SQS behind it. */
  #releaseGroup(group: string): void {
    if (!this.#parkedOf.has(group)) return;
    const mine = this.#parked.filter((p) => p.group === group);
    this.#parked = this.#parked.filter((p) => p.group !== group);
    this.#parkedOf.delete(group);
    const slots = mine.filter((p) => p.slot).length;
    this.#slotless -= mine.length - slots;
    if (slots) this.#o.capacity.giveBack(this.#o.queue.queue, slots);
    for (const p of mine) void this.#o.inFlight.release(p.held, 'group');
    if (this.#o.log.isLevelEnabled('debug')) this.#o.log.debug({ queue: this.#o.queue.queue, released: mine.length }, 'a message of its group failed: its later messages released behind it');
  }

  /** Parked messages whose group has room now, in the order they came (at most the room of each group). */
  #ready(): Parked[] {
    const room = new Map<string, number>();
    const out: Parked[] = [];
    for (const p of this.#parked) {
      let r = room.get(p.group);
      if (r === undefined) room.set(p.group, (r = this.#limit - this.activeOf(p.group)));
      if (r <= 0) continue;
      room.set(p.group, r - 1);
      out.push(p);
    }
    return out;
  }

  #take(ps: Parked[]): void {
    if (ps.length === 0) return;
    const taken = new Set(ps);
    this.#parked = this.#parked.filter((p) => !taken.has(p));
    for (const p of ps) {
      const n = (this.#parkedOf.get(p.group) ?? 0) - 1;
      if (n > 0) this.#parkedOf.set(p.group, n);
      else this.#parkedOf.delete(p.group);
      if (!p.slot) this.#slotless--;
      this.#start(p.group);
    }
    this.#changed();
    this.#o.run(
      ps.map((p) => p.m),
      ps.map((p) => p.held),
      this.#done,
    );
  }

  /** Starts what may start: parked messages that kept a slot at once, the others as Capacity promotes them. */
  #pump(): void {
    if (this.#stop.signal.aborted) return;
    const ready = this.#ready();
    this.#take(ready.filter((p) => p.slot));
    const need = ready.filter((p) => !p.slot).length;
    if (need === 0 || this.#promoting) return;
    this.#promoting = true;
    const q = this.#o.queue.queue;
    void this.#o.capacity.promote(q, need, this.#stop.signal).then((n) => {
      this.#promoting = false;
      if (n === 0) return; // stopping, or capacity closed
      // Asked again: a failure may have released some meanwhile, another ended.
      const now = this.#ready().filter((p) => !p.slot);
      if (this.#stop.signal.aborted) {
        this.#o.capacity.giveBack(q, n);
        return;
      }
      const start = now.slice(0, n);
      if (n > start.length) this.#o.capacity.giveBack(q, n - start.length);
      this.#take(start);
      this.#pump();
    });
  }

  #changed(): void {
    const q = this.#o.queue.queue;
    this.#o.metrics.groupsActive.set({ queue: q }, this.#active.size);
    this.#o.metrics.waitingForGroup.set({ queue: q }, this.#parked.length);
  }

  #groupOf(m: ReceivedMessage): string | undefined {
    if (m.groupId) return m.groupId;
    if (this.#ordered) return undefined;
    return groupFromBody(m.body);
  }
}

/** The event's `groupid` from a body: the SNS envelope's Message, or the event itself (raw delivery). */
export function groupFromBody(body: string): string | undefined {
  try {
    let v = JSON.parse(body) as unknown;
    if (v && typeof v === 'object' && (v as Record<string, unknown>).Type === 'Notification' && typeof (v as Record<string, unknown>).Message === 'string') {
      v = JSON.parse((v as Record<string, string>).Message!);
    }
    const g = v && typeof v === 'object' ? (v as Record<string, unknown>).groupid : undefined;
    return typeof g === 'string' && g !== '' ? g : undefined;
  } catch {
    return undefined;
  }
}
