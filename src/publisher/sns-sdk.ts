// The SNS client's commands, loaded on the first call that needs them: `eventbus` is imported by
// every handler module in every worker thread, and loading the SDK there at start costs each thread
// tens of milliseconds for a publish most handlers never make. The caller's SNSClient has loaded it
// already wherever a publish happens, so the first call pays only the lookup.
let sdk: Promise<typeof import('@aws-sdk/client-sns')> | undefined;

export function snsSdk(): Promise<typeof import('@aws-sdk/client-sns')> {
  sdk ??= import('@aws-sdk/client-sns');
  return sdk;
}
