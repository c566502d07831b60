import { BroadcastChannel } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { GetQueueAttributesCommand, GetQueueUrlCommand, ReceiveMessageCommand, SendMessageCommand, type Message } from '@aws-sdk/client-sqs';
import { loadConfig, type Config } from '../../dist/config.js';
import { createLogger } from '../../dist/log.js';
import { createPublisher, type Publisher } from '../../dist/publisher/index.js';
import type { ResolvedHandler } from '../../dist/handlers.js';
import { Supervisor, type SupervisorOptions } from '../../dist/supervisor/supervisor.js';
import { emulator, uniqueName, waitFor, type TestEmulator } from './emulator.js';

/** The generic fixture handler (steered by event data). */
export const BEHAVE = fileURLToPath(new URL('../../test/fixtures/handlers/behave.mjs', import.meta.url));

/** What the fixture handler reports for each message it starts or finishes. */
export interface Seen {
  kind: 'start' | 'end' | 'setup' | 'teardown';
  queue: string;
  id: string;
  type: string | null;
  data: any;
  source: string;
  messageId: string;
  receiveCount: number;
  thread: number;
  at: number;
}

export interface HandlerSpec {
  queue: string;
  events?: string[] | null;
  concurrency?: number;
  prefetch?: number;
  visibilityTimeoutSec?: number;
  timeoutMs?: number;
  maxReceiveCount?: number;
  ordered?: boolean;
  groupConcurrency?: number;
  file?: string;
}

export interface Bus {
  emu: TestEmulator;
  sup: Supervisor;
  config: Readonly<Config>;
  prefix: string;
  publisher: Publisher;
  seen: Seen[];
  /** Max concurrency seen inside handlers: per queue, and in total. */
  peak(queue?: string): number;
  running(queue?: string): number;
  started(queue: string): Seen[];
  ended(queue: string): Seen[];
  queueUrl(queue: string, dlq?: boolean): Promise<string>;
  /** Visible / not-visible counts of a queue. */
  depth(queue: string, dlq?: boolean): Promise<{ visible: number; inFlight: number }>;
  sendRaw(queue: string, body: string, attributes?: Record<string, string>): Promise<void>;
  receiveAll(queue: string, dlq?: boolean, waitSec?: number): Promise<Message[]>;
  stop(): Promise<void>;
}

/** Starts an emulator (unless given) and a supervisor with fixture handlers, provisioned on a unique prefix. */
export async function startBus(
  handlers: HandlerSpec[],
  options: { config?: Record<string, unknown>; emu?: TestEmulator; waitTimeSec?: number; supervisor?: Partial<SupervisorOptions>; supervisorEndpoint?: string } = {},
): Promise<Bus> {
  const emu = options.emu ?? (await emulator());
  try {
    return await startBusOn(emu, handlers, options);
  } catch (err) {
    // A bad config or a failed start must not leave the emulator this call started behind.
    if (!options.emu) await emu.stop();
    throw err;
  }
}

