import t from 'tap';
import { createAwsClients } from '../../dist/aws.js';

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
