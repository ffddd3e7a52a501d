// Mixed-precision training: backends.cpu (the kernel level and bf16 support, libtorch's answers
// against PyTorch's and /proc/cpuinfo), fit({ amp }) against PyTorch's own AMP loop bit for bit
// (bf16 autocast; fp16 autocast with GradScaler where libtorch has them on the CPU), checkpoints
// that hold the precision and the scaler and resume exactly, and the errors.
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, describe, expect, it } from 'vitest';
import {
  DataLoader,
  FashionMNIST,
  Subset,
  type Tensor,
  TensorDataset,
  amp,
  backends,
  cuda,
  makeLayers,
  manualSeed,
  memory,
  nn,
  optim,
  randint,
  randn,
  save,
  tidy,
  transforms,
  version,
} from '../lib/index.js';
import { ampRulesNow } from '../lib/amp/releases.js';
import { type FitOptions, type MetricsRecord, fit, loadCheckpoint } from '../lib/train/index.js';
import { bytesOf, hasTorchPython, python, requireLiveOracle, runNodeChild, runOracle } from './helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'vgg-torch-train-amp-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

// Training runs of a few dozen small batches on a loaded 2-core machine: a hang detector.
const TRAINING_TIMEOUT = 600_000;
const ORACLE_TIMEOUT = 300_000;
/** Why the fp16 tests are skipped on an older libtorch (1.13): it has neither CPU float16 autocast nor CPU GradScaler. */
const fp16Needs = 'needs CPU float16 autocast and GradScaler: libtorch 2.3 or later';

class Sink extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: string, done: () => void): void {
    this.text += chunk.toString();
    done();
  }
}

const sha = (t: Tensor): string => createHash('sha256').update(bytesOf(t)).digest('hex');
const losses = (records: readonly MetricsRecord[]) => records.filter((r) => r.kind === 'batch').map((r) => r.loss);
const epochRecords = (records: readonly MetricsRecord[]) => records.filter((r) => r.kind === 'epoch');

/** /proc/cpuinfo's flags (Linux). */
const cpuFlags = (): Set<string> => new Set(/^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))![1].trim().split(/\s+/));

/** The slim VGG of test/train.test.ts; `dropout` false for the oracle (no RNG in the forward pass). */
const slimVgg = (dropout: boolean) =>
  new nn.Sequential(
    makeLayers([16, 'M', 32, 'M'], { batchNorm: true, inChannels: 1 }),
    new nn.Flatten(),
    ...(dropout ? [new nn.Dropout(0.3)] : []),
    new nn.Linear(32 * 7 * 7, 10),
  );

describe('backends.cpu', () => {
  it(
    "getCpuCapability() is libtorch's kernel level, as PyTorch names it",
    async () => {
      const level = backends.cpu.getCpuCapability();
      expect(['NO AVX', 'AVX2', 'AVX512', 'DEFAULT', 'VSX', 'ZVECTOR', 'SVE256']).toContain(level);
      // ATEN_CPU_CAPABILITY lowers libtorch's choice: the answer must follow it, so it is libtorch's.
      const child = await runNodeChild(
        "process.env.ATEN_CPU_CAPABILITY = 'default'; const { backends } = await import(LIB); console.log(backends.cpu.getCpuCapability());",
        { timeoutMs: 120_000 },
      );
      expect(child.status, child.stderr).toBe(0);
      expect(child.stdout.trim()).toBe('NO AVX');
      if (!hasTorchPython) {
        expect(requireLiveOracle).toBe(false);
        return;
      }
      // 2.x: torch.backends.cpu.get_cpu_capability(); 1.13 has only torch.__config__.show()'s line.
      const py = await python([
        '-c',
        `import torch, re
b = getattr(torch.backends, 'cpu', None)
print(b.get_cpu_capability() if b is not None else re.search(r'CPU capability usage: (.*)', torch.__config__.show()).group(1))`,
      ]);
      expect(py.status, py.stderr).toBe(0);
      expect(level).toBe(py.stdout.trim());
    },
    ORACLE_TIMEOUT,
  );

  it(
    "bf16Support() agrees with /proc/cpuinfo and with PyTorch's torch.cpu checks",
    async () => {
      const s = backends.cpu.bf16Support();
      const flags = cpuFlags();
      const fromFlags = [...(flags.has('avx512_bf16') ? ['AVX512_BF16'] : []), ...(flags.has('amx_bf16') ? ['AMX_BF16'] : [])];
      expect(s.features).toEqual(fromFlags);
      expect(s.native).toBe(fromFlags.length > 0);
      expect(s.source).toBe(version.torch.startsWith('1.') ? '/proc/cpuinfo' : 'libtorch');
      expect(s.reason).toBe(s.native ? `this CPU has ${fromFlags.join(' and ')}` : expect.stringMatching(/^this CPU has no native bf16: /));
      if (!hasTorchPython) {
        expect(requireLiveOracle).toBe(false);
        return;
      }
      const py = await python([
        '-c',
        `import torch, json
c = torch.cpu
print(json.dumps([c._is_avx512_bf16_supported(), c._is_amx_tile_supported()] if hasattr(c, '_is_amx_tile_supported') else None))`,
      ]);
      expect(py.status, py.stderr).toBe(0);
      const answer = JSON.parse(py.stdout) as [boolean, boolean] | null;
      if (answer === null) {
        expect(version.torch.startsWith('1.')).toBe(true); // torch 1.13 has no such check to compare with
        return;
      }
      expect(s.features.includes('AVX512_BF16')).toBe(answer[0]);
      expect(s.features.includes('AMX_BF16')).toBe(answer[1]);
    },
    ORACLE_TIMEOUT,
  );
});

