/** SQS caps a message's visibility at 12 hours from its receive. */
export const SQS_MAX_VISIBILITY_SEC = 43_200;

/**
 * Retry delay after the `receiveCount`-th receive failed: base doubling per receive, capped, with
 * jitter over the upper half ("equal jitter"): delay in [cap/2, cap]. Full jitter would allow a
 * zero delay, an immediate retry against a dependency that just failed.
 */
export function retryDelaySec(receiveCount: number, baseDelaySec: number, maxDelaySec: number, random: () => number = Math.random): number {
  const n = Math.max(1, Math.floor(receiveCount));
  const ceiling = Math.min(maxDelaySec, SQS_MAX_VISIBILITY_SEC, baseDelaySec * 2 ** Math.min(n - 1, 30));
  const half = ceiling / 2;
  return Math.min(SQS_MAX_VISIBILITY_SEC, Math.round(half + random() * half));
}

/** Backoff for our own retries of failed SQS calls (receive loop, acks, start): `baseMs` doubling to `maxMs`, equal jitter (a delay in [d/2, d]). */
export function callRetryDelayMs(attempt: number, maxMs = 20_000, baseMs = 100, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(Math.max(0, attempt), 20));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}
