// torch.Generator for the CPU: a seeded random stream of its own, separate from
// the global one. It is a libtorch generator held by the addon and passed to
// operators in their `Generator?` argument, exactly as PyTorch passes
// `generator=g`, so it draws the same numbers as a PyTorch generator with the
// same seed and its state bytes are libtorch's own.
import { native, op, type GeneratorHandle, type Handle } from './native.js';
import { dtypeCode } from './tensor/dtype.js';
import { type Tensor, wrap, handleOf } from './tensor/tensor.js';
import { describe } from './utils/args.js';

function toSeed(seed: unknown, what: string): bigint {
  if (typeof seed === 'number' && Number.isSafeInteger(seed)) return BigInt.asUintN(64, BigInt(seed));
  if (typeof seed === 'bigint') return BigInt.asUintN(64, seed);
  throw new TypeError(`${what}: seed must be an integer, got ${describe(seed)}`);
}

/**
 * A CPU random number generator with its own state, like `torch.Generator()`:
 * `new Generator().manualSeed(42)`. Used by {@link DataLoader} for shuffling
 * (`generator` option) and by `randomSplit`, it draws the same numbers as
 * PyTorch's generator with the same seed.
 */
export class Generator {
  /** @internal The addon's generator, passed to operators. */
  readonly _handle: GeneratorHandle = native.newGenerator();

  /** Reseeds; returns this (as `torch.Generator.manual_seed`). */
  manualSeed(seed: number | bigint): this {
    native.manualSeed(toSeed(seed, 'Generator.manualSeed()'), this._handle);
    return this;
  }

  /** The seed this generator was last seeded with. */
  initialSeed(): bigint {
    return native.initialSeed(this._handle);
  }

  /** The state as a uint8 tensor, byte-identical to `torch.Generator.get_state()`. */
  getState(): Tensor {
    return wrap(native.getRngState(this._handle));
  }

  /** Restores a state from {@link getState} (or from PyTorch's `get_state()`). */
  setState(state: Tensor): void {
    native.setRngState(handleOf(state, 'state'), this._handle);
  }

  /** `torch.randperm(n, generator=this)` as int64. */
  randperm(n: number): Tensor {
    return wrap(native.call(op('aten::randperm', 'generator'), n, this._handle) as Handle);
  }

  /** `torch.empty((), dtype=torch.int64).random_(generator=this).item()`: a draw in [0, 2^63). */
  randomInt64(): bigint {
    return randomInt64(this);
  }
}

/**
 * One draw of `torch.empty((), dtype=torch.int64).random_(generator=g)` from
 * `g`, or from the global generator.
 */
export function randomInt64(g?: Generator): bigint {
  const h = native.call(op('aten::empty', 'memory_format'), [], dtypeCode('int64')) as Handle;
  try {
    native.call(op('aten::random_'), h, g?._handle);
    return new BigInt64Array(native.toArrayBuffer(h))[0];
  } finally {
    native.dispose(h);
  }
}
