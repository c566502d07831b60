// The Dockerfile (issue 20): no container engine runs in CI, so its rules are checked on the parsed
// file (dockerfile-ast): multi-stage, runtime dependencies from `npm ci --omit=dev`, no emulator, a
// numeric non-root user, `node dist/supervisor` as the exec-form entry, a build context that holds
// what it copies; and deploy/kubernetes/deployment.yaml runs that image as the image expects.
import t from 'tap';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DockerfileParser, type Copy, type Instruction } from 'dockerfile-ast';
import { parseAllDocuments } from 'yaml';
import { ROOT } from '../helpers/process.js';

const text = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
const dockerfile = DockerfileParser.parse(text);
const ignore = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));

interface Stage {
  name: string | null;
  from: string;
  instructions: Instruction[];
}
const stages: Stage[] = [];
for (const i of dockerfile.getInstructions()) {
  if (i.getKeyword() === 'FROM') {
    const f = dockerfile.getFROMs().find((x) => x.getRange().start.line === i.getRange().start.line)!;
    stages.push({ name: f.getBuildStage(), from: f.getImageName() ?? '', instructions: [] });
  } else {
    stages.at(-1)?.instructions.push(i);
  }
}
const final = stages.at(-1)!;
const args = (i: Instruction) => i.getArgumentsContent() ?? '';
const of = (s: Stage, keyword: string) => s.instructions.filter((i) => i.getKeyword() === keyword);
/** `COPY [--from=X] SRC... DEST` as { from, sources, dest }. */
function copyOf(i: Instruction): { from: string | null; sources: string[]; dest: string } {
  const words = i.getArguments().map((a) => a.getValue());
  const from = (i as Copy).getFromFlag()?.getValue() ?? null;
  return { from, sources: words.slice(0, -1), dest: words.at(-1)! };
}

t.test('the Dockerfile parses, and is multi-stage', async (t) => {
  t.ok(stages.length >= 2, `${stages.length} stages`);
  t.ok(stages.slice(0, -1).every((s) => s.name), 'every stage but the last is named');
  const base = of(stages[0]!, 'RUN');
  t.ok(base.some((r) => /\bnpm run build\b/.test(args(r))), 'a stage compiles the TypeScript (npm run build)');
});

t.test('the runtime dependencies come from npm ci --omit=dev; no emulator, no dev packages', async (t) => {
  const copies = of(final, 'COPY').map(copyOf);
  const modules = copies.find((c) => c.dest.replace(/\/$/, '').endsWith('node_modules') && c.sources.some((s) => /node_modules\/?$/.test(s)));
  t.ok(modules, 'the image copies a whole node_modules from a stage');
  const deps = stages.find((s) => s.name === modules?.from);
  t.ok(deps, `the stage ${modules?.from} exists`);
  const ci = of(deps!, 'RUN').map(args).find((a) => /\bnpm ci\b/.test(a));
  t.match(ci, /\bnpm ci\b[^&]*--omit=dev/, `that stage runs npm ci --omit=dev (${ci})`);
  t.notOk(of(deps!, 'RUN').some((r) => /\bnpm (i|install)\b/.test(args(r))), 'and installs nothing else');
  t.notOk(of(final, 'RUN').some((r) => /\bnpm (ci|i|install)\b/.test(args(r))), 'the final stage installs nothing itself');

  // Single packages copied from the build stage (its node_modules has the devDependencies) must be
  // ones the handlers import, never the emulator or a test tool.
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
  const handlerImports = new Set<string>();
  for (const f of ['email.ts', 'billing.ts']) {
    for (const m of readFileSync(join(ROOT, 'handlers', f), 'utf8').matchAll(/from '([^'.][^']*)'/g)) handlerImports.add(m[1]!.startsWith('@') ? m[1]!.split('/').slice(0, 2).join('/') : m[1]!.split('/')[0]!);
  }
  for (const c of copies) {
    for (const s of c.sources) {
      const one = /node_modules\/((?:@[^/]+\/)?[^/]+)\/?$/.exec(s)?.[1];
      if (!one) continue;
      t.ok(handlerImports.has(one), `${one} is copied alone because a handler imports it`);
      t.notOk(pkg.dependencies[one], `${one} is not already a runtime dependency`);
    }
  }
  const all = stages.flatMap((s) => s.instructions).map(args);
  t.notOk(all.some((a) => /fauxqs/.test(a)), 'the emulator is nowhere in the image');
});

