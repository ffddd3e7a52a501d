// torch.Generator for the CPU, as far as data loading needs one: its own seeded
// stream, separate from the global one. The addon passes only libtorch's default
// generator to operators, so a Generator keeps its state as bytes (the format of
// torch.Generator.get_state()) and stands in for the global generator for the
// length of one synchronous call: save the global state, load this one, run the
// op, store the advanced state, restore the global. Nothing else can draw in
// between: JS is single-threaded and the swap never spans an await.
import { native, op, type Handle } from '../native.js';
import { dtypeCode } from '../tensor/dtype.js';
import { Tensor, wrap } from '../tensor/tensor.js';

const STATE_BYTES = 5056; // sizeof(at::CPUGeneratorImplState) in libtorch 1.13 … 2.x
const MT_N = 624;
/** torch.Generator()'s seed before manual_seed (c10's default_rng_seed_val). */
export const DEFAULT_SEED = 67280421310721n;

/**
 * The state bytes of a CPU generator freshly seeded with `seed`, as
 * `torch.Generator().manual_seed(seed).get_state()` gives them: the seed, then
 * mt19937 initialised from its low 32 bits (libtorch's at::mt19937), no cached normals.
 */
export function seededState(seed: bigint): Uint8Array {
  const buf = new ArrayBuffer(STATE_BYTES);
  const dv = new DataView(buf);
  dv.setBigUint64(0, BigInt.asUintN(64, seed), true); // the_initial_seed
  dv.setInt32(8, 1, true); // left
  dv.setInt32(12, 1, true); // seeded
  dv.setBigUint64(16, 0n, true); // next
  let s = Number(BigInt.asUintN(32, seed));
  for (let j = 0; j < MT_N; j++) {
    if (j > 0) s = (Math.imul(1812433253, (s ^ (s >>> 30)) >>> 0) + j) >>> 0;
    dv.setUint32(24 + 8 * j, s, true);
  }
  return new Uint8Array(buf);
}

function toSeed(seed: number | bigint, what: string): bigint {
  if (typeof seed === 'number') {
    if (!Number.isSafeInteger(seed)) throw new TypeError(`${what}: seed must be an integer, got ${seed}`);
    return BigInt.asUintN(64, BigInt(seed));
  }
  if (typeof seed !== 'bigint') throw new TypeError(`${what}: seed must be an integer, got ${typeof seed}`);
  return BigInt.asUintN(64, seed);
}

let checkedLayout = false;
/** The state layout is libtorch's; make sure this libtorch uses the one assumed here. */
function checkLayout(): void {
  if (checkedLayout) return;
  const h = native.getRngState();
  try {
    const n = (native.meta(h)[0] as number[])[0];
    if (n !== STATE_BYTES) {
      throw new Error(`Generator: this libtorch's CPU generator state has ${n} bytes, not the ${STATE_BYTES} vgg-torch knows; seeded generators are unavailable`);
    }
  } finally {
    native.dispose(h);
  }
  checkedLayout = true;
}

/**
 * A CPU random number generator with its own state, like `torch.Generator()`:
 * `new Generator().manualSeed(42)`. Used by {@link DataLoader} for shuffling
 * (`generator` option), it draws the same numbers as PyTorch's generator with
 * the same seed.
 */
export class Generator {
  private state: Uint8Array;

  constructor() {
    checkLayout();
    this.state = seededState(DEFAULT_SEED);
  }

  /** Reseeds; returns this (as `torch.Generator.manual_seed`). */
  manualSeed(seed: number | bigint): this {
    this.state = seededState(toSeed(seed, 'Generator.manualSeed()'));
    return this;
  }

  /** The seed this generator was last seeded with. */
  initialSeed(): bigint {
    return new DataView(this.state.buffer, this.state.byteOffset).getBigUint64(0, true);
  }

  /** The state as a uint8 tensor, byte-identical to `torch.Generator.get_state()`. */
  getState(): Tensor {
    return wrap(native.fromBuffer(this.state.slice().buffer, 0, [STATE_BYTES], dtypeCode('uint8'), true));
  }

  /** Restores a state from {@link getState} (or from PyTorch's `get_state()`). */
  setState(state: Tensor): void {
    if (!(state instanceof Tensor) || state.dtype !== 'uint8' || state.numel() !== STATE_BYTES) {
      throw new TypeError(`Generator.setState(): expected a uint8 tensor of ${STATE_BYTES} bytes`);
    }
    this.state = new Uint8Array(state.toTypedArray() as Uint8Array);
  }

  /**
   * @internal Runs `fn` (synchronous libtorch ops that use the default
   * generator) with this generator's state, then keeps the advanced state.
   */
  _use<T>(fn: () => T): T {
    const saved = native.getRngState();
    const mine = native.fromBuffer(this.state.buffer, this.state.byteOffset, [STATE_BYTES], dtypeCode('uint8'), true);
    try {
      native.setRngState(mine);
      const out = fn();
      const after = native.getRngState();
      try {
        this.state = new Uint8Array(native.toArrayBuffer(after));
      } finally {
        native.dispose(after);
      }
      return out;
    } finally {
      native.setRngState(saved);
      native.dispose(saved);
      native.dispose(mine);
    }
  }

  /** `torch.randperm(n, generator=this)` as int64. */
  randperm(n: number): Tensor {
    return this._use(() => wrap(native.call(op('aten::randperm'), n) as Handle));
  }

  /** `torch.empty((), dtype=torch.int64).random_(generator=this).item()`: a draw in [0, 2^63). */
  randomInt64(): bigint {
    return this._use(randomInt64);
  }
}

/** One draw of `torch.empty((), dtype=torch.int64).random_()` from the global generator. */
export function randomInt64(): bigint {
  const h = native.call(op('aten::empty', 'memory_format'), [], dtypeCode('int64')) as Handle;
  try {
    native.call(op('aten::random_'), h);
    return new BigInt64Array(native.toArrayBuffer(h))[0];
  } finally {
    native.dispose(h);
  }
}
