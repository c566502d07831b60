import { ReceiveMessageCommand, type Message, type SQSClient } from '@aws-sdk/client-sqs';
import type { Metrics } from '#metrics/registry.js';
import { CALL_TIMEOUT_MS } from '../../aws.js';
import { isAbort } from '../../errors.js';
import type { Logger } from '../../log.js';
import { callRetryDelayMs } from '../../backoff.js';
import type { Capacity, Grant } from './capacity.js';
import { PrefetchBuffer } from './prefetch.js';
import type { Dispatcher } from '../run/dispatcher.js';
import type { LoadModel } from '../run/load-model.js';
import type { InFlight } from '../in-flight.js';
import type { SqsHealth } from '../serve/health.js';
import type { QueueRuntime, ReceivedMessage } from '../queue.js';

/** SQS limit: messages per ReceiveMessage. */
export const SQS_MAX_RECEIVE = 10;
/** SQS limit: the longest long poll. */
export const SQS_MAX_WAIT_SEC = 20;
/**
 * The long poll of a flowing queue's first lane. Not 0: a short poll answers from a sample of SQS's servers (it can
 * come back empty while messages wait) and misses every message that arrives while it is on its
 * way, which the next receive then has to fetch: a round trip of latency per message. A long poll
 * returns the moment one arrives. 1 s, not 20: the lane holds slots while it waits (twice what its
 * last receive got, 10 after one of 5 or more), and a queue that has just gone quiet must give
 * them back soon (then it long-polls with one). Only the first lane waits so; the others (a backlog's) poll
 * short. Not aborted at shutdown (it ends within this long), so what it took is released at once.
 */
export const FLOWING_WAIT_SEC = 1;
/** How long a flowing lane waits for a whole batch of free slots before it receives into fewer. */
export const FILL_MS = 5;
/**
 * How long the fill window may stay open while the queue's threads still have messages of it that
 * have not started (handlers that take their thread's time: receiving early would only add calls).
 */
export const FILL_MAX_MS = 25;

export interface PollerOptions {
  queue: QueueRuntime;
  sqs: SQSClient;
  capacity: Capacity;
  dispatcher: Dispatcher;
  load: LoadModel;
  inFlight: InFlight;
  metrics: Metrics;
  health: SqsHealth;
  log: Logger;
  waitTimeSec?: number;
}

export type PollerState = 'polling' | 'failing' | 'stopping' | 'stopped';

/**
 * One queue's receive loop. It receives only into slots it holds (never more than the caps allow).
 * Idle, one lane long-polls with a single slot, so a quiet queue holds at most one slot. Once a
 * receive returns messages the queue is flowing: receives take up to 10 (the first lane long-polls
 * for up to 1 s, FLOWING_WAIT_SEC, asking for twice what it last got), and each receive that comes
 * back full lets one more lane (up to one per 10 slots of the queue's cap) receive at the same
 * time, so one round trip does not cap a backlogged queue at 10 messages.
 */
export class Poller {
  readonly #o: PollerOptions;
  readonly #lanes: number;
  readonly #stop = new AbortController();
  /** The last receive returned messages: receive up to 10 without waiting. */
  #flowing = false;
  /** The last receive filled every slot it had. */
  #full = false;
  /** Lanes that may receive now (the others wait): 1 while the queue is quiet, up to `#lanes`. */
  #active = 1;
  /** Lanes waiting to be let receive, by lane index. */
  readonly #sleeping = new Map<number, () => void>();
  #running: Promise<void>[] = [];
  #state: PollerState = 'polling';
  #consecutiveErrors = 0;
  readonly #longPolls = new Set<AbortController>();

  readonly #prefetch: PrefetchBuffer;

  /** Keeps a fill window open while the load model says the queue's threads have work of it for a while. */
  readonly #hold = { hold: () => this.#o.load.holdsFill(this.#o.queue.queue), maxMs: FILL_MAX_MS };

  constructor(options: PollerOptions) {
    this.#o = options;
    this.#lanes = Math.max(1, Math.ceil(options.capacity.capOf(options.queue.queue) / SQS_MAX_RECEIVE));
    this.#prefetch = new PrefetchBuffer(options);
  }

  get state(): PollerState {
    return this.#state;
  }

  get lanes(): number {
    return this.#lanes;
  }

