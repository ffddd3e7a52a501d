// The CIFAR-10 examples run end to end on small CIFAR-layout data (CIFAR-10
// itself cannot be downloaded here): the tutorial line for line, and the
// fine-tuning example starting from VGG16-BN weights that PyTorch put in
// torch.hub's cache, as a download would have. The main job (fashion-mnist.ts) runs on a slice
// of Debian's Fashion-MNIST in the precision AMP asks for, and says which and why.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadCheckpoint } from '../lib/train/checkpoint.js';
import { backends } from '../lib/runtime.js';
import { MetricsLog } from '../lib/train/metricsLog.js';
import { type EncodedTensor, decode, hasTorchPython, python, requireLiveOracle } from './helpers.js';

const work = mkdtempSync(join(tmpdir(), 'vgg-torch-examples-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

/** Runs an example with `work` as its working directory. */
function example(file: string, env: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const loader = pathToFileURL(resolve('node_modules/tsx/dist/loader.mjs')).href;
  return new Promise((res, rej) => {
    const child = spawn(process.execPath, ['--import', loader, resolve('examples', file)], {
      cwd: work,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', rej);
    child.on('close', (code) => res({ code, stdout, stderr }));
  });
}

beforeAll(() => {
  // CIFAR-10's binary layout: per image one label byte, then 3×32×32 pixels.
  const dir = join(work, 'cifar10', 'cifar-10-batches-bin');
  mkdirSync(dir, { recursive: true });
  let s = 3;
  for (const name of ['data_batch_1', 'data_batch_2', 'data_batch_3', 'data_batch_4', 'data_batch_5', 'test_batch']) {
    const buf = Buffer.alloc(256 * 3073);
    for (let i = 0; i < buf.length; i++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      buf[i] = i % 3073 === 0 ? (i / 3073) % 10 : s >>> 24;
    }
    writeFileSync(join(dir, `${name}.bin`), buf);
  }
  writeFileSync(join(dir, 'batches.meta.txt'), 'airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n');
});

describe('examples', () => {
  it('cifar10-vgg.ts: the tutorial prints its lines and writes the sample grid, the chart and the models', async () => {
    const r = await example('cifar10-vgg.ts', { EPOCHS: '1', TRAIN_LIMIT: '512', TEST_LIMIT: '32' });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^GroundTruth: {2}plane {3}car {2}bird {3}cat$/m);
    expect(r.stdout).toMatch(/^Predicted: {2}( *(plane|car|bird|cat|deer|dog|frog|horse|ship|truck)){4}$/m);
    expect(r.stdout).toMatch(/^Accuracy of the network on the 32 test images: \d+ %$/m);
    expect(r.stdout).toMatch(/^Finished Training$/m);
    expect(r.stderr).toMatch(/lr_scheduler\.step\(\)` before `optimizer\.step\(\)`/); // the tutorial's call order, warned as PyTorch does
    for (const f of ['samples.png', 'chart.html', 'metrics.jsonl']) expect(existsSync(join(work, 'runs', 'cifar10', f))).toBe(true);
    const acc = /test images: (\d+) %/.exec(r.stdout)![1];
    expect(existsSync(join(work, 'model', `model_epoch_0_acc_${acc}.pth`))).toBe(true);
    const epochs = MetricsLog.read(join(work, 'runs', 'cifar10', 'metrics.jsonl')).filter((x) => x.kind === 'epoch');
    expect(epochs).toHaveLength(1);
  });

  it('cifar10-finetune.ts: starts from the cached ImageNet weights, trains a new 10-class head', async () => {
    if (!hasTorchPython) {
      expect(requireLiveOracle).toBe(false);
      return;
    }
    // PyTorch writes VGG16-BN weights (seeded init) where torch.hub would have downloaded them to.
    const torchHome = join(work, 'torch-home');
    const script = `
import sys, os, json, base64, torch, torchvision
d = os.path.join(sys.argv[1], 'hub', 'checkpoints'); os.makedirs(d, exist_ok=True)
torch.manual_seed(5)
m = torchvision.models.vgg16_bn()
torch.save(m.state_dict(), os.path.join(d, 'vgg16_bn-6c64b313.pth'))
w = m.features[0].weight.detach().contiguous()
print(json.dumps({'dtype': 'float32', 'shape': list(w.shape), 'data': base64.b64encode(w.numpy().tobytes()).decode()}))
`;
    const py = await python(['-c', script, torchHome]);
    expect(py.status, py.stderr).toBe(0); // Python's warnings on stderr are not failures
    const conv0 = JSON.parse(py.stdout) as EncodedTensor;
    const r = await example('cifar10-finetune.ts', { EPOCHS: '1', TRAIN_LIMIT: '64', TEST_LIMIT: '32', BATCH: '32', TORCH_HOME: torchHome });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Test accuracy after 1 epochs: \d+\.\d %$/m);
    const ck = loadCheckpoint(join(work, 'runs', 'cifar10-finetune', 'checkpoint.pth'));
    try {
      expect(ck.model.get('classifier.6.weight')!.shape).toEqual([10, 4096]);
      expect(ck.model.get('classifier.3.weight')!.shape).toEqual([4096, 4096]);
      // Two SGD steps moved the first conv a little from PyTorch's weights (two fresh inits differ by ~0.3 at most elements' max).
      const want = decode(conv0);
      const delta = ck.model.get('features.0.weight')!.sub(want).abs().max().item() as number;
      want.dispose();
      expect(delta).toBeGreaterThan(0);
      expect(delta).toBeLessThan(0.1);
    } finally {
      ck.dispose();
    }
  });

  it('fashion-mnist.ts (the main job): AMP=auto picks bf16 exactly where the CPU has native bf16 and says why; AMP=off is fp32', async () => {
    const small = { TRAIN_IMAGES: '64', TEST_IMAGES: '50', EPOCHS: '1', BATCH: '32' };
    const bf16 = backends.cpu.bf16Support();
    const auto = await example('fashion-mnist.ts', { ...small, AMP: 'auto' });
    expect(auto.stderr).toBe('');
    expect(auto.code).toBe(0);
    expect(auto.stdout).toContain(bf16.native ? `Mixed precision: bf16 autocast (amp 'auto': ${bf16.reason})` : `Precision: fp32 (amp 'auto': ${bf16.reason})`);
    expect(auto.stdout).toMatch(/^Test accuracy \d+\.\d % after 1 epochs, \d+ s$/m);
    const [epoch] = MetricsLog.read(join(work, 'runs', 'fashion-mnist', 'metrics.jsonl')).filter((x) => x.kind === 'epoch');
    expect(epoch.precision).toBe(bf16.native ? 'bf16' : 'fp32');
    const off = await example('fashion-mnist.ts', { ...small, AMP: 'off' });
    expect(off.code).toBe(0);
    expect(off.stdout).toContain("Precision: fp32 (amp 'off')");
    const bad = await example('fashion-mnist.ts', { ...small, AMP: 'fp8' });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain('AMP must be auto, bf16 or off, got "fp8"');
  }, 600_000);
});
