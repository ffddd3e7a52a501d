// The built package: what `import 'vgg-torch'` and `require('vgg-torch')` load
// (dist/, built by tsup; test/global-setup.ts rebuilds it when stale), not the
// TypeScript sources the other tests import. A child process imports the package
// by its own name, ESM and CommonJS, runs the public surface, and its answers
// must equal the sources' and torchvision's.
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import * as source from '../lib/index.js';
import { readFixture } from './helpers.js';

const FACTORIES = ['vgg11', 'vgg11_bn', 'vgg13', 'vgg13_bn', 'vgg16', 'vgg16_bn', 'vgg19', 'vgg19_bn'] as const;

/**
 * The probe, run against a module `vt`: the same code runs on the sources in this
 * process (it is sent to the child as text, so it uses nothing but `vt`, `dir` and FACTORIES).
 */
function probe(vt: typeof source, dir: string): Record<string, unknown> {
  const out: Record<string, unknown> = { reprs: {}, keys: {} };
  for (const name of FACTORIES) {
    const m = vt[name]({ initWeights: false });
    (out.reprs as Record<string, string>)[name] = m.toString();
    (out.keys as Record<string, string[]>)[name] = vt.tidy(() => [...m.stateDict().keys()]);
    m.dispose();
  }
  vt.manualSeed(777);
  const model = vt.vggTutorial().eval();
  out.tutorial = model.toString();
  vt.tidy(() => {
    vt.manualSeed(1);
    const y = vt.noGrad(() => model.forward(vt.randn(2, 3, 32, 32)));
    out.forward = Array.from(y.toTypedArray() as Float32Array);
    const file = `${dir}/tutorial-${Math.random().toString(36).slice(2)}.pth`;
    vt.save(model.stateDict(), file);
    const loaded = vt.load(file) as Map<string, source.Tensor>;
    out.saveLoad = [...model.stateDict()].every(([k, t]) => loaded.get(k)?.equal(t));
    const t = vt.fromBuffer(new Float32Array([1, 2, 3, 4.5]).buffer, { dtype: 'float32', shape: [2, 2] });
    out.fromBuffer = [t.shape, t.sum().item()];
    out.optimizer = new vt.optim.SGD(model.parameters(), { lr: 0.1, momentum: 0.9 }).toString();
    out.transforms = new vt.transforms.Compose([new vt.transforms.Resize(32), new vt.transforms.CenterCrop(32)]).toString();
  });
  model.dispose();
  try {
    vt.load(`${dir}/missing.pth`);
  } catch (e) {
    out.error = `${(e as Error).constructor.name}: ${(e as Error).message}`;
  }
  out.leaked = vt.memory().tensors;
  return out;
}

