import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';

/**
 * Cores this process may use. Node 20's availableParallelism() ignores cgroup CPU quotas
 * (a 1-CPU container on a 64-core host reports 64), so the cgroup limit is read as well.
 */
export function usableCores(readFile: (path: string) => string = (p) => readFileSync(p, 'utf8')): number {
  const host = availableParallelism();
  const quota = cgroupCpuLimit(readFile);
  return quota === undefined ? host : Math.max(1, Math.min(host, quota));
}

function cgroupCpuLimit(readFile: (path: string) => string): number | undefined {
  try {
    // cgroup v2: "max 100000" or "<quota> <period>"
    const [quota, period] = readFile('/sys/fs/cgroup/cpu.max').trim().split(/\s+/);
    if (quota && period && quota !== 'max') return Math.ceil(Number(quota) / Number(period));
    return undefined;
  } catch {
    // fall through to v1
  }
  try {
    const quota = Number(readFile('/sys/fs/cgroup/cpu/cpu.cfs_quota_us').trim());
    const period = Number(readFile('/sys/fs/cgroup/cpu/cpu.cfs_period_us').trim());
    if (quota > 0 && period > 0) return Math.ceil(quota / period);
  } catch {
    // no cgroup limit visible
  }
  return undefined;
}
