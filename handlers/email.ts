import { defineHandler } from 'eventbus';

interface UserEventData {
  email?: string;
  inviterEmail?: string;
  comment?: string;
}

/** Sends the welcome and comment emails (the seed article's email task runner). */
export default defineHandler<UserEventData>({
  queue: 'email',
  events: ['USER_CREATED', 'USER_COMMENT'],
  concurrency: 10,
  visibilityTimeout: 30,
  maxReceiveCount: 3,
  async handle(event, ctx) {
    const to = event.data?.email;
    if (!to) {
      ctx.log.warn('no email address in the event; nothing to send');
      return true;
    }
    // A bad address fails every time: retried with backoff, then moved to email-dlq.
    if (!/^[^@\s]+@[^@\s]+$/.test(to)) throw new Error(`not an email address: ${JSON.stringify(to)}`);
    const subject = event.type === 'USER_CREATED' ? 'Welcome to the site!' : 'Somebody commented';
    // Sending email is not this example's subject: a real handler would call its mail provider
    // here, passing ctx.signal so a timeout cancels the request.
    ctx.log.info({ to, subject }, 'email sent');
    return true;
  },
});
