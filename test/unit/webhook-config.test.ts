// Webhook source config (issue 14): several secrets (rotation), a signed timestamp, a delivery id
// header, and names that would shadow one another (Low) fail the start naming the key.
import t from 'tap';
import { loadConfig } from '../../dist/config.js';
import { failsConfig as fails } from '../helpers/config-errors.js';

t.test('secret and secrets together: every one verifies (rotation)', async (t) => {
  const f = loadConfig({ env: {}, overrides: { webhooks: { sources: { gh: { header: 'x-sig', secret: 'a', secrets: ['b', 'c'] } } } } });
  t.same(f.webhooks.sources.gh!.secrets, ['a', 'b', 'c']);
  fails(t, () => loadConfig({ env: {}, overrides: { webhooks: { sources: { gh: { header: 'x-sig' } } } } }), /webhooks\.sources\.gh has no secret/);
});

t.test("source names that fold to one event type, or to Stripe's, fail the start", async (t) => {
  const src = (names: string[]) => () => loadConfig({ env: {}, overrides: { webhooks: { sources: Object.fromEntries(names.map((n) => [n, { header: 'x-sig', secret: 's' }])) } } });
  fails(t, src(['github', 'GitHub']), /webhooks\.sources\.GitHub: the name folds to GITHUB_INCOMING_WEBHOOK.*, as webhooks\.sources\.github does/);
  fails(t, src(['git-hub', 'git_hub']), /webhooks\.sources\.git_hub: the name folds to GIT_HUB_INCOMING_WEBHOOK/);
  fails(t, src(['Stripe']), /webhooks\.sources\.Stripe: the name folds to STRIPE_INCOMING_WEBHOOK.*, as the built-in stripe route does/);
  fails(t, src(['stripe']), /webhooks\.sources\.stripe: .*built-in stripe route/);
  fails(t, src(['a/b']), /webhooks\.sources\.a\/b: a source name is/);
  t.doesNotThrow(src(['github', 'gitlab']));
});

t.test('webhook source keys are validated, naming the key', async (t) => {
  const one = (s: Record<string, unknown>, extra: Record<string, unknown> = {}) => () =>
    loadConfig({ env: {}, overrides: { webhooks: { sources: { gh: { header: 'x-sig', secret: 's', ...s } }, ...extra } } });
  fails(t, one({ secrets: 'a,b' }), /webhooks\.sources\.gh\.secrets must be a list of non-empty strings/);
  fails(t, one({ secret: '' }), /webhooks\.sources\.gh\.secret must be a non-empty string/);
  fails(t, one({ header: 'bad header' }), /webhooks\.sources\.gh\.header must be an HTTP header name/);
  fails(t, one({ tolerance: 5 }), /webhooks\.sources\.gh\.tolerance is not a known key/);
  fails(t, one({ toleranceSec: 60 }), /webhooks\.sources\.gh\.toleranceSec .* needs webhooks\.sources\.gh\.timestampHeader/);
  fails(t, one({ timestampHeader: 'x-ts', signedPayload: '{body}' }), /signedPayload must contain \{timestamp\} when webhooks\.sources\.gh\.timestampHeader is set/);
  fails(t, one({ signedPayload: '{id}.{body}' }), /webhooks\.sources\.gh\.signedPayload: \{id\} is not available/);
  fails(t, one({ timestampHeader: 'x-ts', toleranceSec: 900 }, { deliveryTtlSec: 600 }), /webhooks\.deliveryTtlSec \(600\) must be >= webhooks\.sources\.gh\.toleranceSec \(900\)/);
  fails(t, one({}, { stripe: { toleranceSec: 7200 }, deliveryTtlSec: 3600 }), /webhooks\.deliveryTtlSec \(3600\) must be >= webhooks\.stripe\.toleranceSec \(7200\)/);
  const c = loadConfig({ env: {}, overrides: { webhooks: { sources: { gh: { header: 'X-Sig', secret: 's', timestampHeader: 'X-Ts', deliveryIdHeader: 'X-Delivery' } } } } });
  t.same(c.webhooks.sources.gh, { secrets: ['s'], header: 'x-sig', timestampHeader: 'x-ts', toleranceSec: 300, deliveryIdHeader: 'x-delivery', signedPayload: '{timestamp}.{body}' }, 'defaults');
  t.same([c.webhooks.deliveryTtlSec, c.webhooks.deliveryCacheSize, c.webhooks.stripe.toleranceSec], [86_400, 100_000, 300]);
});
