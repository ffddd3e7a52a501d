// torch.utils.data's map-style datasets: anything with `length` and `get(i)`,
// TensorDataset, Subset, randomSplit, and the base of the image datasets, which
// hold all their images in one uint8 tensor and can hand the DataLoader a whole
// batch at once (one index_select) instead of N single samples.
import { native, op, type Handle } from '../native.js';
import { dtypeCode } from '../tensor/dtype.js';
import { Tensor, wrap } from '../tensor/tensor.js';
import { describe } from '../utils/args.js';
import { type Transform, type TransformLike, applyTransform, isPlannable } from '../transforms/transforms.js';
import type { Generator } from '../generator.js';

/**
 * A map-style dataset: `length` samples, `get(i)` for `0 <= i < length`.
 * Tensors that `get` returns belong to the caller (views are fine: disposing a
 * view does not free the storage it shares).
 */
export interface Dataset<T = unknown> {
  readonly length: number;
  get(index: number): T;
}

/**
 * @internal The DataLoader's whole-batch path. A dataset that implements it gives
 * the untransformed batch as columns (`[images (N, …), targets (N)]`, owned by the
 * caller) and the transform for column 0, which then runs on the whole batch,
 * possibly in a worker thread.
 */
export interface BatchSource {
  /** Column tensors for the samples at `indices` (already validated). */
  _fetchBatch(indices: Int32Array): Tensor[];
  /**
   * The transform of column 0 when the whole-batch path may be used: a plannable
   * transform or null (none); undefined when it may not (a function transform,
   * a target transform, ragged samples).
   */
  _batchTransform(): Transform | null | undefined;
}

/** Whether `ds` offers the whole-batch path right now. */
export function batchSourceOf(ds: unknown): BatchSource | null {
  const s = ds as Partial<BatchSource> | null;
  if (!s || typeof s._fetchBatch !== 'function' || typeof s._batchTransform !== 'function') return null;
  return s._batchTransform() === undefined ? null : (s as BatchSource);
}

/** Checks `i` against `length` (negative counts from the end, as in Python); returns the index. */
export function checkIndex(i: number, length: number, what: string): number {
  if (!Number.isInteger(i)) throw new TypeError(`${what}: index must be an integer, got ${i}`);
  const j = i < 0 ? i + length : i;
  if (j < 0 || j >= length) throw new RangeError(`${what}: index ${i} is out of range for ${length} samples`);
  return j;
}

/** An int64 tensor of indices (a copy). */
export function indexTensor(indices: ArrayLike<number>): Tensor {
  const v = new BigInt64Array(indices.length);
  const halves = new Int32Array(v.buffer);
  for (let i = 0; i < indices.length; i++) halves[2 * i] = indices[i]; // non-negative, < 2^31
  return wrap(native.fromBuffer(v.buffer, 0, [indices.length], dtypeCode('int64'), false));
}

/** `t.index_select(0, idx)`. */
/** @internal One sample through a dataset's transform and targetTransform; the untransformed image is freed. */
export function transformSample(
  img: Tensor,
  label: number,
  transform: TransformLike | null,
  targetTransform: ((target: number) => number) | null,
): [Tensor, number] {
  let out = img;
  if (transform) {
    out = applyTransform(transform, img);
    if (out !== img) img.dispose();
  }
  return [out, targetTransform ? targetTransform(label) : label];
}

export function gatherRows(t: Tensor, idx: Tensor): Tensor {
  return wrap(native.call(op('aten::index_select'), t._h, 0, idx._h) as Handle);
}

