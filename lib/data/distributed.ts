// torch/utils/data/distributed.py: DistributedSampler, each rank's share of a dataset.
import { getRank, getWorldSize, isInitialized } from '../distributed/index.js';
import { Generator } from '../generator.js';
import { native } from '../native.js';
import { checkBoolean, checkInt, checkOptions } from '../utils/args.js';

export interface DistributedSamplerOptions {
  /** Ranks sharing the dataset; default the world size of the default process group. */
  numReplicas?: number;
  /** This rank; default the rank in the default process group. */
  rank?: number;
  /** Default true: a permutation from a generator seeded `seed + epoch`, the same on every rank. */
  shuffle?: boolean;
  /** Default 0; must be the same on every rank. */
  seed?: number;
  /** Default false: pad by repeating the first indices so every rank gets as many; true drops the tail. */
  dropLast?: boolean;
}

/**
 * `torch.utils.data.DistributedSampler`: the indices of the samples this rank trains on, in
 * PyTorch's order (randperm from a generator seeded `seed + epoch`, padded or cut to a multiple
 * of `numReplicas`, then every `numReplicas`-th index from `rank`). Give it to the loader
 * (`new DataLoader(dataset, { sampler })`), or iterate it for the indices. Call
 * {@link DistributedSampler.setEpoch} before each epoch, or every epoch has the same order.
 */
export class DistributedSampler implements Iterable<number> {
  readonly numReplicas: number;
  readonly rank: number;
  readonly shuffle: boolean;
  readonly seed: number;
  readonly dropLast: boolean;
  /** Indices each rank gets per epoch (`len(sampler)`). */
  readonly numSamples: number;
  readonly totalSize: number;
  epoch = 0;

  constructor(
    readonly dataset: { readonly length: number },
    options: DistributedSamplerOptions = {},
  ) {
    const fn = 'DistributedSampler()';
    checkOptions(fn, options, ['numReplicas', 'rank', 'shuffle', 'seed', 'dropLast']);
    const need = (what: string): never => {
      throw new Error(`${fn}: ${what} not given and the default process group is not initialized (call distributed.initProcessGroup() or pass it)`);
    };
    this.numReplicas = options.numReplicas ?? (isInitialized() ? getWorldSize() : need('numReplicas'));
    this.rank = options.rank ?? (isInitialized() ? getRank() : need('rank'));
    checkInt(fn, 'numReplicas', this.numReplicas, 1);
    checkInt(fn, 'rank', this.rank, 0);
    if (this.rank >= this.numReplicas) throw new RangeError(`${fn}: invalid rank ${this.rank}, rank should be in the interval [0, ${this.numReplicas - 1}]`);
    checkBoolean(fn, 'shuffle', options.shuffle);
    checkBoolean(fn, 'dropLast', options.dropLast);
    this.shuffle = options.shuffle ?? true;
    this.seed = options.seed ?? 0;
    checkInt(fn, 'seed', this.seed);
    this.dropLast = options.dropLast ?? false;
    const n = dataset.length;
    checkInt(fn, 'dataset.length', n, 0);
    this.numSamples = this.dropLast && n % this.numReplicas !== 0 ? Math.ceil((n - this.numReplicas) / this.numReplicas) : Math.ceil(n / this.numReplicas);
    this.totalSize = this.numSamples * this.numReplicas;
  }

  /** `len(sampler)`. */
  get length(): number {
    return this.numSamples;
  }

  /** `set_epoch`: the next iteration shuffles with seed `seed + epoch`. */
  setEpoch(epoch: number): void {
    checkInt('DistributedSampler.setEpoch()', 'epoch', epoch, 0);
    this.epoch = epoch;
  }

  /** This rank's indices for the current epoch. */
  indices(): number[] {
    const n = this.dataset.length;
    let indices: number[];
    if (this.shuffle) {
      const perm = new Generator().manualSeed(this.seed + this.epoch).randperm(n);
      const halves = new Int32Array(native.toArrayBuffer(perm._h));
      perm.dispose();
      indices = Array.from({ length: n }, (_, i) => halves[2 * i]);
    } else {
      indices = Array.from({ length: n }, (_, i) => i);
    }
    if (!this.dropLast) {
      const padding = this.totalSize - indices.length;
      if (padding <= indices.length) {
        indices = indices.concat(indices.slice(0, padding));
      } else {
        const reps = Math.ceil(padding / indices.length);
        indices = indices.concat(
          Array.from({ length: reps }, () => indices)
            .flat()
            .slice(0, padding),
        );
      }
    } else {
      indices = indices.slice(0, this.totalSize);
    }
    const out: number[] = [];
    for (let i = this.rank; i < this.totalSize; i += this.numReplicas) out.push(indices[i]);
    return out;
  }

  [Symbol.iterator](): Iterator<number> {
    return this.indices()[Symbol.iterator]();
  }
}