/** fit() with `amp` on 128 random 28×28 images in 4 batches, against PyTorch's loop from the same weights and batches. */
async function againstPyTorch(mode: 'bf16' | 'fp16'): Promise<void> {
  manualSeed(777);
  const model = slimVgg(false);
  const optimizer = new optim.SGD(model.parameters(), { lr: 0.02, momentum: 0.9 });
  manualSeed(3);
  const x = randn([128, 1, 28, 28]);
  const y = randint(0, 10, [128]);
  const input = join(dir, `oracle-${mode}.pth`);
  tidy(() => save({ model: model.stateDict(), x, y, batch: 32, amp: mode }, input));
  const oracle = runOracle<{ losses: number[]; scales: number[]; after: Record<string, string> }>('scripts/fixtures/amp_train.py', input);
  const out = new Sink();
  const r = await fit({
    model,
    optimizer,
    trainLoader: new DataLoader(new TensorDataset(x, y), { batchSize: 32 }),
    epochs: 1,
    logEvery: 1,
    amp: mode,
    stream: out,
    handleSignals: false,
  });
  const py = await oracle;
  expect(losses(r.metrics)).toEqual(py.losses); // bitwise: the same float32 loss each step
  expect(tidy(() => Object.fromEntries([...model.stateDict()].map(([k, t]) => [k, sha(t)])))).toEqual(py.after);
  const [epoch] = epochRecords(r.metrics);
  expect(epoch.precision).toBe(mode);
  if (mode === 'fp16') expect(epoch.lossScale).toBe(py.scales.at(-1));
  expect(out.text.split('\n')[0]).toMatch(
    mode === 'bf16' ? /^Mixed precision: bf16 autocast \(amp 'bf16': / : /^Mixed precision: fp16 autocast with GradScaler \(amp 'fp16'\)$/,
  );
  model.dispose();
  optimizer.dispose();
  x.dispose();
  y.dispose();
}

describe('fit({ amp })', () => {
  it(
    "amp 'bf16': the losses and weights of PyTorch's torch.autocast('cpu', dtype=torch.bfloat16) loop, bit for bit",
    async () => {
      if (!hasTorchPython) {
        expect(requireLiveOracle).toBe(false);
        return;
      }
      await againstPyTorch('bf16');
    },
    TRAINING_TIMEOUT,
  );

  it.skipIf(!ampRulesNow.cpuGradScaler)(
    `amp 'fp16': PyTorch's float16 autocast + GradScaler('cpu') loop, bit for bit (${fp16Needs})`,
    async () => {
      if (!hasTorchPython) {
        expect(requireLiveOracle).toBe(false);
        return;
      }
      await againstPyTorch('fp16');
    },
    TRAINING_TIMEOUT,
  );

  it(
    "prints the precision and why; 'auto' is bf16 exactly where the CPU has native bf16; 'off' is fp32",
    async () => {
      const bf16 = backends.cpu.bf16Support();
      for (const setting of ['auto', 'off', undefined] as const) {
        manualSeed(1);
        const model = slimVgg(false);
        const optimizer = new optim.SGD(model.parameters(), { lr: 0.01 });
        const x = randn([8, 1, 28, 28]);
        const y = randint(0, 10, [8]);
        const out = new Sink();
        const r = await fit({
          model,
          optimizer,
          trainLoader: new DataLoader(new TensorDataset(x, y), { batchSize: 8 }),
          epochs: 1,
          ...(setting ? { amp: setting } : {}),
          stream: out,
          handleSignals: false,
        });
        const line = out.text.split('\n')[0];
        if (setting === 'auto') {
          expect(line).toBe(bf16.native ? `Mixed precision: bf16 autocast (amp 'auto': ${bf16.reason})` : `Precision: fp32 (amp 'auto': ${bf16.reason})`);
          expect(epochRecords(r.metrics)[0].precision).toBe(bf16.native ? 'bf16' : 'fp32');
        } else {
          expect(line).toBe("Precision: fp32 (amp 'off')");
          expect(epochRecords(r.metrics)[0].precision).toBe('fp32');
        }
        for (const t of [x, y]) t.dispose();
        model.dispose();
        optimizer.dispose();
      }
    },
    TRAINING_TIMEOUT,
  );

  it('refuses what cannot run here with one clear error', async () => {
    manualSeed(1);
    const model = slimVgg(false);
    const optimizer = new optim.SGD(model.parameters(), { lr: 0.01 });
    const x = randn([8, 1, 28, 28]);
    const y = randint(0, 10, [8]);
    const base: FitOptions = { model, optimizer, trainLoader: new DataLoader(new TensorDataset(x, y), { batchSize: 8 }), epochs: 1, stream: new Sink() };
    await expect(fit({ ...base, amp: 'fp32' as never })).rejects.toThrow(
      /^fit\(\): option 'amp' must be one of 'auto', 'bf16', 'fp16', 'off', got 'fp32' \(string\)$/,
    );
    await expect(fit({ ...base, amp: true as never })).rejects.toThrow(TypeError);
    if (!ampRulesNow.cpuGradScaler) {
      await expect(fit({ ...base, amp: 'fp16' })).rejects.toThrow(
        new RegExp(
          `^fit\\(\\): amp 'fp16' on the CPU needs libtorch 2\\.3 or later .*; this is libtorch ${version.torch.replace(/\./g, '\\.')}: use amp 'bf16' or 'off'$`,
        ),
      );
    }
    if (!cuda.isAvailable()) {
      await expect(fit({ ...base, amp: 'fp16', device: 'cuda' })).rejects.toThrow(/^fit\(\): amp 'fp16' on device 'cuda' needs CUDA, and there is none here/);
    }
    await expect(fit({ ...base, amp: 'bf16', device: 'meta' })).rejects.toThrow(/^fit\(\): amp 'bf16' needs device 'cpu' or 'cuda'/);
    for (const t of [x, y]) t.dispose();
    model.dispose();
    optimizer.dispose();
  });
});

describe('mixed-precision checkpoints', () => {
  const normalize = () => [new transforms.ToTensor(), new transforms.Normalize([0.5], [0.5])];
  /** train.test.ts's setup, smaller: augmentation and dropout draw from the RNGs a resume must restore. */
  function setup() {
    manualSeed(777);
    const model = slimVgg(true);
    const optimizer = new optim.SGD(model.parameters(), { lr: 0.02, momentum: 0.9 });
    const scheduler = new optim.StepLR(optimizer, { stepSize: 1, gamma: 0.5 });
    const augment = [new transforms.RandomCrop(28, { padding: 2 }), new transforms.RandomHorizontalFlip()];
    const train = new FashionMNIST({ train: true, transform: new transforms.Compose([...augment, ...normalize()]) });
    const test = new FashionMNIST({ train: false, transform: new transforms.Compose(normalize()) });
    const first = (n: number) => Array.from({ length: n }, (_, i) => i);
    const trainLoader = new DataLoader(new Subset(train, first(400)), { batchSize: 50, shuffle: true, seed: 7 }); // 8 batches an epoch
    const testLoader = new DataLoader(new Subset(test, first(100)), { batchSize: 100 });
    const dispose = () => {
      model.dispose();
      optimizer.dispose();
      train.dispose();
      test.dispose();
    };
    return { run: { model, optimizer, scheduler, trainLoader, testLoader }, dispose };
  }

  /** An uninterrupted 2-epoch run, and one stopped after step 5 (mid-epoch 1), resumed in fresh objects: the same losses. */
  async function resumesExactly(mode: 'bf16' | 'fp16'): Promise<string> {
    const common = { epochs: 2, logEvery: 1, amp: mode, handleSignals: false } as const;
    const whole = setup();
    const reference = await fit({ ...whole.run, ...common, stream: new Sink(), outDir: join(dir, `${mode}-whole`) });
    whole.dispose();
    expect(losses(reference.metrics)).toHaveLength(16);
    const out = join(dir, `${mode}-parts`);
    const first = setup();
    const abort = new AbortController();
    const r1 = await fit({
      ...first.run,
      ...common,
      stream: new Sink(),
      outDir: out,
      signal: abort.signal,
      onRecord: (rec) => {
        if (rec.kind === 'batch' && rec.step === 5) abort.abort();
      },
    });
    first.dispose();
    expect(r1.interrupted).toBe(true);
    const ck = loadCheckpoint(r1.checkpoint!);
    expect([ck.epoch, ck.batch, ck.step, ck.amp]).toEqual([0, 5, 5, mode]);
    ck.dispose();
    // Resuming in another precision is refused: it would not continue the same run.
    const other = setup();
    await expect(fit({ ...other.run, ...common, amp: 'off', stream: new Sink(), outDir: out, resume: true })).rejects.toThrow(
      new RegExp(`^fit\\(\\): .*checkpoint\\.pth was trained with amp '${mode}'; resume it with amp '${mode}', not amp 'off'$`),
    );
    other.dispose();
    const second = setup();
    const sink = new Sink();
    const r2 = await fit({ ...second.run, ...common, stream: sink, outDir: out, resume: true });
    second.dispose();
    expect(r2.interrupted).toBe(false);
    expect(losses(r2.metrics)).toEqual(losses(reference.metrics));
    expect(epochRecords(r2.metrics).map((e) => [e.trainLoss, e.testLoss, e.lossScale])).toEqual(
      epochRecords(reference.metrics).map((e) => [e.trainLoss, e.testLoss, e.lossScale]),
    );
    expect(sink.text).toMatch(/Resuming from .*: epoch 1, after batch 5, step 5/);
    return r2.checkpoint!;
  }

  it(
    "amp 'bf16': an interrupted run resumes with exactly the losses of an uninterrupted one; PyTorch reads the checkpoint",
    async () => {
      const before = memory().tensors;
      const path = await resumesExactly('bf16');
      expect(memory().tensors).toBeLessThanOrEqual(before); // fit(), its scaler and checkpoints leak nothing
      if (!hasTorchPython) {
        expect(requireLiveOracle).toBe(false);
        return;
      }
      const py = await python(['-c', "import sys, json, torch; c = torch.load(sys.argv[1]); print(json.dumps([c['amp'], c['scaler']]))", path]);
      expect(py.status, py.stderr).toBe(0);
      expect(JSON.parse(py.stdout)).toEqual(['bf16', null]);
    },
    TRAINING_TIMEOUT,
  );

  it.skipIf(!ampRulesNow.cpuGradScaler)(
    `amp 'fp16': resumes exactly with the GradScaler restored; ckpt['scaler'] loads into torch's GradScaler (${fp16Needs})`,
    async () => {
      const path = await resumesExactly('fp16');
      const ck = loadCheckpoint(path);
      const scaler = new amp.GradScaler('cpu');
      ck.restore({ scaler });
      const ours = scaler.stateDict();
      ck.dispose();
      scaler.dispose();
      expect(ours.scale).toBeGreaterThan(0);
      if (!hasTorchPython) {
        expect(requireLiveOracle).toBe(false);
        return;
      }
      const py = await python([
        '-c',
        "import sys, json, torch; c = torch.load(sys.argv[1]); s = torch.amp.GradScaler('cpu'); s.load_state_dict(c['scaler']); print(json.dumps([c['amp'], s.get_scale(), s.state_dict()]))",
        path,
      ]);
      expect(py.status, py.stderr).toBe(0);
      const [mode, scale, state] = JSON.parse(py.stdout) as [string, number, Record<string, number>];
      expect(mode).toBe('fp16');
      expect(scale).toBe(ours.scale);
      expect(state).toEqual(ours);
    },
    TRAINING_TIMEOUT,
  );
});