  start(): void {
    for (let i = 0; i < this.#lanes; i++) this.#running.push(this.#lane(i));
  }

  /**
   * No new receives. An idle long poll is aborted (SQS returns no message to an aborted call in
   * all but a rare race, and such a message comes back after its visibility timeout); a flowing
   * receive finishes and what it returns is released at once.
   */
  async stop(): Promise<void> {
    if (this.#state !== 'stopped') this.#state = 'stopping';
    this.#stop.abort();
    for (const ac of this.#longPolls) ac.abort();
    for (const wake of this.#sleeping.values()) wake();
    this.#sleeping.clear();
    await Promise.allSettled(this.#running);
    await this.#prefetch.stop();
    this.#state = 'stopped';
  }

  /** A receive came back full: there is a backlog, so one more lane may receive beside the others. */
  #grow(): void {
    if (this.#active >= this.#lanes) return;
    this.#active++;
    // Wake the lane that just became active (lanes sleep in no particular order).
    const wake = this.#sleeping.get(this.#active - 1);
    this.#sleeping.delete(this.#active - 1);
    wake?.();
  }

  async #lane(index: number): Promise<void> {
    const { capacity, queue: q, log } = this.#o;
    const stopped = this.#stop.signal;
    /** What this lane's last receive returned. */
    let last = 0;
    while (!stopped.aborted) {
      if (index >= this.#active) {
        await new Promise<void>((resolve) => this.#sleeping.set(index, resolve));
        continue;
      }
      const plan = this.#plan(index, last);
      const grant = await capacity.receive(q.queue, plan.want, { signal: stopped, fillMs: plan.fillMs, fill: this.#hold, prefetch: plan.prefetch });
      const slots = grant.running + grant.prefetch;
      if (slots === 0) break; // stopping, or capacity closed
      if (stopped.aborted) {
        giveBackUnused(capacity, q.queue, grant, 0);
        break;
      }
      let messages: Message[];
      const sentAt = Date.now();
      try {
        messages = await this.#receive(slots, plan.waitSec, plan.abortable);
        this.#consecutiveErrors = 0;
        this.#o.health.ok(q.queue);
        if (this.#state === 'failing') {
          this.#state = 'polling';
          log.info({ queue: q.queue }, 'receiving again');
        }
      } catch (err) {
        giveBackUnused(capacity, q.queue, grant, 0);
        if (stopped.aborted && isAbort(err)) break;
        await this.#onReceiveError(err, sentAt);
        continue;
      }
      // Running slots are filled first; the rest of the messages wait in prefetch slots.
      const run = Math.min(messages.length, grant.running);
      giveBackUnused(capacity, q.queue, grant, messages.length);
      // Flowing while receives return messages; one more lane per full receive, one fewer per empty
      // one: a trickle is served by one lane (no herd of empty receives, FAUXQS.md F2), a backlog
      // by one receive per 10 slots of the cap.
      this.#flowing = messages.length > 0;
      this.#full = messages.length > 0 && messages.length === slots;
      last = messages.length;
      if (this.#full) this.#grow();
      if (messages.length === 0) {
        if (this.#active > 1) this.#active--;
        continue;
      }
      this.#o.metrics.received.inc({ queue: q.queue }, messages.length);
      if (log.isLevelEnabled('debug')) log.debug({ queue: q.queue, count: messages.length, lane: index, slots, prefetched: messages.length - run, waitedMs: Date.now() - sentAt }, 'received');
      const received = messages.map(toReceived);
      const { inFlight } = this.#o;
      // In flight (extended) from now on, whether they start now or wait for a slot.
      const held = inFlight.addAll(q, received, q.handler.visibilityTimeoutSec, sentAt + q.handler.visibilityTimeoutSec * 1000);
      if (stopped.aborted) {
        // Received after the stop: handed back at once, so another host takes them now.
        giveBackUnused(capacity, q.queue, { running: run, prefetch: received.length - run }, 0);
        for (const m of held) void inFlight.release(m, 'shutdown');
        continue;
      }
      if (run > 0) this.#o.dispatcher.dispatchBatch(q, run === received.length ? received : received.slice(0, run), run === received.length ? held : held.slice(0, run));
      if (run < received.length) this.#prefetch.add(received.slice(run), held.slice(run));
    }
  }

  /**
   * What a lane's next receive asks for, how long it waits, and whether shutdown may abort it.
   * - Quiet queue: one slot, the idle long poll (20 s), abortable: it holds nothing else.
   * - Flowing, first lane: long-polls up to FLOWING_WAIT_SEC asking for twice what its last receive got
   *   (1, 2, 4, 8, 10 as a backlog builds), so a trickle does not sit on 10 slots other queues could
   *   use. (A poller-wide "last" made every lane shrink on any lane's short receive: +16 % calls in
   *   the io bench.)
   * - Flowing, the lanes a backlog added: 10, short poll, so they come back empty at once and give
   *   their slots back when the backlog ends.
   * While receives come back full, more messages wait: the fill window waits up to FILL_MS for a
   * whole batch of slots (a receive of 10 costs the call and the bill of a receive of 1); once they
   * come back short, what is free is taken at once (latency). A flowing queue's receives may take
   * prefetch slots once its running slots are full, while the load model says its handlers hold a
   * slot a while (`LoadModel.prefetches`). Only an idle long poll is abortable: a
   * flowing one returns within a second, and an aborted call may already have taken messages
   * (hidden for their visibility timeout, a receive spent), which a finished one releases at once.
   */
  #plan(index: number, last: number): { want: number; fillMs: number; waitSec: number; abortable: boolean; prefetch: boolean } {
    const idleWaitSec = this.#o.waitTimeSec ?? SQS_MAX_WAIT_SEC;
    if (!this.#flowing) return { want: 1, fillMs: 0, waitSec: idleWaitSec, abortable: true, prefetch: false };
    const fillMs = this.#full ? FILL_MS : 0;
    const prefetch = this.#o.load.prefetches(this.#o.queue.queue);
    if (index === 0) return { want: Math.max(1, Math.min(SQS_MAX_RECEIVE, 2 * last)), fillMs, waitSec: Math.min(FLOWING_WAIT_SEC, idleWaitSec), abortable: false, prefetch };
    return { want: SQS_MAX_RECEIVE, fillMs, waitSec: 0, abortable: false, prefetch };
  }

  async #receive(max: number, waitTimeSec: number, abortable: boolean): Promise<Message[]> {
    const q = this.#o.queue;
    const ac = new AbortController();
    if (abortable) this.#longPolls.add(ac);
    try {
      const out = await this.#o.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: q.url,
          MaxNumberOfMessages: max,
          WaitTimeSeconds: waitTimeSec,
          VisibilityTimeout: q.handler.visibilityTimeoutSec,
          // AWSTraceHeader: the parent of events without `traceparent` (X-Ray senders, AWS services).
          // MessageGroupId: the group gate's key (FIFO queues, and fair queues' tenants).
          MessageSystemAttributeNames: ['ApproximateReceiveCount', 'SentTimestamp', 'AWSTraceHeader', 'MessageGroupId'],
          MessageAttributeNames: ['All'],
        }),
        // A long poll answers after up to its wait; only past that plus the usual allowance is it hung.
        { abortSignal: ac.signal, requestTimeout: waitTimeSec * 1000 + CALL_TIMEOUT_MS },
      );
      return out.Messages ?? [];
    } finally {
      this.#longPolls.delete(ac);
    }
  }

  async #onReceiveError(err: unknown, sentAt: number): Promise<void> {
    const { queue: q, log, metrics, health } = this.#o;
    metrics.sqsErrors.inc({ queue: q.queue, operation: 'ReceiveMessage' });
    health.failed(q.queue, sentAt);
    const delayMs = callRetryDelayMs(this.#consecutiveErrors++);
    if (this.#state === 'polling') this.#state = 'failing';
    log.warn({ queue: q.queue, err, retryInMs: delayMs, attempt: this.#consecutiveErrors }, 'receive failed');
    await abortableSleep(delayMs, this.#stop.signal);
  }
}

/** Gives back the slots a receive did not fill: running slots are filled first, then prefetch slots. */
function giveBackUnused(capacity: Capacity, queue: string, grant: Grant, received: number): void {
  const run = Math.min(received, grant.running);
  capacity.giveBack(queue, grant.running - run);
  capacity.givePrefetchBack(queue, grant.prefetch - (received - run));
}

function toReceived(m: Message): ReceivedMessage {
  let attributes: Record<string, string> | undefined;
  if (m.MessageAttributes) {
    for (const k in m.MessageAttributes) {
      const v = m.MessageAttributes[k]!.StringValue;
      if (v !== undefined) (attributes ??= {})[k] = v;
    }
  }
  const sent = Number(m.Attributes?.SentTimestamp);
  const received: ReceivedMessage = {
    messageId: m.MessageId ?? '',
    receiptHandle: m.ReceiptHandle ?? '',
    body: m.Body ?? '',
    attributes,
    sqsAttributes: m.MessageAttributes,
    receiveCount: Number(m.Attributes?.ApproximateReceiveCount ?? '1') || 1,
    sentTimestampMs: Number.isFinite(sent) && sent > 0 ? sent : undefined,
    ...(m.Attributes?.MessageGroupId ? { groupId: m.Attributes.MessageGroupId } : {}),
  };
  const xray = m.Attributes?.AWSTraceHeader;
  if (xray) received.awsTraceHeader = xray;
  return received;
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}
