import t from 'tap';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DEFAULT_MAX_ATTEMPTS, clientConfig, createAwsClients } from '../../dist/aws.js';

t.test('the clients carry no SDK logger middleware (it copied every output for a no-op logger)', async (t) => {
  const { sqs, sns } = createAwsClients({ endpoint: 'http://127.0.0.1:9', region: 'us-east-1' });
  for (const [name, c] of [['sqs', sqs], ['sns', sns]] as const) {
    const stack = c.middlewareStack.identify();
    t.ok(stack.some((m) => /retryMiddleware/.test(m)), `${name}: the stack is there (${stack.length} middleware)`);
    t.notOk(stack.some((m) => /loggerMiddleware/.test(m)), `${name}: no loggerMiddleware`);
  }
  sqs.destroy();
  sns.destroy();
});

const retryModeOf = async (c: SQSClient): Promise<string> => {
  const m = c.config.retryMode;
  return typeof m === 'string' ? m : m();
};

t.test('clientConfig: maxAttempts 3 by default; AWS_MAX_ATTEMPTS / AWS_RETRY_MODE are left to the SDK (issue 20)', async (t) => {
  // Expected: an operator's AWS_MAX_ATTEMPTS reaches the SDK. Broke: a hard-coded maxAttempts: 3 overrode it.
  const s = { endpoint: 'http://127.0.0.1:9', region: 'us-east-1' };
  t.equal(clientConfig(s, 8, {}).maxAttempts, DEFAULT_MAX_ATTEMPTS, 'no env: our default');
  t.equal(clientConfig(s, 8, { AWS_MAX_ATTEMPTS: '' }).maxAttempts, DEFAULT_MAX_ATTEMPTS, 'an empty variable counts as unset');
  t.notOk('maxAttempts' in clientConfig(s, 8, { AWS_MAX_ATTEMPTS: '7' }), 'AWS_MAX_ATTEMPTS: not passed');
  t.notOk('maxAttempts' in clientConfig(s, 8, { AWS_RETRY_MODE: 'adaptive' }), 'AWS_RETRY_MODE: not passed');
  t.notOk('retryMode' in clientConfig(s, 8, { AWS_RETRY_MODE: 'adaptive' }), 'retryMode is never passed');

  // What the SDK makes of it: it reads process.env itself, so set the variables for this check only.
  const saved = { AWS_MAX_ATTEMPTS: process.env.AWS_MAX_ATTEMPTS, AWS_RETRY_MODE: process.env.AWS_RETRY_MODE };
  t.teardown(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });
  delete process.env.AWS_MAX_ATTEMPTS;
  delete process.env.AWS_RETRY_MODE;
  const plain = new SQSClient(clientConfig(s, 8));
  t.equal(await plain.config.maxAttempts(), 3);
  t.equal(await retryModeOf(plain), 'standard');
  plain.destroy();
  process.env.AWS_MAX_ATTEMPTS = '7';
  process.env.AWS_RETRY_MODE = 'adaptive';
  const tuned = new SQSClient(clientConfig(s, 8));
  t.equal(await tuned.config.maxAttempts(), 7, 'the SDK took AWS_MAX_ATTEMPTS');
  t.equal(await retryModeOf(tuned), 'adaptive', 'the SDK took AWS_RETRY_MODE');
  tuned.destroy();
});
