import t from 'tap';
import { Writable } from 'node:stream';
import { createLogger } from '../../dist/log.js';

function sink() {
  const lines: Array<Record<string, unknown>> = [];
  const stream = new Writable({
    write(chunk, _enc, cb) {
      for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l));
      cb();
    },
  });
  return { lines, stream };
}

t.test('credentials and configured secrets are redacted', async (t) => {
  const { lines, stream } = sink();
  const log = createLogger({ level: 'info', destination: stream as never });
  log.info({ credentials: { accessKeyId: 'AKIA123', secretAccessKey: 'shh' }, apiToken: 'tok', webhook: { secret: 'whsec' }, headers: { authorization: 'Bearer x' } }, 'x');
  log.info({ aws: { secretAccessKey: 'shh2', sessionToken: 'st' } }, 'y');
  log.info({ password: 'pw-top', db: { password: 'pw-nested', connectionString: 'postgres://u:pw-cs@h/db' } }, 'z');
  const text = JSON.stringify(lines);
  for (const s of ['AKIA123', '"shh"', 'tok"', 'whsec', 'Bearer x', 'shh2', '"st"', 'pw-top', 'pw-nested', 'pw-cs']) t.notOk(text.includes(s), `${s} not logged`);
  t.equal((lines[0]!.credentials as string), '[redacted]');
  t.equal(lines[0]!.msg, 'x');
});

t.test('JSON lines with the error under err', async (t) => {
  const { lines, stream } = sink();
  const log = createLogger({ level: 'debug', destination: stream as never });
  log.child({ queue: 'email', messageId: 'm1', eventType: 'T', receiveCount: 2 }).warn({ err: new Error('boom') }, 'handler failed');
  t.match(lines[0], { level: 40, queue: 'email', messageId: 'm1', eventType: 'T', receiveCount: 2, msg: 'handler failed', err: { message: 'boom', type: 'Error' } });
});
