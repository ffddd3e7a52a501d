// nn.Module, layers, init and the VGG family against torchvision with the same seed.
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  type Tensor,
  type VGG,
  VGG11_Weights,
  manualSeed,
  memory,
  nn,
  noGrad,
  randint,
  randn,
  setNumThreads,
  tensor,
  tidy,
  vgg11,
  vgg11_bn,
  vgg13,
  vgg13_bn,
  vgg16,
  vgg16_bn,
  vgg19,
  vgg19_bn,
  vggTutorial,
} from '../lib/index.js';
import { type EncodedTensor, bitwiseDiff, bytesOf, decode, hasTorchPython, readFixture, requireLiveOracle, runOracle } from './helpers.js';
import { type Budget, NORMAL_DRAW, absDouble, closeDiff, gamma, gammaProbabilistic, networkBudget, normalDrawBudget } from './tolerance.js';

interface WeightEntry {
  key: string;
  shape: number[];
  dtype: string;
  sha256: string;
  sample: { index: number[]; values: EncodedTensor };
}
interface Fixture {
  models: Record<string, { weights: WeightEntry[]; inputShape: number[]; output: EncodedTensor; repr: string }>;
  keys: Record<string, string[]>;
  trainStep: { x: EncodedTensor; target: EncodedTensor; logits: EncodedTensor; loss: EncodedTensor; after: WeightEntry[] };
}

const BUILDERS: Record<string, () => VGG> = {
  vgg11: () => vgg11(),
  vgg16_bn: () => vgg16_bn(),
  tutorial: () => vggTutorial(),
};
const FACTORIES = { vgg11, vgg11_bn, vgg13, vgg13_bn, vgg16, vgg16_bn, vgg19, vgg19_bn };

const sha256 = (t: Tensor): string => createHash('sha256').update(bytesOf(t)).digest('hex');

/**
 * Compares state-dict entries with the fixture: bitwise (same hash), or, on
 * another CPU, the fixture's sample of values within `budget(key, tensor)`.
 */
function weightDiffs(model: nn.Module<any, any>, expected: WeightEntry[], budget: ((key: string, t: Tensor) => Budget) | null): string[] {
  return tidy(() => {
    const sd = model.stateDict();
    const problems: string[] = [];
    if ([...sd.keys()].join() !== expected.map((e) => e.key).join()) return [`keys [${[...sd.keys()]}] != [${expected.map((e) => e.key)}]`];
    for (const e of expected) {
      const t = sd.get(e.key)!;
      if (t.shape.join() !== e.shape.join() || t.dtype !== e.dtype) problems.push(`${e.key}: ${t.dtype}[${t.shape}] != ${e.dtype}[${e.shape}]`);
      else if (sha256(t) === e.sha256) continue;
      else if (!budget) problems.push(`${e.key}: sha256 differs`);
      else {
        const at = tensor(e.sample.index, { dtype: 'int64' });
        const b = budget(e.key, t);
        const sampled = (v: Tensor | number): Tensor | number =>
          typeof v === 'number'
            ? v
            : v
                .expand(...t.shape)
                .flatten()
                .index(at);
        const d = closeDiff(t.flatten().index(at), e.sample.values, 'bound' in b ? { bound: sampled(b.bound) } : { n: b.n, scale: sampled(b.scale) });
        if (d) problems.push(`${e.key}: ${d}`);
      }
    }
    return problems;
  });
}

function checkModel(name: string, fx: Fixture['models'][string], exact: boolean): void {
  manualSeed(777);
  const model = BUILDERS[name]().eval();
  try {
    expect(weightDiffs(model, fx.weights, exact ? null : (_key, t) => normalDrawBudget(t)), `${name} weights`).toEqual([]);
    tidy(() => {
      manualSeed(1);
      const x = randn(fx.inputShape);
      const y = noGrad(() => model(x));
      if (exact) expect(bitwiseDiff(y, fx.output), `${name} eval output`).toBeNull();
      else {
        // The weights and the input are seeded draws too: on a CPU where they differ, by ≤ 2γ(NORMAL_DRAW) relative,
        // the output moves by as much relative to its size.
        const b = networkBudget(model, x, y);
        const draws = 2 * 2 * gamma(NORMAL_DRAW) * (y.abs().max().item() as number);
        expect(closeDiff(y, fx.output, { bound: b.bound + draws }), `${name} eval output`).toBeNull();
      }
    });
  } finally {
    model.dispose();
  }
}