/** `torch.utils.data.TensorDataset`: sample i is `[t0[i], t1[i], …]`. */
export class TensorDataset implements Dataset<Tensor[]>, BatchSource {
  readonly tensors: Tensor[];
  constructor(...tensors: Tensor[]) {
    if (tensors.length === 0) throw new TypeError('TensorDataset: expected at least one tensor');
    for (const t of tensors) {
      if (!(t instanceof Tensor)) throw new TypeError(`TensorDataset: argument ${tensors.indexOf(t)} must be a Tensor, got ${describe(t)}`);
      if (t.ndim === 0) throw new TypeError('TensorDataset: tensors must have a first dimension');
    }
    const n = tensors[0].shape[0];
    if (!tensors.every((t) => t.shape[0] === n)) {
      throw new RangeError(`TensorDataset: size mismatch between tensors (first dimensions ${tensors.map((t) => t.shape[0]).join(', ')})`);
    }
    this.tensors = tensors;
  }
  get length(): number {
    return this.tensors[0].shape[0];
  }
  get(index: number): Tensor[] {
    const i = checkIndex(index, this.length, 'TensorDataset');
    return this.tensors.map((t) => t.select(0, i));
  }
  _fetchBatch(indices: Int32Array): Tensor[] {
    const idx = indexTensor(indices);
    try {
      return this.tensors.map((t) => gatherRows(t, idx));
    } finally {
      idx.dispose();
    }
  }
  _batchTransform(): null {
    return null;
  }
}

/** `torch.utils.data.Subset`: the samples of `dataset` at `indices`, in that order. */
export class Subset<T = unknown> implements Dataset<T>, BatchSource {
  readonly dataset: Dataset<T>;
  readonly indices: Int32Array;
  constructor(dataset: Dataset<T>, indices: ArrayLike<number> | Tensor) {
    checkDataset('Subset', dataset);
    this.dataset = dataset;
    const list = indices instanceof Tensor ? Array.from(indices.toTypedArray() as ArrayLike<number | bigint>, Number) : Array.from(indices);
    this.indices = Int32Array.from(list, (i) => checkIndex(i, dataset.length, 'Subset'));
  }
  get length(): number {
    return this.indices.length;
  }
  get(index: number): T {
    return this.dataset.get(this.indices[checkIndex(index, this.length, 'Subset')]);
  }
  _fetchBatch(indices: Int32Array): Tensor[] {
    return (this.dataset as unknown as BatchSource)._fetchBatch(indices.map((i) => this.indices[i]));
  }
  _batchTransform(): Transform | null | undefined {
    const inner = batchSourceOf(this.dataset);
    return inner ? inner._batchTransform() : undefined;
  }
}

/**
 * `torch.utils.data.random_split`: disjoint subsets of the given lengths (or
 * fractions summing to 1), from `randperm` on `generator` (default: the global
 * generator, as PyTorch's default_generator).
 */
/** Throws unless `dataset` has a numeric length and a get(i) method. */
export function checkDataset(fn: string, dataset: unknown): void {
  const d = dataset as Dataset | null | undefined;
  if (!d || typeof d.get !== 'function' || typeof d.length !== 'number') {
    throw new TypeError(`${fn}: argument 'dataset' must be a Dataset (with length and get(i)), got ${describe(dataset)}`);
  }
}

export function randomSplit<T>(dataset: Dataset<T>, lengths: number[], generator?: Generator): Subset<T>[] {
  checkDataset('randomSplit()', dataset);
  if (!Array.isArray(lengths) || !lengths.every((l) => typeof l === 'number' && Number.isFinite(l) && l >= 0)) {
    throw new TypeError(`randomSplit(): argument 'lengths' must be an array of non-negative numbers, got ${describe(lengths)}`);
  }
  let sizes = lengths;
  const n = dataset.length;
  const total = lengths.reduce((a, b) => a + b, 0);
  if (Math.abs(total - 1) <= 1e-9 && total <= 1) {
    if (lengths.some((f) => f < 0 || f > 1)) throw new RangeError('randomSplit: fractions must be between 0 and 1');
    // Fractions, as PyTorch ≥ 1.13: floor each, then hand out the remainder round-robin.
    sizes = lengths.map((f) => Math.floor(n * f));
    let rest = n - sizes.reduce((a, b) => a + b, 0);
    for (let i = 0; rest > 0; i = (i + 1) % sizes.length, rest--) sizes[i]++;
  }
  if (sizes.reduce((a, b) => a + b, 0) !== n) {
    throw new RangeError(`randomSplit: sum of input lengths (${sizes.reduce((a, b) => a + b, 0)}) does not equal the length of the input dataset (${n})`);
  }
  const perm = generator ? generator.randperm(n) : wrap(native.call(op('aten::randperm'), n) as Handle);
  const order = Array.from(perm.toTypedArray() as BigInt64Array, Number);
  perm.dispose();
  const out: Subset<T>[] = [];
  let offset = 0;
  for (const len of sizes) {
    out.push(new Subset(dataset, order.slice(offset, offset + len)));
    offset += len;
  }
  return out;
}

