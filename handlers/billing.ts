import { defineHandler } from '@eventbus-sqs/eventbus';

/** Keeps billing in step with users and Stripe (the seed article's billing task runner). */
export default defineHandler({
  queue: 'billing',
  events: ['USER_CREATED', 'STRIPE_INCOMING_WEBHOOK'],
  concurrency: 5,
  async handle(event, ctx) {
    if (event.type === 'USER_CREATED') {
      ctx.log.info({ email: event.data?.email }, 'billing customer created');
      return true;
    }
    ctx.log.info({ stripeType: event.data?.type }, 'stripe webhook processed');
    return true;
  },
});