const work = resolve('tmp', 'dist-test'); // inside the package, so that it can import itself by name
mkdirSync(work, { recursive: true });
const dir = mkdtempSync(join(work, 'run-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A CIFAR-10 test batch of 100 made-up images (what the loader tests read), once. */
function fakeCifar(): string {
  const root = join(dir, 'cifar');
  if (existsSync(root)) return root;
  mkdirSync(join(root, 'cifar-10-batches-bin'), { recursive: true });
  const bytes = Buffer.alloc(100 * 3073);
  for (let i = 0; i < bytes.length; i++) bytes[i] = i % 3073 === 0 ? (i / 3073) % 10 : Math.imul(i, 2654435761) >>> 24;
  writeFileSync(join(root, 'cifar-10-batches-bin', 'test_batch.bin'), bytes);
  return root;
}

function runBuilt(format: 'esm' | 'cjs'): Record<string, unknown> {
  const body = `const FACTORIES = ${JSON.stringify(FACTORIES)};\nconst probe = ${probe.toString()};\nprocess.stdout.write(JSON.stringify(probe(vt, ${JSON.stringify(dir)})));\n`;
  const file = join(dir, format === 'esm' ? 'probe.mjs' : 'probe.cjs');
  writeFileSync(file, (format === 'esm' ? "import * as vt from 'vgg-torch';\n" : "const vt = require('vgg-torch');\n") + body);
  const r = spawnSync(process.execPath, [file], { encoding: 'utf8', cwd: dir, timeout: 120_000 });
  if (r.status !== 0) throw new Error(`${format} probe failed (${r.status ?? r.signal}):\n${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, unknown>;
}

describe('the built package (dist/)', () => {
  const fx = readFixture<{ models: Record<string, { repr: string }>; keys: Record<string, string[]> }>('vgg.json');
  const expected = probe(source, dir);

  it('the sources print torchvision\'s text and keys (the reference for the built package)', () => {
    expect((expected.reprs as Record<string, string>).vgg11).toBe(fx.models.vgg11.repr);
    expect((expected.reprs as Record<string, string>).vgg16_bn).toBe(fx.models.vgg16_bn.repr);
    expect(expected.tutorial).toBe(fx.models.tutorial.repr);
    expect(expected.keys).toEqual(fx.keys);
    expect(expected.saveLoad).toBe(true);
    expect(expected.fromBuffer).toEqual([[2, 2], 10.5]);
    expect(expected.optimizer).toMatch(/^SGD \(/);
    expect(expected.transforms).toMatch(/^Compose\(\n {4}Resize\(/);
    expect(expected.error).toMatch(/^Error: .*missing\.pth/);
  });

  for (const format of ['esm', 'cjs'] as const) {
    it(`${format.toUpperCase()}: print(model) of every factory, stateDict keys, forward, save/load, fromBuffer, class names and errors equal the sources'`, () => {
      const built = runBuilt(format);
      expect(built).toEqual({ ...expected, leaked: built.leaked });
      expect(built.leaked).toBe(0);
    });
  }

  it('DataLoader workers start from the build (dist/poolWorker.js), ESM and CommonJS, and give the batches of numWorkers: 0', () => {
    const root = fakeCifar();
    const body = `const T = vt.transforms;
const ds = new vt.CIFAR10({ root: ${JSON.stringify(root)}, train: false, transform: new T.Compose([new T.RandomCrop(32, { padding: 4 }), new T.RandomHorizontalFlip(), new T.ToTensor()]) });
const epoch = (numWorkers) => {
  vt.manualSeed(3);
  return vt.tidy(() => [...new vt.DataLoader(ds, { batchSize: 16, shuffle: true, numWorkers })].map(([x, y]) => [x.sum().item(), y.sum().item()]));
};
const out = { workers: epoch(2), inline: epoch(0) };
ds.dispose();
process.stdout.write(JSON.stringify(out));
`;
    for (const format of ['esm', 'cjs'] as const) {
      const file = join(dir, format === 'esm' ? 'loader.mjs' : 'loader.cjs');
      writeFileSync(file, (format === 'esm' ? "import * as vt from 'vgg-torch';\n" : "const vt = require('vgg-torch');\n") + body);
      const r = spawnSync(process.execPath, [file], { encoding: 'utf8', cwd: dir, timeout: 120_000 });
      expect(r.status, `${format}: ${r.stderr}`).toBe(0);
      const { workers, inline } = JSON.parse(r.stdout) as { workers: number[][]; inline: number[][] };
      expect(workers).toHaveLength(7);
      expect(workers).toEqual(inline);
    }
  });

  it('a loader worker that cannot start fails the batch with its reason instead of hanging a synchronous wait', () => {
    // A copy of the build without poolWorker.js (the addon is found through build/ beside it).
    const copy = join(dir, 'broken');
    mkdirSync(copy);
    cpSync(resolve('dist'), join(copy, 'dist'), { recursive: true });
    rmSync(join(copy, 'dist', 'poolWorker.js'));
    symlinkSync(resolve('build'), join(copy, 'build'));
    const file = join(copy, 'loader.mjs');
    writeFileSync(file, `import * as vt from './dist/index.js';
const ds = new vt.CIFAR10({ root: ${JSON.stringify(fakeCifar())}, train: false, transform: new vt.transforms.ToTensor() });
try {
  [...new vt.DataLoader(ds, { batchSize: 16, numWorkers: 1 })];
  console.log('no error');
} catch (e) {
  console.log(e.message);
}
`);
    const r = spawnSync(process.execPath, [file], { encoding: 'utf8', cwd: copy, timeout: 60_000 });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^DataLoader: the loader worker did not start: .*poolWorker\.js/);
  });

  it('the bin prints its help and a summary', () => {
    const help = spawnSync(process.execPath, ['dist/cli.js', '--help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toMatch(/^vgg-torch — .*\n\nUsage: vgg-torch <command>/);
    const summary = spawnSync(process.execPath, ['dist/cli.js', 'summary', 'tutorial'], { encoding: 'utf8' });
    expect(summary.status, summary.stderr).toBe(0);
    expect(summary.stdout).toMatch(/Total params/i);
  });
});
