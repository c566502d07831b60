// Provisioning of the payloads bucket (README "Large events"): the bucket, and the lifecycle rule
// that expires offloaded payloads (eventbus never deletes them: several queues read one object).
// Loaded by provision.ts only when `payloads.bucket` is set, so the S3 SDK stays out of the start
// of everything else. Its calls are the provisioner's (test/unit/iam.test.ts), not the workers'.
import {
  CreateBucketCommand,
  GetBucketLifecycleConfigurationCommand,
  GetBucketTaggingCommand,
  HeadBucketCommand,
  PutBucketLifecycleConfigurationCommand,
  PutBucketTaggingCommand,
  type BucketLocationConstraint,
  type LifecycleRule,
} from '@aws-sdk/client-s3';
import type { AwsSettings } from '../aws.js';
import { awsErrorName, toAwsError } from '../errors.js';
import { createS3Client } from '../payloads/client.js';
import { describeTags, tagDiff, type ProvisionAction } from './provision.js';

export interface BucketPlan {
  bucket: string;
  prefix: string;
  retentionDays: number;
  /** The S3 client's settings (payloads.endpoint, else the endpoint). */
  s3: AwsSettings;
  /** Config `tags`: merged into the bucket's tag set (PutBucketTagging replaces the set: others are kept). */
  tags?: Readonly<Record<string, string>> | undefined;
}

/** The stable ID of our lifecycle rule: reruns replace it; other rules of the bucket are kept. */
export const LIFECYCLE_RULE_ID = 'eventbus-payloads-expiry';

/** Our lifecycle rule: payloads under the prefix expire after `retentionDays`. */
export function lifecycleRule(prefix: string, retentionDays: number): LifecycleRule {
  return { ID: LIFECYCLE_RULE_ID, Status: 'Enabled', Filter: { Prefix: prefix }, Expiration: { Days: retentionDays } };
}

/** Creates the bucket if missing and merges our lifecycle rule into its configuration. */
export async function ensureBucket(plan: BucketPlan, dryRun: boolean, done: (a: ProvisionAction) => ProvisionAction): Promise<ProvisionAction[]> {
  const s3 = createS3Client(plan.s3);
  try {
    const { bucket } = plan;
    const actions: ProvisionAction[] = [];
    let exists = true;
    try {
      await s3.send(new HeadBucketCommand({ Bucket: bucket }));
    } catch (err) {
      const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (status !== 404 && awsErrorName(err) !== 'NotFound' && awsErrorName(err) !== 'NoSuchBucket') throw toAwsError('HeadBucket', bucket, err);
      exists = false;
    }
    const rule = lifecycleRule(plan.prefix, plan.retentionDays);
    const ruleText = `expire ${plan.prefix || '(every key)'}* after ${plan.retentionDays} days (rule ${LIFECYCLE_RULE_ID})`;
    if (!exists) {
      const action: ProvisionAction = { kind: 'create', resource: `bucket ${bucket}`, detail: 'S3 bucket for large events' };
      if (!dryRun) {
        const region = plan.s3.region ?? (await s3.config.region());
        try {
          await s3.send(
            new CreateBucketCommand({
              Bucket: bucket,
              // us-east-1 takes no location constraint; every other region requires its own.
              ...(region && region !== 'us-east-1' ? { CreateBucketConfiguration: { LocationConstraint: region as BucketLocationConstraint } } : {}),
            }),
          );
        } catch (err) {
          if (awsErrorName(err) !== 'BucketAlreadyOwnedByYou') throw toAwsError('CreateBucket', bucket, err);
          // Made meanwhile (another provision run): read its lifecycle rules and tags before
          // writing ours, as for a bucket that existed (each Put replaces the whole set).
          exists = true;
        }
      }
      actions.push(done(action));
    } else {
      actions.push({ kind: 'ok', resource: `bucket ${bucket}`, detail: 'S3 bucket for large events' });
    }
    let rules: LifecycleRule[] = [];
    if (exists) {
      try {
        rules = (await s3.send(new GetBucketLifecycleConfigurationCommand({ Bucket: bucket }))).Rules ?? [];
      } catch (err) {
        if (awsErrorName(err) !== 'NoSuchLifecycleConfiguration') throw toAwsError('GetBucketLifecycleConfiguration', bucket, err);
      }
    }
    const others = rules.filter((r) => r.ID !== LIFECYCLE_RULE_ID);
    const ours = rules.find((r) => r.ID === LIFECYCLE_RULE_ID);
    const resource = `bucket lifecycle ${bucket}`;
    if (ours && sameRule(ours, rule)) {
      actions.push({ kind: 'ok', resource, detail: ruleText });
      const tagged = await ensureBucketTags(s3, plan, exists, dryRun, done);
      if (tagged) actions.push(tagged);
      return actions;
    }
    const kept = others.length ? `, kept ${others.length} other rule${others.length === 1 ? '' : 's'}` : '';
    const action: ProvisionAction = ours
      ? { kind: 'update', resource, detail: `${describe(ours)} -> ${ruleText}${kept}` }
      : { kind: rules.length ? 'update' : 'create', resource, detail: `${rules.length ? 'add rule: ' : ''}${ruleText}${kept}` };
    if (!dryRun) {
      try {
        await s3.send(new PutBucketLifecycleConfigurationCommand({ Bucket: bucket, LifecycleConfiguration: { Rules: [...others, rule] } }));
      } catch (err) {
        throw toAwsError('PutBucketLifecycleConfiguration', bucket, err);
      }
    }
    actions.push(done(action));
    const tagged = await ensureBucketTags(s3, plan, exists, dryRun, done);
    if (tagged) actions.push(tagged);
    return actions;
  } finally {
    s3.destroy();
  }
}

