// The config keys of what provision creates (issue 20): `tags` (AWS tag rules, EVENTBUS_TAGS as
// k=v,k2=v2) and `sqs.kmsKeyId` (EVENTBUS_SQS_KMS_KEY_ID; never the AWS managed alias/aws/sqs).
import t from 'tap';
import { loadConfig } from '../../dist/config.js';
import { failsConfig } from '../helpers/config-errors.js';

t.test('tags: from the file or EVENTBUS_TAGS (which wins), checked against the AWS tag rules', async (t) => {
  t.same(loadConfig({ env: {} }).tags, {}, 'none by default');
  t.same(loadConfig({ env: {}, overrides: { tags: { team: 'payments' } } }).tags, { team: 'payments' });
  t.same(loadConfig({ env: { EVENTBUS_TAGS: 'team=payments, env=prod,url=a=b' } }).tags, { team: 'payments', env: 'prod', url: 'a=b' }, 'k=v pairs; a value may hold =');
  t.same(loadConfig({ env: { EVENTBUS_TAGS: '' } }).tags, {}, 'empty: no tags');
  failsConfig(t, () => loadConfig({ env: { EVENTBUS_TAGS: 'team' } }), /EVENTBUS_TAGS: "team" is not key=value/);
  failsConfig(t, () => loadConfig({ env: { EVENTBUS_TAGS: 'a=1,a=2' } }), /tag key "a" is given twice/);
  failsConfig(t, () => loadConfig({ env: {}, overrides: { tags: { 'aws:owner': 'x' } } }), /tags: tag key "aws:owner": the aws: prefix is reserved/);
  failsConfig(t, () => loadConfig({ env: {}, overrides: { tags: { ['k'.repeat(129)]: 'x' } } }), /tags: tag key "k+" must be 1-128 characters/);
  t.ok(loadConfig({ env: {}, overrides: { tags: { ['k'.repeat(128)]: 'v'.repeat(256) } } }), '128 and 256 characters: the limits themselves');
  failsConfig(t, () => loadConfig({ env: {}, overrides: { tags: { '': 'x' } } }), /tag key "" must be 1-128/);
  failsConfig(t, () => loadConfig({ env: {}, overrides: { tags: { team: 'v'.repeat(257) } } }), /tags: tag team: the value must be at most 256 characters/);
  failsConfig(t, () => loadConfig({ env: {}, overrides: { tags: { team: 5 } } }), /tag team must have a string value/);
  failsConfig(t, () => loadConfig({ env: {}, overrides: { tags: { 'a,b': 'x' } } }), /may hold only letters, digits, spaces and _ \. : \/ = \+ - @/);
  const many = Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, 'v']));
  failsConfig(t, () => loadConfig({ env: {}, overrides: { tags: many } }), /has 51 tags; AWS allows at most 50/);
  t.ok(loadConfig({ env: {}, overrides: { tags: Object.fromEntries(Object.entries(many).slice(0, 50)) } }), '50 tags');
  failsConfig(t, () => loadConfig({ env: {}, overrides: { tags: ['a'] } }), /tags: must be of type Object/);
});

t.test('sqs.kmsKeyId: unset = SQS-managed; a key id, ARN or alias; never alias/aws/sqs', async (t) => {
  t.equal(loadConfig({ env: {} }).sqs.kmsKeyId, null);
  for (const id of ['1234abcd-12ab-34cd-56ef-1234567890ab', 'alias/eventbus', 'arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab', 'arn:aws:kms:eu-west-1:123456789012:alias/eventbus']) {
    t.equal(loadConfig({ env: { EVENTBUS_SQS_KMS_KEY_ID: id } }).sqs.kmsKeyId, id, id);
  }
  failsConfig(t, () => loadConfig({ env: { EVENTBUS_SQS_KMS_KEY_ID: 'alias/aws/sqs' } }), /sqs\.kmsKeyId: the AWS managed key alias\/aws\/sqs cannot be used: SNS cannot send to a queue encrypted with it/);
  failsConfig(t, () => loadConfig({ env: { EVENTBUS_SQS_KMS_KEY_ID: 'arn:aws:kms:us-east-1:123456789012:alias/aws/sqs' } }), /alias\/aws\/sqs cannot be used/);
  failsConfig(t, () => loadConfig({ env: { EVENTBUS_SQS_KMS_KEY_ID: 'not a key!' } }), /sqs\.kmsKeyId: must be a KMS key id, key ARN, alias name/);
});
