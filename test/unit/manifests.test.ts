// The Kubernetes examples in deploy/kubernetes (issue 14, Low): no service-account token in the
// pods, ingress only from the monitoring namespace to the HTTP port, a heap cap per worker thread,
// and the image pinned by digest in the docs. Parsed as YAML, not matched as text.
// Issue 20: every document is valid against its kind's schema (kubernetes-models, and the Prometheus
// Operator's and KEDA's CRD schemas), and the PodDisruptionBudget and PodMonitor fit the Deployment.
import t from 'tap';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { ServiceAccount } from 'kubernetes-models/v1/ServiceAccount';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { NetworkPolicy } from 'kubernetes-models/networking.k8s.io/v1/NetworkPolicy';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1/PodDisruptionBudget';
import { PodMonitor } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor';
import { PrometheusRule } from '@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule';
import { ScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { ROOT } from '../helpers/process.js';

// Manifests are free-form: the assertions below are the schema.
type Obj = Record<string, any>;

const DIR = join(ROOT, 'deploy', 'kubernetes');
const files = readdirSync(DIR).filter((f) => f.endsWith('.yaml') || f.endsWith('.yml'));
const located: Array<{ file: string; doc: Obj }> = files
  .flatMap((f) =>
    parseAllDocuments(readFileSync(join(DIR, f), 'utf8')).map((d) => {
      if (d.errors.length) throw new Error(`${f}: ${d.errors.map((e) => e.message).join('; ')}`);
      return { file: f, doc: d.toJS() as Obj };
    }),
  )
  .filter((x) => Boolean(x.doc));
const docs: Obj[] = located.map((x) => x.doc);
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

/** The schema of each apiVersion/kind the examples use; a document of any other kind fails the test. */
const MODELS: Record<string, new (data: any) => { validate(): void }> = {
  'v1/ServiceAccount': ServiceAccount,
  'v1/ConfigMap': ConfigMap,
  'apps/v1/Deployment': Deployment,
  'networking.k8s.io/v1/NetworkPolicy': NetworkPolicy,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'monitoring.coreos.com/v1/PodMonitor': PodMonitor,
  'monitoring.coreos.com/v1/PrometheusRule': PrometheusRule,
  'keda.sh/v1alpha1/ScaledObject': ScaledObject,
};

t.test('every manifest is valid against the schema of its kind', async (t) => {
  t.ok(located.length >= 8, `${located.length} documents in ${files.join(', ')}`);
  for (const { file, doc } of located) {
    const key = `${doc.apiVersion}/${doc.kind}`;
    const Model = MODELS[key];
    t.ok(Model, `${file}: ${key} has a schema here (add it to MODELS)`);
    if (!Model) continue;
    let error = '';
    try {
      new Model(doc).validate();
    } catch (err) {
      error = (err as Error).message;
    }
    t.equal(error, '', `${file}: ${key} ${doc.metadata?.name} is valid`);
  }
});

t.test('the schema check catches a broken manifest', async (t) => {
  // Guards the test above against a validator that accepts anything.
  const broken = structuredClone(deployment);
  broken.spec.template.spec.containers[0].ports[0].containerPort = '9464';
  delete broken.spec.selector;
  t.throws(() => new Deployment(broken as never).validate(), /containerPort|selector/);
  const pm = structuredClone(one('PodMonitor'));
  pm.spec.podMetricsEndpoints = 'metrics';
  t.throws(() => new PodMonitor(pm as never).validate());
});

t.test('a PodDisruptionBudget lets node drains evict one pod at a time', async (t) => {
  const pdb = one('PodDisruptionBudget');
  t.same(pdb.spec.selector.matchLabels, deployment.spec.template.metadata.labels, "it selects the Deployment's pods");
  t.equal(pdb.spec.maxUnavailable, 1, 'one pod at a time');
  t.equal(pdb.spec.minAvailable, undefined, 'not minAvailable: with one replica a drain could never proceed');
});

t.test('a PodMonitor scrapes the metrics port with job="eventbus", which the alerts use', async (t) => {
  const pm = one('PodMonitor');
  const labels = deployment.spec.template.metadata.labels as Record<string, string>;
  t.same(pm.spec.selector.matchLabels, labels, "it selects the Deployment's pods");
  t.equal(labels[pm.spec.jobLabel as string], 'eventbus', 'the job label is taken from a pod label whose value is eventbus');
  t.match(readFileSync(join(ROOT, 'metrics', 'alerts.yml'), 'utf8'), /up\{job="eventbus"\}/, 'the alert rules look for job="eventbus"');
  const ports = (container.ports as Obj[]).map((p) => p.name);
  for (const e of pm.spec.podMetricsEndpoints as Obj[]) {
    t.ok(ports.includes(e.port), `endpoint port ${e.port} is a named container port`);
    t.equal(e.path, '/metrics');
  }
});

t.test('the PrometheusRule holds exactly the groups of metrics/alerts.yml', async (t) => {
  const rule = one('PrometheusRule');
  const alerts = parseYaml(readFileSync(join(ROOT, 'metrics', 'alerts.yml'), 'utf8')) as { groups: unknown[] };
  t.same(rule.spec.groups, alerts.groups, 'regenerate deploy/kubernetes/prometheusrule.yaml with the command in its header');
  t.strictSame(rule.spec.groups, alerts.groups);
});
