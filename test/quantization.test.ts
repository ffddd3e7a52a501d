// Post-training static int8 quantization on libtorch's quantized kernels:
// agreement with fp32 measured on real data (Fashion-MNIST, Debian's
// dataset-fashion-mnist), and clear errors.
import { describe, expect, it } from 'vitest';
import {
  DataLoader, FashionMNIST, Subset, type Tensor, backends, makeLayers, manualSeed, nn, noGrad, optim, quantization, randn, tidy, transforms,
} from '../lib/index.js';

describe('quantization.quantize', () => {
  it('an int8 copy of a model trained on Fashion-MNIST agrees with fp32 on ≥ 99 % of 1,000 test images (top-1), ≥ 99.5 % (top-5)', () => {
    manualSeed(0);
    const transform = new transforms.Compose([new transforms.ToTensor(), new transforms.Normalize([0.5], [0.5])]);
    const trainSet = new FashionMNIST({ train: true, transform });
    const testSet = new FashionMNIST({ train: false, transform });
    // A small VGG (makeLayers, batch norm) that trains in seconds on 2 cores.
    const model = new nn.Sequential(...makeLayers([16, 'M', 32, 'M'], { batchNorm: true, inChannels: 1 }).children(),
      new nn.Flatten(), new nn.Linear(32 * 7 * 7, 64), new nn.ReLU(true), new nn.Dropout(), new nn.Linear(64, 10));
    const opt = new optim.Adam(model.parameters(), { lr: 1e-3 });
    const loss = new nn.CrossEntropyLoss();
    // A short but real training run: 2,048 images, one epoch.
    for (const [x, y] of new DataLoader(new Subset(trainSet, Array.from({ length: 2048 }, (_, i) => i)), { batchSize: 64, shuffle: true })) {
      tidy(() => {
        opt.zeroGrad();
        loss.forward(model.forward(x), y).backward();
        opt.step();
      });
      x.dispose();
      y.dispose();
    }
    model.eval();
    // Calibration: 256 training images the model was not evaluated on.
    const calibration = [...new DataLoader(new Subset(trainSet, Array.from({ length: 256 }, (_, i) => 10_000 + i)), { batchSize: 64 })].map(([x, y]) => {
      y.dispose();
      return x;
    });
    const q = quantization.quantize(model, calibration);
    let top1 = 0;
    let top5 = 0;
    let correct = [0, 0];
    let n = 0;
    for (const [x, y] of new DataLoader(new Subset(testSet, Array.from({ length: 1000 }, (_, i) => i)), { batchSize: 250 })) {
      tidy(() => {
        const [a, b] = noGrad(() => [model.forward(x), q.forward(x)]);
        const ref = a.argmax(1);
        top1 += b.argmax(1).eq(ref).sum().item() as number;
        const [, b5] = b.topk(5);
        top5 += b5.eq(ref.unsqueeze(1)).sum().item() as number; // at most one match per row
        correct = [correct[0] + (ref.eq(y).sum().item() as number), correct[1] + (b.argmax(1).eq(y).sum().item() as number)];
        n += x.shape[0];
      });
      x.dispose();
      y.dispose();
    }
    console.log(`int8 vs fp32 on ${n} Fashion-MNIST test images: top-1 agreement ${(top1 / n * 100).toFixed(1)} %, top-5 ${(top5 / n * 100).toFixed(1)} %; ` +
      `accuracy fp32 ${(correct[0] / n * 100).toFixed(1)} %, int8 ${(correct[1] / n * 100).toFixed(1)} % (engine ${backends.quantized.engine})`);
    expect(n).toBe(1000);
    expect(correct[0] / n).toBeGreaterThan(0.7); // the model did learn
    expect(top1 / n).toBeGreaterThanOrEqual(0.99);
    expect(top5 / n).toBeGreaterThanOrEqual(0.995);
    q.dispose();
    model.dispose();
    for (const c of calibration) c.dispose();
    trainSet.dispose?.();
    testSet.dispose?.();
  });

  it('leaves the float model as it was, folds BatchNorm, drops dropout, and prints quantized layers', () => {
    manualSeed(1);
    const model = new nn.Sequential(new nn.Conv2d(3, 4, 3), new nn.BatchNorm2d(4), new nn.ReLU(), new nn.MaxPool2d(2), new nn.Flatten(),
      new nn.Dropout(), new nn.Linear(4 * 3 * 3, 5), new nn.ReLU(), new nn.Linear(5, 2));
    const before = [...model.stateDict()].map(([k, t]) => [k, t.clone()] as const);
    model.train();
    const q = quantization.quantize(model, [randn(8, 3, 8, 8), randn(8, 3, 8, 8)]);
    expect(model.training).toBe(true);
    for (const [k, t] of before) expect(model.stateDict().get(k)!.equal(t), k).toBe(true);
    expect(q.toString()).toMatch(/^Sequential\(\n {2}\(0\): Quantize\(scale=[\d.e-]+, zero_point=\d+, dtype=torch\.quint8\)\n {2}\(1\): QuantizedConvReLU2d\(3, 4, kernel_size=\(3, 3\), stride=\(1, 1\), scale=/);
    expect([...q.children()].map((m) => m.typeName())).toEqual(['Quantize', 'QuantizedConvReLU2d', 'MaxPool2d', 'Flatten', 'QuantizedLinearReLU', 'QuantizedLinear', 'DeQuantize']);
    const x = randn(4, 3, 8, 8);
    tidy(() => {
      model.eval();
      const [a, b] = noGrad(() => [model.forward(x), q.forward(x)]);
      expect(b.dtype).toBe('float32');
      expect(b.sub(a).abs().max().item() as number).toBeLessThan(0.1 * (a.abs().max().item() as number) + 1e-3);
    });
    q.dispose();
    expect(() => q.forward(x)).toThrow(/QuantizedConvReLU2d: disposed/);
    model.dispose();
  });

  it('refuses what it cannot quantize, with clear errors', () => {
    const model = new nn.Sequential(new nn.Conv2d(3, 4, 3), new nn.ReLU());
    expect(() => quantization.quantize(model, [])).toThrow(/^quantize: the calibration set is empty$/);
    expect(() => quantization.quantize(model, [5 as unknown as Tensor])).toThrow(/^quantize: calibration batches must be tensors, got 5$/);
    class Custom extends nn.Module {
      forward(x: Tensor): Tensor {
        return x;
      }
    }
    expect(() => quantization.quantize(new Custom(), [randn(1, 3, 4, 4)])).toThrow(/^quantize: cannot quantize a Custom: supported are VGG, Sequential/);
    expect(() => quantization.quantize(model, [randn(1, 3, 4, 4)], { engine: 'tpu' })).toThrow(/^quantized engine 'tpu' is not in this libtorch \(it has: /);
    expect(() => quantization.quantize(model, [randn(1, 3, 4, 4)], { bits: 4 } as never)).toThrow(TypeError);
    model.dispose();
  });
});