/** Options every image dataset takes. */
export interface ImageDatasetOptions {
  /** Applied to each image: a uint8 (C, H, W) tensor. Built-in transforms also run on whole batches in the DataLoader. */
  transform?: TransformLike | null;
  /** Applied to each label (e.g. to remap classes). */
  targetTransform?: ((target: number) => number) | null;
}

/**
 * @internal Base of the image datasets: every image in one uint8 tensor `data`
 * (N, C, H, W) — or (N, H, W) for one channel — and the labels in `targets`.
 */
export abstract class ImageTensorDataset implements Dataset<[Tensor, number]>, BatchSource {
  /** All images, uint8. */
  readonly data: Tensor;
  /** All labels, int64 (N). */
  readonly targets: Tensor;
  /** Class names, indexed by label. */
  abstract readonly classes: readonly string[];
  transform: TransformLike | null;
  targetTransform: ((target: number) => number) | null;
  protected readonly labels: Uint8Array | Int32Array;

  protected constructor(data: Tensor, labels: Uint8Array | Int32Array, opts: ImageDatasetOptions) {
    this.data = data;
    this.labels = labels;
    const wide = new BigInt64Array(labels.length);
    for (let i = 0; i < labels.length; i++) wide[i] = BigInt(labels[i]);
    this.targets = wrap(native.fromBuffer(wide.buffer, 0, [labels.length], dtypeCode('int64'), false));
    this.transform = opts.transform ?? null;
    this.targetTransform = opts.targetTransform ?? null;
  }

  /** Class name → label. */
  get classToIdx(): Record<string, number> {
    return Object.fromEntries(this.classes.map((c, i) => [c, i]));
  }
  get length(): number {
    return this.labels.length;
  }
  /** The label of sample `i`, without touching the images. */
  target(i: number): number {
    return this.labels[checkIndex(i, this.length, this.constructor.name)];
  }

  /** `[image, label]`: the image as uint8 (C, H, W) (a view of `data`) unless a transform changes it. */
  get(index: number): [Tensor, number] {
    const i = checkIndex(index, this.length, this.constructor.name);
    let img = this.data.select(0, i);
    if (img.ndim === 2) {
      const gray = img.unsqueeze(0);
      img.dispose();
      img = gray;
    }
    return transformSample(img, this.labels[i], this.transform, this.targetTransform);
  }

  _fetchBatch(indices: Int32Array): Tensor[] {
    const idx = indexTensor(indices);
    try {
      let imgs = gatherRows(this.data, idx);
      if (imgs.ndim === 3) {
        const withChannel = imgs.unsqueeze(1);
        imgs.dispose();
        imgs = withChannel;
      }
      return [imgs, gatherRows(this.targets, idx)];
    } finally {
      idx.dispose();
    }
  }
  _batchTransform(): Transform | null | undefined {
    if (this.targetTransform) return undefined;
    return isPlannable(this.transform) ? (this.transform ?? null) : undefined;
  }

  /** Frees the images and labels now instead of when the dataset is garbage collected. */
  dispose(): void {
    this.data.dispose();
    this.targets.dispose();
  }
}
