// Transforms against torchvision 0.14 on the same libtorch (scripts/fixtures/data.py):
// deterministic ones bit for bit; random ones bit for bit too, given the same
// manualSeed, since draws follow torchvision's image-by-image order; plus
// shape/range/distribution and reproducibility checks.
import { describe, expect, it } from 'vitest';
import { type Tensor, manualSeed, memory, rand, randint, setNumThreads, tidy, tensor, stack } from '../lib/index.js';
import * as T from '../lib/transforms/index.js';
import { type EncodedTensor, bitwiseDiff, decode, hasTorchPython, readFixture, requireLiveOracle, runOracle } from './helpers.js';
import { type Budget, absDouble, closeDiff, largestNumel } from './tolerance.js';

interface Oracle {
  torch: string;
  threads: number;
  transforms: { name: string; input: EncodedTensor; output: EncodedTensor }[];
  random: { name: string; seed: number; input: EncodedTensor; output: EncodedTensor; after: EncodedTensor }[];
}

const DETERMINISTIC: Record<string, () => T.TransformLike> = {
  to_tensor_hwc: () => new T.ToTensor(),
  to_tensor_chw: () => new T.ToTensor(),
  to_tensor_batch: () => new T.ToTensor({ layout: 'CHW' }),
  to_tensor_float: () => new T.ToTensor(),
  normalize: () => new T.Normalize([0.4914, 0.4822, 0.4465], [0.247, 0.2435, 0.2616]),
  normalize_batch: () => new T.Normalize([0.5, 0.25, 0.125], [0.3, 0.2, 0.1]),
  normalize_f64: () => new T.Normalize([0.1, 0.2, 0.3], [0.7, 0.8, 0.9]),
  resize_aa_u8: () => new T.Resize(10),
  resize_aa_f32: () => new T.Resize(11, { antialias: true }),
  resize_aa_batch: () => new T.Resize([7, 5]),
  resize_bicubic_aa_u8: () => new T.Resize(9, { interpolation: 'bicubic' }),
  resize_noaa_u8: () => new T.Resize(10, { antialias: false }),
  resize_up_bilinear_f32: () => new T.Resize(33),
  resize_nearest_u8: () => new T.Resize([13, 41], { interpolation: 'nearest' }),
  resize_max_size: () => new T.Resize(12, { maxSize: 16 }),
  center_crop: () => new T.CenterCrop(9),
  center_crop_odd: () => new T.CenterCrop([7, 13]),
  center_crop_pad: () => new T.CenterCrop([25, 31]),
  center_crop_batch: () => new T.CenterCrop(10),
  pad_constant: () => new T.Pad(3, { fill: 7 }),
  pad_two: () => new T.Pad([1, 2]),
  pad_four_edge: () => new T.Pad([1, 2, 3, 4], { paddingMode: 'edge' }),
  pad_reflect: () => new T.Pad([2, 3], { paddingMode: 'reflect' }),
  pad_symmetric: () => new T.Pad([4, 1, 2, 3], { paddingMode: 'symmetric' }),
  grayscale_u8: () => new T.Grayscale(),
  grayscale_u8_3: () => new T.Grayscale(3),
  grayscale_f32: () => new T.Grayscale(),
  grayscale_1ch: () => new T.Grayscale(3),
  compose: () => new T.Compose([new T.CenterCrop(16), new T.Resize(8), new T.Pad(1, { paddingMode: 'reflect' }), new T.Grayscale(3)]),
};

const RANDOM: Record<string, () => T.Transform> = {
  random_crop_pad4: () => new T.RandomCrop(8, { padding: 4 }),
  random_crop_uneven: () => new T.RandomCrop([5, 4], { padding: [1, 2] }),
  random_crop_reflect: () => new T.RandomCrop(7, { padding: 2, paddingMode: 'reflect' }),
  random_crop_pad_if_needed: () => new T.RandomCrop([6, 7], { padIfNeeded: true }),
  random_crop_single: () => new T.RandomCrop(9),
  hflip: () => new T.RandomHorizontalFlip(),
  hflip_p03: () => new T.RandomHorizontalFlip(0.3),
  crop_flip_single: () => new T.Compose([new T.RandomCrop(10, { padding: 1 }), new T.RandomHorizontalFlip()]),
};