function checkTrainStep(fx: Fixture['trainStep'], exact: boolean): void {
  manualSeed(777);
  const model = vggTutorial({ batchNorm: true }).train();
  const lr = 0.01;
  try {
    let budget: ((key: string, t: Tensor) => Budget) | null = null;
    tidy(() => {
      const x = decode(fx.x);
      const target = decode(fx.target);
      manualSeed(3);
      randn(4, 3, 32, 32); // advance the generator as the oracle did when drawing x and target
      randint(0, 10, [4]);
      const logits = model(x);
      const loss = new nn.CrossEntropyLoss()(logits, target);
      if (exact) {
        expect(bitwiseDiff(logits, fx.logits), 'train-mode logits (dropout masks)').toBeNull();
        expect(bitwiseDiff(loss, fx.loss), 'loss').toBeNull();
      } else {
        // The budget is taken after the forward, so that its dropout masks are the oracle's.
        const b = networkBudget(model, x, logits);
        const drawn = 2 * 2 * gamma(NORMAL_DRAW) * (logits.abs().max().item() as number); // the weights are seeded draws
        const bound = b.bound + drawn;
        expect(closeDiff(logits, fx.logits, { bound }), 'train-mode logits (dropout masks)').toBeNull();
        // Cross-entropy moves by at most Σ|∂loss/∂logits|·bound ≤ 2·bound (the mean of softmax − onehot rows),
        // plus its own roundings: a log-sum-exp over the classes and a mean over the batch.
        const [batch, classes] = logits.shape;
        expect(
          closeDiff(loss, fx.loss, {
            bound: 2 * bound + 2 * gamma(classes + batch + 8) * ((loss.abs().item() as number) + (logits.abs().max().item() as number)),
          }),
          'loss',
        ).toBeNull();
        const gradRelative = b.gradRelative + 2 * (drawn / (logits.abs().max().item() as number));
        const params = new Map(model.namedParameters());
        budget = (key, t) => {
          // A parameter after p − lr·g: lr times its gradient's budget, plus the subtraction's rounding.
          const param = params.get(key);
          if (param?.grad)
            return {
              bound: absDouble(t)
                .mul(2 * gamma(2))
                .add(lr * gradRelative * (param.grad.abs().max().item() as number)),
            };
          // Running statistics after one update: momentum · (the batch mean or variance) + (1 − momentum) · the old value.
          const path = key.slice(0, key.lastIndexOf('.'));
          const st = b.batchStats.get(path);
          if (!st) throw new Error(`no error budget for ${key}`);
          const momentum = 0.1;
          const centred = st.input
            .sub(st.input.mean([0, 2, 3], true))
            .abs()
            .max()
            .item() as number;
          const own = 2 * gammaProbabilistic(st.count + 4);
          const of = key.endsWith('.running_mean')
            ? st.bound + own * (st.input.abs().max().item() as number)
            : (st.count / (st.count - 1)) * (2 * centred * 2 * st.bound + own * centred * centred);
          return {
            bound: absDouble(t)
              .mul(2 * gamma(3))
              .add(momentum * of),
          };
        };
      }
      loss.backward();
      noGrad(() => {
        for (const p of model.parameters()) p.sub_(p.grad!.mul(lr));
      });
      // Parameters after the step and BatchNorm running stats after the train-mode forward.
      expect(weightDiffs(model, fx.after, budget)).toEqual([]);
    });
  } finally {
    model.dispose();
  }
}

function checkAll(fx: Fixture, exact: boolean): void {
  setNumThreads(2);
  for (const [name, m] of Object.entries(fx.models)) checkModel(name, m, exact);
  checkTrainStep(fx.trainStep, exact);
}

describe('VGG against torchvision (committed fixture)', () => {
  const fx = readFixture<Fixture>('vgg.json');

  it.each(Object.keys(fx.models))('%s: same weights and eval output, within the rounding budget of another CPU', (name) => {
    checkModel(name, fx.models[name], false);
  });

  it('one training step: BatchNorm running stats, dropout masks, loss and SGD update equal PyTorch within the same budget', () => {
    checkTrainStep(fx.trainStep, false);
  });

  it('stateDict keys and order equal torchvision for all eight factories', () => {
    for (const [name, factory] of Object.entries(FACTORIES)) {
      const model = factory({ initWeights: false });
      const keys = tidy(() => [...model.stateDict().keys()]);
      model.dispose();
      expect(keys, name).toEqual(fx.keys[name]);
    }
  });

  it('toString() equals print(model) for vgg11, vgg16_bn and the tutorial VGG', () => {
    for (const [name, build] of Object.entries(BUILDERS)) {
      const model = build();
      expect(model.toString(), name).toBe(fx.models[name].repr);
      model.dispose();
    }
  });
});

