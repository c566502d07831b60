import { z } from 'zod';
import { NonRetryableError, defineHandler } from '@eventbus-sqs/eventbus';

/**
 * Sends the welcome and comment emails (the seed article's email task runner). Its `events` map each
 * type to a schema (zod here; valibot or arktype work the same): the queue subscribes to those types,
 * `event` is typed by its `type`, and data that does not match is dead-lettered at once (`invalid`).
 */
export default defineHandler({
  queue: 'email',
  events: {
    USER_CREATED: z.object({ email: z.string(), name: z.string().optional() }),
    USER_COMMENT: z.object({ email: z.string(), comment: z.string() }),
  },
  // What ctx.publish may send, validated before it is sent.
  publishes: { EMAIL_SENT: z.object({ to: z.string(), subject: z.string() }) },
  concurrency: 10,
  visibilityTimeout: 30,
  maxReceiveCount: 3,
  async handle(event, ctx) {
    const to = event.data.email;
    // A bad address fails every time: NonRetryableError dead-letters it at once (result `rejected`),
    // instead of three receives with backoff. `npm run eventbus -- dlq peek email --dev` shows why.
    if (!/^[^@\s]+@[^@\s]+$/.test(to)) throw new NonRetryableError(`not an email address: ${JSON.stringify(to)}`);
    let subject: string;
    switch (event.type) {
      case 'USER_CREATED':
        subject = event.data.name ? `Welcome, ${event.data.name}!` : 'Welcome to the site!';
        break;
      case 'USER_COMMENT':
        subject = `Somebody commented: ${event.data.comment.slice(0, 40)}`;
        break;
    }
    // Sending email is not this example's subject: a real handler would call its mail provider
    // here, passing ctx.signal so a timeout cancels the request.
    ctx.log.info({ to, subject }, 'email sent');
    await ctx.publish('EMAIL_SENT', { to, subject });
    return true;
  },
});