/**
 * The cross-CPU budget of a deterministic transform (tolerance.ts): no sum in it
 * (an interpolation filter, a grey-scale mix) has more terms than the input has
 * elements, 8 more roundings cover the scaling around it; Σ|terms| is at most the
 * output's size plus the transform of |input| in float64. A uint8 output, rounded
 * from that float computation, may move by one step.
 */
function transformBudget(make: () => T.TransformLike, input: Tensor, output: Tensor): Budget {
  const floatInput = input.dtype === 'uint8' ? input.double() : absDouble(input);
  const shadow = T.applyTransform(make(), floatInput);
  return { n: largestNumel(input) + 8, scale: absDouble(shadow).add(absDouble(output)) };
}

/** Replays the oracle's cases: bit for bit when `exact` (the live oracle), else within the budget of another CPU. */
function replay(o: Oracle, exact: boolean): string[] {
  const bad: string[] = [];
  setNumThreads(o.threads);
  for (const c of o.transforms) {
    const make = DETERMINISTIC[c.name];
    if (!make) {
      bad.push(`${c.name}: no implementation`);
      continue;
    }
    tidy(() => {
      const input = decode(c.input);
      const out = T.applyTransform(make(), input);
      const diff = exact ? bitwiseDiff(out, c.output) : closeDiff(out, c.output, transformBudget(make, input, out));
      if (diff) bad.push(`${c.name}: ${diff}`);
    });
  }
  for (const c of o.random) {
    tidy(() => {
      const x = decode(c.input);
      manualSeed(c.seed);
      const out = RANDOM[c.name]().forward(x);
      const diff = bitwiseDiff(out, c.output);
      if (diff) bad.push(`${c.name}: ${diff}`);
      const after = bitwiseDiff(rand(2), c.after);
      if (after) bad.push(`${c.name}: generator afterwards: ${after}`);
    });
  }
  return bad;
}

describe('transforms vs torchvision', () => {
  const fixture = readFixture<Oracle>('data/oracle.json');

  it('replays the committed fixture: seeded random transforms bit for bit, deterministic ones within the budget of another CPU', () => {
    expect(fixture.transforms.length).toBeGreaterThan(25);
    expect(replay(fixture, false)).toEqual([]);
  });

  it.skipIf(!hasTorchPython && !requireLiveOracle)('matches a live run of the oracle', async () => {
    const live = await runOracle<Oracle>('scripts/fixtures/data.py');
    expect(replay(live, true)).toEqual([]);
  });
});

