// `eventbus ingress` with console.enabled (issue 16): the console without a supervisor serves the
// dead letters (and the archive when on); the live pages say where they are.
import t from 'tap';
import { GetQueueAttributesCommand, SendMessageBatchCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { loadHandlers } from '../../dist/handlers.js';
import { provision } from '../../dist/publisher/provision.js';
import { emulator, uniqueName, waitFor } from '../helpers/emulator.js';
import { freePort } from '../helpers/ports.js';
import { spawnNode, writeConfig, writeHandlers } from '../helpers/process.js';

t.test('the ingress serves the console: queues and dead letters, no live overview', async (t) => {
  const emu = await emulator();
  t.teardown(() => emu.stop());
  const topic = uniqueName('topic');
  const queuePrefix = `${uniqueName('ing')}-`;
  const handlersDir = writeHandlers([{ queue: 'mail', events: ['MAIL'] }]);
  const handlers = await loadHandlers({ handlersDir, queuePrefix, concurrency: 10, queues: {} });
  const topo = await provision(emu, { topic, handlers });
  const dlqUrl = topo.queues[0]!.dlqUrl;
  const event = { specversion: '1.0', id: 'ev-ingress-1', type: 'MAIL', source: 'test', time: new Date().toISOString(), data: { to: 'ada' } };
  await emu.sqs.send(new SendMessageCommand({ QueueUrl: dlqUrl, MessageBody: JSON.stringify(event), MessageAttributes: { 'event-type': { DataType: 'String', StringValue: 'MAIL' } } }));
  const port = await freePort();
  const config = writeConfig({ endpoint: emu.endpoint, region: 'us-east-1', topic, queuePrefix, handlersDir, console: { enabled: true } });
  const p = spawnNode('bin/eventbus.js', ['ingress', '--config', config, '--host', '127.0.0.1', '--port', String(port)]);
  t.teardown(async () => {
    p.child.kill('SIGTERM');
    await p.exited;
  });
  const api = `http://127.0.0.1:${port}/console/api`;
  await waitFor('ingress listening', async () => (await fetch(`http://127.0.0.1:${port}/healthz`).catch(() => null))?.status === 200, 20_000);
  t.match(await (await fetch(`${api}/info`)).json(), { role: 'ingress', live: false, dlq: true, archive: false, queues: [{ queue: 'mail', dlqName: `${queuePrefix}mail-dlq` }] });
  t.equal((await fetch(`${api}/overview`)).status, 404, 'no supervisor: no overview');
  t.equal((await fetch(`${api}/failures`)).status, 404, 'no supervisor: no failures');
  const d = (await (await fetch(`${api}/dlq/mail/messages`)).json()) as { messages: Array<{ event: { id: string }; deadLetterReason: string | null }> };
  t.equal(d.messages.length, 1);
  t.equal(d.messages[0]!.event.id, 'ev-ingress-1');
  t.equal(d.messages[0]!.deadLetterReason, null, 'moved by its receive count: no reason');
  // "Redrive all" moves at most 500 per request (the request must end within the idle timeout) and
  // says when more remain; the next request goes on.
  for (let i = 0; i < 52; i++) {
    const entries = Array.from({ length: 10 }, (_, j) => ({ Id: String(j), MessageBody: JSON.stringify({ ...event, id: `ev-bulk-${i}-${j}` }), MessageAttributes: { 'event-type': { DataType: 'String', StringValue: 'MAIL' } } }));
    await emu.sqs.send(new SendMessageBatchCommand({ QueueUrl: dlqUrl, Entries: entries }));
  }
  const redriveAll = async () =>
    (await (await fetch(`${api}/dlq/mail/redrive`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"all":true}' })).json()) as { moved: number; failed: number; more: boolean };
  const first = await redriveAll();
  t.match(first, { moved: 500, failed: 0, more: true }, 'the first request moves 500 and says more remain');
  const second = await redriveAll();
  t.match(second, { moved: 21, failed: 0, more: false }, 'the second moves the rest (520 + the first message)');
  const left = (await emu.sqs.send(new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ['ApproximateNumberOfMessages'] }))).Attributes ?? {};
  t.equal(Number(left.ApproximateNumberOfMessages), 0, 'the DLQ is empty');
  const page = await fetch(`http://127.0.0.1:${port}/console/`);
  t.equal(page.status, 200);
  t.match(await page.text(), /<script type="module" src="\/console\/assets\/app.js">/);
});