t.test('the image runs as a numeric non-root user, node dist/supervisor in exec form', async (t) => {
  const users = of(final, 'USER').map(args);
  t.equal(users.length, 1, 'one USER in the final stage');
  const uid = /^(\d+)(?::\d+)?$/.exec(users[0] ?? '')?.[1];
  t.ok(uid !== undefined && Number(uid) > 0, `USER is numeric and not root (${users[0]}), so runAsNonRoot can verify it`);
  const entry = of(final, 'ENTRYPOINT');
  t.equal(entry.length, 1, 'one ENTRYPOINT');
  t.same(JSON.parse(args(entry[0]!)), ['node', 'dist/supervisor'], 'exec form: SIGTERM reaches node, not a shell');
  t.equal(of(final, 'CMD').length, 0, 'no CMD: arguments (--config) come from the run');
  t.same(of(final, 'EXPOSE').map(args), ['9464'], 'the HTTP port');
  t.equal(of(final, 'WORKDIR').map(args).at(-1), '/app');
  t.ok(of(final, 'COPY').map(copyOf).some((c) => c.sources.includes('package.json')), 'package.json is in the image (version, self-imports of the handlers)');
});

t.test('the image holds what the published package holds (package.json "files": bin, assets, ...)', async (t) => {
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { files: string[] };
  const copied = of(final, 'COPY')
    .map(copyOf)
    .flatMap((c) => [c.dest, ...c.sources])
    .map((p) => p.replace(/^\.?\/(app\/)?/, '').replace(/\/$/, ''));
  const needed = pkg.files.filter((f) => !f.startsWith('!') && !f.startsWith('metrics/')).map((f) => f.replace(/\/$/, ''));
  t.ok(needed.length >= 3, 'files names bin, dist and assets at least');
  for (const f of needed) t.ok(copied.includes(f), `${f} is copied into the image`);
});

t.test('what the Dockerfile copies from the context exists and is not in .dockerignore', async (t) => {
  for (const s of stages) {
    for (const c of of(s, 'COPY').map(copyOf)) {
      if (c.from) continue;
      for (const src of c.sources) {
        const name = src.replace(/\/$/, '');
        t.ok(existsSync(join(ROOT, name)), `${name} exists`);
        t.notOk(ignore.includes(name) || ignore.includes(`${name}/`), `${name} is not ignored`);
      }
    }
  }
  for (const must of ['.git', 'node_modules', 'dist', 'dist-test', 'data']) t.ok(ignore.includes(must), `.dockerignore leaves out ${must}`);
});

t.test('deployment.yaml runs that image as it expects', async (t) => {
  const docs = parseAllDocuments(readFileSync(join(ROOT, 'deploy', 'kubernetes', 'deployment.yaml'), 'utf8')).map((d) => d.toJS() as Record<string, any>);
  const dep = docs.find((d) => d?.kind === 'Deployment')!;
  const pod = dep.spec.template.spec;
  const c = pod.containers.find((x: { name: string }) => x.name === 'eventbus');
  t.equal(c.command, undefined, 'no command: the image entry (node dist/supervisor) runs');
  t.same(c.args, ['--config', '/etc/eventbus/config.json'], 'the config from the ConfigMap as the argument');
  const uid = Number(/^(\d+)/.exec(of(final, 'USER').map(args)[0] ?? '')?.[1]);
  t.equal(pod.securityContext.runAsUser, uid, "the pod's runAsUser is the image's USER");
  t.equal(c.ports.find((p: { name: string }) => p.name === 'metrics').containerPort, Number(of(final, 'EXPOSE').map(args)[0]));
  t.match(c.image, /eventbus/, 'the eventbus image');
});
