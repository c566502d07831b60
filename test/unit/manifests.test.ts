// The Kubernetes examples in deploy/kubernetes (issue 14, Low): no service-account token in the
// pods, ingress only from the monitoring namespace to the HTTP port, a heap cap per worker thread,
// and the image pinned by digest in the docs. Parsed as YAML, not matched as text.
import t from 'tap';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { ROOT } from '../helpers/process.js';

// Manifests are free-form: the assertions below are the schema.
type Obj = Record<string, any>;

const DIR = join(ROOT, 'deploy', 'kubernetes');
const docs: Obj[] = readdirSync(DIR)
  .filter((f) => f.endsWith('.yaml'))
  .flatMap((f) =>
    parseAllDocuments(readFileSync(join(DIR, f), 'utf8')).map((d) => {
      if (d.errors.length) throw new Error(`${f}: ${d.errors.map((e) => e.message).join('; ')}`);
      return d.toJS() as Obj;
    }),
  )
  .filter(Boolean);
const one = (kind: string): Obj => {
  const found = docs.filter((d) => d.kind === kind);
  if (found.length !== 1) throw new Error(`expected one ${kind} in deploy/kubernetes, found ${found.length}`);
  return found[0]!;
};
const deployment = one('Deployment');
const pod = deployment.spec.template.spec as Obj;
const container = (pod.containers as Obj[]).find((c) => c.name === 'eventbus')!;
const env = (name: string) => (container.env as Obj[]).find((e) => e.name === name)?.value as string | undefined;
const mib = (q: string) => Number(/^(\d+)(Mi|Gi)$/.exec(q)![1]) * (q.endsWith('Gi') ? 1024 : 1);

t.test('no Kubernetes API token is mounted into the pods', async (t) => {
  const sa = one('ServiceAccount');
  t.equal(pod.serviceAccountName, sa.metadata.name, 'the pods run as the example service account');
  t.equal(sa.automountServiceAccountToken, false, 'the service account does not automount a token');
  t.equal(pod.automountServiceAccountToken, false, 'nor does the pod spec (it wins over the service account)');
});

t.test('a NetworkPolicy admits only the monitoring namespace, only to the HTTP port', async (t) => {
  const np = one('NetworkPolicy');
  t.same(np.spec.podSelector.matchLabels, deployment.spec.template.metadata.labels, "it selects the Deployment's pods");
  t.same(np.spec.policyTypes, ['Ingress'], 'it isolates ingress');
  t.equal(np.spec.ingress.length, 1, 'one rule');
  const rule = np.spec.ingress[0] as Obj;
  t.same(rule.from, [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'monitoring' } } }], 'from the monitoring namespace only');
  const httpPort = (container.ports as Obj[]).find((p) => p.name === 'metrics')!;
  t.equal(httpPort.containerPort, 9464);
  t.same(rule.ports, [{ protocol: 'TCP', port: httpPort.containerPort }], 'to the HTTP port only');
});

t.test('worker threads have a heap cap that fits the memory limit', async (t) => {
  const heap = Number(env('EVENTBUS_THREAD_HEAP_MB'));
  const threads = Number(env('EVENTBUS_THREADS'));
  t.ok(Number.isInteger(heap) && heap > 0, `EVENTBUS_THREAD_HEAP_MB is set (${env('EVENTBUS_THREAD_HEAP_MB')})`);
  const limit = mib(container.resources.limits.memory as string);
  t.ok(heap * threads <= limit / 2, `threads x heap cap (${threads} x ${heap} MiB) leaves half of the ${limit} MiB limit to the main thread and Buffers`);
});

t.test('the container runs unprivileged, and the docs pin the image by digest', async (t) => {
  t.equal(pod.securityContext.runAsNonRoot, true);
  t.equal(container.securityContext.allowPrivilegeEscalation, false);
  t.equal(container.securityContext.readOnlyRootFilesystem, true);
  t.same(container.securityContext.capabilities.drop, ['ALL']);
  t.match(readFileSync(join(ROOT, 'deploy', 'README.md'), 'utf8'), /image: [^\s]+@sha256:/, 'deploy/README.md shows the image by digest');
});