async function startBusOn(
  emu: TestEmulator,
  handlers: HandlerSpec[],
  options: { config?: Record<string, unknown>; emu?: TestEmulator; waitTimeSec?: number; supervisor?: Partial<SupervisorOptions>; supervisorEndpoint?: string },
): Promise<Bus> {
  const prefix = `${uniqueName('q')}-`;
  const config = loadConfig({
    env: {},
    overrides: {
      endpoint: emu.endpoint,
      region: 'us-east-1',
      topic: uniqueName('topic'),
      queuePrefix: prefix,
      provision: true,
      http: { host: '127.0.0.1', port: 0 },
      threads: 2,
      concurrency: 10,
      logLevel: process.env.TEST_LOG_LEVEL ?? 'silent',
      shutdownTimeoutMs: 10_000,
      retry: { baseDelaySec: 1, maxDelaySec: 4 },
      ...options.config,
    },
  });
  const fifo = (h: HandlerSpec) => (h.ordered ? '.fifo' : '');
  const resolved: ResolvedHandler[] = handlers.map((h) => ({
    file: h.file ?? BEHAVE,
    queue: h.queue,
    queueName: `${prefix}${h.queue}${fifo(h)}`,
    dlqName: `${prefix}${h.queue}-dlq${fifo(h)}`,
    events: h.events === undefined ? null : h.events,
    concurrency: h.concurrency ?? config.concurrency,
    prefetch: h.ordered ? 0 : Math.min(h.prefetch ?? config.prefetch, h.concurrency ?? config.concurrency),
    ordered: h.ordered ?? false,
    groupConcurrency: h.groupConcurrency ?? null,
    publishes: null,
    visibilityTimeoutSec: h.visibilityTimeoutSec ?? 30,
    timeoutMs: h.timeoutMs ?? 60_000,
    maxReceiveCount: h.maxReceiveCount ?? 5,
  }));
  const channelName = uniqueName('chan');
  const queueIndex = Object.fromEntries(handlers.map((h, i) => [h.queue, i]));
  const counters = new SharedArrayBuffer(4 * 2 * (handlers.length + 1));
  const seen: Seen[] = [];
  const channel = new BroadcastChannel(channelName);
  channel.onmessage = (ev) => seen.push((ev as { data: Seen }).data);
  const sup = new Supervisor({
    config,
    log: createLogger({ level: config.logLevel }),
    aws: options.supervisorEndpoint ? { ...emu.aws, endpoint: options.supervisorEndpoint } : emu.aws,
    handlers: resolved,
    threadData: { channel: channelName, counters, queueIndex },
    waitTimeSec: options.waitTimeSec ?? 1,
    ...options.supervisor,
  });
  try {
    await sup.start();
  } catch (err) {
    channel.close(); // its port would keep the test process alive
    throw err;
  }
  const publisher = createPublisher({ sns: emu.sns, topic: config.topic, fifoTopic: config.fifoTopic, source: 'test' });
  const counts = new Int32Array(counters);
  const idx = (queue?: string) => (queue === undefined ? handlers.length : queueIndex[queue]!);
  const urls = new Map<string, string>();
  const queueUrl = async (queue: string, dlq = false) => {
    const spec = handlers.find((h) => h.queue === queue);
    const name = `${prefix}${queue}${dlq ? '-dlq' : ''}${spec?.ordered ? '.fifo' : ''}`;
    let url = urls.get(name);
    if (!url) {
      url = (await emu.sqs.send(new GetQueueUrlCommand({ QueueName: name }))).QueueUrl!;
      urls.set(name, url);
    }
    return url;
  };
  let stopped: Promise<void> | undefined;
  return {
    emu,
    sup,
    config,
    prefix,
    publisher,
    seen,
    peak: (queue) => Atomics.load(counts, 2 * idx(queue) + 1),
    running: (queue) => Atomics.load(counts, 2 * idx(queue)),
    started: (queue) => seen.filter((s) => s.kind === 'start' && s.queue === queue),
    ended: (queue) => seen.filter((s) => s.kind === 'end' && s.queue === queue),
    queueUrl,
    async depth(queue, dlq = false) {
      const a = await emu.sqs.send(
        new GetQueueAttributesCommand({
          QueueUrl: await queueUrl(queue, dlq),
          AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
        }),
      );
      return { visible: Number(a.Attributes?.ApproximateNumberOfMessages), inFlight: Number(a.Attributes?.ApproximateNumberOfMessagesNotVisible) };
    },
    async sendRaw(queue, body, attributes = {}) {
      await emu.sqs.send(
        new SendMessageCommand({
          QueueUrl: await queueUrl(queue),
          MessageBody: body,
          MessageAttributes: Object.fromEntries(Object.entries(attributes).map(([k, v]) => [k, { DataType: 'String', StringValue: v }])),
        }),
      );
    },
    async receiveAll(queue, dlq = false, waitSec = 1) {
      const out: Message[] = [];
      for (;;) {
        const r = await emu.sqs.send(
          new ReceiveMessageCommand({
            QueueUrl: await queueUrl(queue, dlq),
            MaxNumberOfMessages: 10,
            WaitTimeSeconds: waitSec,
            MessageSystemAttributeNames: ['ApproximateReceiveCount'],
            MessageAttributeNames: ['All'],
          }),
        );
        if (!r.Messages?.length) return out;
        out.push(...r.Messages);
      }
    },
    stop() {
      stopped ??= (async () => {
        await sup.stop('test');
        channel.close();
        if (!options.emu) await emu.stop();
      })();
      return stopped;
    },
  };
}

export { waitFor, uniqueName };
