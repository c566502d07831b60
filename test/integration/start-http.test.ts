// HTTP starts beside the queue lookup and the threads' start (start-up work): a port that cannot be
// had must still fail the start with its own error, and leave nothing running.
import t from 'tap';
import { createServer } from 'node:net';
import { startBus } from '../helpers/bus.js';

t.test('a port already in use fails the start with EADDRINUSE', async (t) => {
  const taken = createServer();
  await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
  t.teardown(() => new Promise<void>((resolve) => taken.close(() => resolve())));
  const port = (taken.address() as { port: number }).port;
  const startedAt = Date.now();
  await t.rejects(startBus([{ queue: 'q', events: ['E'] }], { config: { http: { host: '127.0.0.1', port } } }), { code: 'EADDRINUSE' });
  t.ok(Date.now() - startedAt < 30_000, `failed without waiting out a retry loop (${Date.now() - startedAt} ms)`);
});