describe.skipIf(!hasTorchPython && !requireLiveOracle)('VGG against torchvision (live oracle)', () => {
  it('re-runs the oracle now and matches it bit for bit', async () => {
    checkAll(await runOracle<Fixture>('scripts/fixtures/vgg.py'), true);
  });
});

describe('nn.Module behaviour', () => {
  it('loadStateDict: strict errors name every missing key, unexpected key and shape mismatch', () => {
    manualSeed(0);
    const model = vggTutorial();
    const sd = model.stateDict();
    try {
      const broken = new Map(sd);
      broken.delete('features.0.bias');
      broken.set('features.99.weight', sd.get('features.0.weight')!);
      broken.set('classifier.6.weight', sd.get('classifier.3.weight')!);
      let message = '';
      try {
        model.loadStateDict(broken);
      } catch (e) {
        message = (e as Error).message;
      }
      expect(message).toContain('Error(s) in loading state_dict for VGG');
      expect(message).toContain('Missing key(s) in state_dict: "features.0.bias"');
      expect(message).toContain('Unexpected key(s) in state_dict: "features.99.weight"');
      expect(message).toContain(
        'size mismatch for classifier.6.weight: copying a param with shape [4096, 4096] from checkpoint, the shape in current model is [10, 4096]',
      );
      broken.delete('classifier.6.weight');
      broken.set('classifier.6.weight', sd.get('classifier.6.weight')!);
      const result = model.loadStateDict(broken, { strict: false });
      expect(result).toEqual({ missingKeys: ['features.0.bias'], unexpectedKeys: ['features.99.weight'] });
    } finally {
      for (const t of sd.values()) t.dispose();
      model.dispose();
    }
  });

  it('loadStateDict copies in place, keeps parameter identity, accepts old checkpoints without num_batches_tracked', () => {
    manualSeed(1);
    const a = vggTutorial({ batchNorm: true });
    manualSeed(2);
    const b = vggTutorial({ batchNorm: true });
    const firstParam = b.features[0] as nn.Conv2d;
    const weightBefore = firstParam.weight;
    const sd = a.stateDict();
    for (const k of [...sd.keys()]) if (k.endsWith('num_batches_tracked')) sd.delete(k);
    const plain = Object.fromEntries(sd);
    const result = b.loadStateDict(plain);
    expect(result).toEqual({ missingKeys: [], unexpectedKeys: [] });
    expect(firstParam.weight).toBe(weightBefore);
    expect(firstParam.weight.equal((a.features[0] as nn.Conv2d).weight)).toBe(true);
    for (const t of sd.values()) t.dispose();
    a.dispose();
    b.dispose();
  });

  it('a too-large input gets an error that says what it got, what it expected and how to fix it', () => {
    const model = vggTutorial();
    const x = randn(1, 3, 64, 64);
    expect(() => model(x)).toThrow(
      /classifier takes 512 × 4 × 4 = 8192 features \(built for 32×32 input\), but a 64×64 input gives 512 × 8 × 8 = 32768\. Build the model with \{ avgpool: false, inputSize: \[64, 64\] \}/,
    );
    const sized = vggTutorial({ inputSize: [64, 64] });
    expect(tidy(() => sized(x).shape)).toEqual([1, 10]);
    x.dispose();
    model.dispose();
    sized.dispose();
  });

  it('summary(): vgg16 has 138,357,544 parameters and 15.47 G multiply-accumulates at 224×224', () => {
    const model = vgg16({ initWeights: false });
    const before = memory().tensors;
    const s = nn.summary(model, [3, 224, 224]);
    expect(memory().tensors).toBe(before); // every layer's output is freed
    expect(s.totalParams).toBe(138_357_544);
    expect(s.totalMacs).toBe(15_470_264_320);
    expect(s.outputShape).toEqual([1, 1000]);
    expect(s.layers[0]).toEqual({ name: 'features.0', type: 'Conv2d', outputShape: [1, 64, 224, 224], params: 1792, macs: 86_704_128 });
    expect(s.toString()).toContain('Total params: 138,357,544');
    expect(model.training).toBe(true); // summary leaves the mode as it was
    model.dispose();
  });

  it('Sequential indexing, slicing, iteration and append; module tree queries', () => {
    const seq = new nn.Sequential(new nn.Linear(4, 3), new nn.ReLU(), new nn.Linear(3, 2));
    expect(seq.length).toBe(3);
    expect(seq[0]).toBeInstanceOf(nn.Linear);
    expect(seq.at(-1)).toBe(seq[2]);
    expect(seq.slice(1).length).toBe(2);
    seq.append(new nn.Flatten());
    expect([...seq].length).toBe(4);
    expect([...seq.namedParameters()].map(([k]) => k)).toEqual(['0.weight', '0.bias', '2.weight', '2.bias']);
    expect([...seq.namedModules()].map(([k]) => k)).toEqual(['', '0', '1', '2', '3']);
    expect(seq.eval().training).toBe(false);
    expect(seq[1].training).toBe(false);
    seq.requiresGrad_(false);
    expect([...seq.parameters()].every((p) => !p.requiresGrad)).toBe(true);
    seq.dispose();
  });

  it('to(dtype) converts in place; parameters survive tidy; zeroGrad clears gradients', () => {
    const lin = tidy(() => new nn.Linear(3, 2));
    expect(lin.weight.isDisposed).toBe(false);
    const w = lin.weight;
    lin.to('float64');
    expect(lin.weight).toBe(w);
    expect(w.dtype).toBe('float64');
    tidy(() =>
      lin(randn([4, 3], { dtype: 'float64' }))
        .sum()
        .backward(),
    );
    expect(lin.weight.grad).not.toBeNull();
    lin.zeroGrad();
    expect(lin.weight.grad).toBeNull();
    lin.dispose();
  });

  it('BatchNorm2d with momentum null keeps a cumulative average; Dropout and ReLU follow training mode', () => {
    tidy(() => {
      const bn = new nn.BatchNorm2d(2, { momentum: null });
      const a = randn(4, 2, 3, 3);
      const b = randn(4, 2, 3, 3);
      bn(a);
      bn(b);
      const both = a.transpose(0, 1).flatten(1).mean(1).add(b.transpose(0, 1).flatten(1).mean(1)).div(2);
      expect(bn.runningMean!.allclose(both, 1e-5, 1e-6)).toBe(true);
      expect(bn.numBatchesTracked!.item()).toBe(2);
      expect(() => bn(randn(2, 3))).toThrow('expected 4D input (got 2D input)');
      const drop = new nn.Dropout(0.5);
      drop.eval();
      const x = randn(10);
      expect(drop(x).equal(x)).toBe(true);
      expect(new nn.ReLU().toString()).toBe('ReLU()');
      expect(String(new nn.BatchNorm2d(3, { momentum: null }))).toBe('BatchNorm2d(3, eps=1e-05, momentum=None, affine=True, track_running_stats=True)');
    });
  });

  it('nn.init: calculateGain values and fan errors as in PyTorch', () => {
    expect(nn.init.calculateGain('relu')).toBe(Math.sqrt(2));
    expect(nn.init.calculateGain('leaky_relu', Math.sqrt(5))).toBe(Math.sqrt(2 / 6.000000000000001));
    expect(nn.init.calculateGain('tanh')).toBe(5 / 3);
    expect(() => nn.init.kaimingNormal_(randn(3), {})).toThrow('fewer than 2 dimensions');
    expect(() => nn.init.kaimingNormal_(randn(3, 3), { mode: 'fan_avg' as never })).toThrow('Mode fan_avg not supported');
  });

  it('the factories check the weights option before any download, as torchvision does', () => {
    expect(() => vgg16({ weights: 'IMAGENET1K_V9' })).toThrow(
      "unknown weights 'IMAGENET1K_V9' for VGG16_Weights; use one of IMAGENET1K_V1, IMAGENET1K_FEATURES, DEFAULT",
    );
    expect(() => vgg16({ weights: VGG11_Weights.IMAGENET1K_V1 })).toThrow('weights VGG11_Weights.IMAGENET1K_V1 are not VGG16_Weights');
    expect(() => vgg16({ weights: 'DEFAULT', numClasses: 10 })).toThrow("The parameter 'numClasses' expected value 1000 but got 10 instead.");
  });
});
