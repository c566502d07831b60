// --print-iam with sqs.kmsKeyId (issue 20): the workers may use the queues' KMS key (kms:Decrypt to
// receive, kms:GenerateDataKey too to send to a DLQ), named by its ARN as IAM requires; an alias
// through kms:ResourceAliases. Without a key, no KMS statement at all.
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { iamPolicies } from '../../dist/publisher/iam.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TOPIC = 'arn:aws:sns:eu-west-1:123456789012:events';
const handlers = [{ queueName: 'prod-mail', dlqName: 'prod-mail-dlq' }];
const kms = (kmsKeyId: string | null) => iamPolicies({ handlers, topic: TOPIC, kmsKeyId }).worker.Statement.filter((s) => s.Action.some((a) => a.startsWith('kms:')));

t.test('the KMS statement follows the key', async (t) => {
  t.same(kms(null), [], 'SSE-SQS: no KMS permission');
  const keyArn = 'arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab';
  t.same(kms(keyArn), [{ Sid: 'EncryptedQueuesKey', Effect: 'Allow', Action: ['kms:Decrypt', 'kms:GenerateDataKey'], Resource: keyArn }]);
  t.same(kms('1234abcd-12ab-34cd-56ef-1234567890ab')[0]?.Resource, keyArn, "a key id: the ARN in the topic's region and account");
  t.same(kms('alias/eventbus')[0], {
    Sid: 'EncryptedQueuesKey',
    Effect: 'Allow',
    Action: ['kms:Decrypt', 'kms:GenerateDataKey'],
    Resource: 'arn:aws:kms:eu-west-1:123456789012:key/*',
    Condition: { 'ForAnyValue:StringEquals': { 'kms:ResourceAliases': 'alias/eventbus' } },
  }, 'an alias: any key of the account that has that alias');
  t.same(kms('arn:aws:kms:us-east-2:210987654321:alias/shared')[0]?.Resource, 'arn:aws:kms:us-east-2:210987654321:key/*', "an alias ARN: its own region and account");
  const provisioner = iamPolicies({ handlers, topic: TOPIC, kmsKeyId: keyArn }).provisioner;
  t.notOk(provisioner.Statement.some((s) => s.Action.some((a) => a.startsWith('kms:'))), 'the provisioner policy grants no KMS action');
});

t.test('eventbus provision --print-iam worker with EVENTBUS_SQS_KMS_KEY_ID', async (t) => {
  const out = execFileSync(process.execPath, [join(ROOT, 'bin', 'eventbus.js'), 'provision', '--print-iam', 'worker'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', EVENTBUS_QUEUE_PREFIX: 'prod-', EVENTBUS_TOPIC: TOPIC, EVENTBUS_SQS_KMS_KEY_ID: 'alias/eventbus' },
    encoding: 'utf8',
  });
  const doc = JSON.parse(out) as { Statement: Array<{ Sid: string; Condition?: unknown }> };
  t.match(doc.Statement.find((s) => s.Sid === 'EncryptedQueuesKey'), { Condition: { 'ForAnyValue:StringEquals': { 'kms:ResourceAliases': 'alias/eventbus' } } });
});