/**
 * Merges our tags into the bucket's tag set (read first: PutBucketTagging replaces the whole set,
 * and tags we did not set are kept). Null when no tags are configured.
 */
async function ensureBucketTags(s3: ReturnType<typeof createS3Client>, plan: BucketPlan, exists: boolean, dryRun: boolean, done: (a: ProvisionAction) => ProvisionAction): Promise<ProvisionAction | null> {
  const want = plan.tags ?? {};
  if (Object.keys(want).length === 0) return null;
  const { bucket } = plan;
  let have: Record<string, string> = {};
  if (exists) {
    try {
      const got = await s3.send(new GetBucketTaggingCommand({ Bucket: bucket }));
      have = Object.fromEntries((got.TagSet ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));
    } catch (err) {
      if (awsErrorName(err) !== 'NoSuchTagSet') throw toAwsError('GetBucketTagging', bucket, err);
    }
  }
  const resource = `tags bucket ${bucket}`;
  const diff = tagDiff(have, want);
  if (!diff) return { kind: 'ok', resource, detail: describeTags(want) };
  const kept = Object.keys(have).filter((k) => !(k in want)).length;
  const action: ProvisionAction = {
    kind: exists && Object.keys(have).length ? 'update' : 'create',
    resource,
    detail: `${diff.detail}${kept ? `, kept ${kept} other tag${kept === 1 ? '' : 's'}` : ''}`,
  };
  if (!dryRun) {
    const TagSet = Object.entries({ ...have, ...want }).map(([Key, Value]) => ({ Key, Value }));
    try {
      await s3.send(new PutBucketTaggingCommand({ Bucket: bucket, Tagging: { TagSet } }));
    } catch (err) {
      throw toAwsError('PutBucketTagging', bucket, err);
    }
  }
  return done(action);
}

function sameRule(a: LifecycleRule, b: LifecycleRule): boolean {
  // S3 returns `Filter: { Prefix }` as given; an old rule may carry the deprecated top-level `Prefix`.
  const prefixOf = (r: LifecycleRule) => r.Filter?.Prefix ?? r.Prefix ?? '';
  return a.Status === b.Status && prefixOf(a) === prefixOf(b) && a.Expiration?.Days === b.Expiration?.Days && !a.Filter?.And && !a.Filter?.Tag;
}

function describe(r: LifecycleRule): string {
  return `${r.Status ?? '?'} rule on ${r.Filter?.Prefix ?? r.Prefix ?? '(every key)'}, expiry ${r.Expiration?.Days ?? '-'} days`;
}