describe('transforms', () => {
  it('run on one image or a batch, and leave no native memory behind', () => {
    const x = randint(0, 256, [4, 3, 16, 16], { dtype: 'uint8' });
    const before = memory().tensors;
    const tf = new T.Compose([new T.RandomCrop(12, { padding: 2 }), new T.RandomHorizontalFlip(), new T.ToTensor(), new T.Normalize([0.5], [0.25])]);
    const batch = tf.forward(x);
    expect(batch.shape).toEqual([4, 3, 12, 12]);
    expect(batch.dtype).toBe('float32');
    const one = tidy(() => tf.forward(x.select(0, 1)));
    expect(one.shape).toEqual([3, 12, 12]);
    const gray2d = tidy(() => new T.ToTensor().forward(x.select(0, 0).select(0, 0)));
    expect(gray2d.shape).toEqual([1, 16, 16]);
    batch.dispose();
    one.dispose();
    gray2d.dispose();
    expect(memory().tensors).toBe(before);
    x.dispose();
  });

  it('RandomCrop keeps values from the padded image, reproducibly under manualSeed', () => {
    tidy(() => {
      // Distinct values per pixel: every crop must be a contiguous window of the padded image.
      const src = tensor(
        Uint8Array.from({ length: 64 * 3 * 8 * 8 }, (_, i) => 1 + ((i * 7) % 250)),
        { shape: [64, 3, 8, 8] },
      );
      const crop = new T.RandomCrop(8, { padding: 2 });
      manualSeed(1);
      const a = crop.forward(src);
      manualSeed(1);
      const b = crop.forward(src);
      expect(a.equal(b)).toBe(true);
      expect(a.shape).toEqual([64, 3, 8, 8]);
      const c = crop.forward(src);
      expect(a.equal(c)).toBe(false);
      // Offsets are uniform over the 5×5 positions: find each image's offset from the zero border.
      const vals = a.toTypedArray() as Uint8Array;
      const seen = new Set<string>();
      for (let n = 0; n < 64; n++) {
        const img = (r: number, q: number) => vals[n * 192 + r * 8 + q];
        let top = 0;
        while (top < 8 && img(top, 4) === 0) top++;
        let left = 0;
        while (left < 8 && img(4, left) === 0) left++;
        let bottomPad = 0;
        while (bottomPad < 8 && img(7 - bottomPad, 4) === 0) bottomPad++;
        // (top padding rows, left padding cols) ↔ offset (2 - top, 2 - left) when the window starts in the border.
        const dy = top > 0 ? 2 - top : 2 + bottomPad;
        seen.add(`${dy},${left}`);
        expect(top === 0 || bottomPad === 0).toBe(true);
      }
      expect(seen.size).toBeGreaterThan(8);
    });
  });

  it('RandomHorizontalFlip flips about p of the images, each either unchanged or mirrored', () => {
    tidy(() => {
      manualSeed(3);
      const x = rand([2000, 1, 2, 3]);
      const y = new T.RandomHorizontalFlip(0.3).forward(x);
      const mirrored = x.index(':', ':', ':', tensor([2, 1, 0]));
      const same = y.eq(x).flatten(1).sum(1).eq(6);
      const flipped = y.eq(mirrored).flatten(1).sum(1).eq(6);
      const nSame = Number(same.sum().item());
      const nFlipped = Number(flipped.sum().item());
      expect(nSame + nFlipped).toBe(2000);
      // Binomial(2000, 0.3): mean 600, sd ≈ 20.5; 5 sd either side.
      expect(Math.abs(nFlipped - 600)).toBeLessThan(103);
      expect(new T.RandomHorizontalFlip(0).forward(x).equal(x)).toBe(true);
      expect(new T.RandomHorizontalFlip(1).forward(x).equal(mirrored)).toBe(true);
    });
  });

  it('ToTensor maps uint8 to [0, 1] and takes HWC or CHW', () => {
    tidy(() => {
      const hwc = tensor(Uint8Array.from([0, 255, 51, 102, 153, 204]), { shape: [2, 1, 3] });
      const y = new T.ToTensor().forward(hwc);
      expect(y.shape).toEqual([3, 2, 1]);
      expect(Array.from(y.toTypedArray() as Float32Array).map((v) => Math.round(v * 255))).toEqual([0, 102, 255, 153, 51, 204]);
      expect(new T.ToTensor({ layout: 'HWC' }).forward(hwc.reshape(1, 2, 3)).shape).toEqual([3, 1, 2]);
      const chw = new T.ToTensor({ layout: 'CHW' }).forward(stack([hwc, hwc]).reshape(2, 3, 1, 2));
      expect(chw.shape).toEqual([2, 3, 1, 2]);
      expect(chw.max().item()).toBeLessThanOrEqual(1);
    });
  });

  it('explains bad arguments', () => {
    expect(() => new T.Normalize([0.5], [0])).not.toThrow();
    tidy(() => {
      const u8 = randint(0, 256, [3, 4, 4], { dtype: 'uint8' });
      expect(() => new T.Normalize([0.5], [0.5]).forward(u8)).toThrow(/Normalize: input tensor should be a float tensor/);
      expect(() => new T.Normalize([0.5], [0]).forward(u8.float())).toThrow(/std evaluated to zero/);
      expect(() => new T.RandomCrop(5).forward(u8)).toThrow(/RandomCrop: required crop size \(5, 5\) is larger than input image size \(4, 4\)/);
      expect(() => new T.Grayscale().forward(randint(0, 256, [2, 4, 4], { dtype: 'uint8' }))).toThrow(/permitted channel values are \[1, 3\], but found 2/);
      expect(() => new T.Pad(5, { paddingMode: 'reflect' }).forward(u8)).toThrow(/must be smaller than the image size 4/);
      expect(() => new T.ToTensor().forward(randint(0, 2, [5], { dtype: 'uint8' }))).toThrow(/ToTensor: expected an image/);
      expect(() => new T.Resize(0)).toThrow(/Resize: size must be a positive integer/);
    });
  });

  it('Compose with a function runs step by step', () => {
    tidy(() => {
      const x = randint(0, 256, [3, 6, 6], { dtype: 'uint8' });
      const tf = new T.Compose([new T.ToTensor(), (t: Tensor) => t.mul(2), new T.CenterCrop(2)]);
      expect(tf._plannable).toBe(false);
      const y = tf.forward(x);
      expect(y.allclose(x.float().div(255).mul(2).index(':', '2:4', '2:4'))).toBe(true);
    });
  });
});
