// Seeds, RNG state, threads, CUDA and cuDNN switches.
import { native } from './native.js';
import { type Tensor, describe, handleOf, wrap } from './tensor/tensor.js';

/** Seeds the CPU generator and every CUDA device's, like `torch.manual_seed`. */
export function manualSeed(seed: number | bigint): void {
  if ((typeof seed === 'number' && !Number.isInteger(seed)) || (typeof seed !== 'number' && typeof seed !== 'bigint')) {
    throw new TypeError(`manualSeed(): seed must be an integer, got ${describe(seed)}`);
  }
  native.manualSeed(seed);
}
/** The seed the CPU generator was last seeded with. */
export const initialSeed = (): bigint => native.initialSeed();
/** The CPU generator's state as a uint8 tensor, byte-identical to `torch.get_rng_state()`. */
export const getRngState = (): Tensor => wrap(native.getRngState());
/** Restores a state from {@link getRngState} (or from PyTorch's `torch.get_rng_state()`). */
export const setRngState = (state: Tensor): void => native.setRngState(handleOf(state, 'state'));

/** Intra-op threads libtorch uses (default: every core this process may run on, or OMP_NUM_THREADS). */
export const getNumThreads = (): number => native.getNumThreads();
export function setNumThreads(n: number): void {
  if (!Number.isInteger(n)) throw new TypeError(`setNumThreads(): expected an integer, got ${describe(n)}`);
  native.setNumThreads(n);
}

/**
 * `torch.version`: the libtorch this build of vgg-torch was compiled against and runs on.
 * `version.torch` is what `torch.__version__` says for the same release (`'2.6.0'`), without
 * a local suffix such as `+cpu`.
 */
export const version = {
  torch: native.torchVersion(),
} as const;

/** @internal `[major, minor]` of a torch version string: `'2.6.0+debian'` → `[2, 6]`, `'1.13.0a0'` → `[1, 13]`. */
export function releaseOf(torchVersion: string): [number, number] {
  const m = /^(\d+)\.(\d+)/.exec(torchVersion);
  if (m === null) throw new Error(`not a torch version: ${JSON.stringify(torchVersion)}`);
  return [Number(m[1]), Number(m[2])];
}

/** `torch.cuda`: devices are named `'cuda'` or `'cuda:N'` wherever a device is taken. */
export const cuda = {
  /** True when libtorch was built with CUDA and a GPU is visible. */
  isAvailable: (): boolean => native.cudaIsAvailable(),
  deviceCount: (): number => native.cudaDeviceCount(),
  /** Waits for all kernels on `device` (default: the current one) to finish. */
  synchronize: (device?: number): void => native.cudaSynchronize(device),
  /** Bytes currently allocated by tensors on `device` through libtorch's caching allocator. */
  memoryAllocated: (device?: number): number => native.cudaMemoryAllocated(device),
  /** `torch.cuda.get_rng_state(device)`: the device's default generator state, a uint8 CPU tensor. */
  getRngState: (device?: number): Tensor => wrap(native.cudaGetRngState(device)),
  /** `torch.cuda.set_rng_state(state, device)`. */
  setRngState: (state: Tensor, device?: number): void => native.cudaSetRngState(handleOf(state, 'state'), device),
};

/** `torch.backends`. */
export const backends = {
  cudnn: {
    /** Let cuDNN benchmark convolution algorithms for each new input shape. */
    get benchmark(): boolean {
      return native.getCudnnBenchmark();
    },
    set benchmark(enabled: boolean) {
      native.setCudnnBenchmark(enabled);
    },
    isAvailable: (): boolean => native.cudnnAvailable(),
  },
  quantized: {
    /** The engine of the quantized kernels (`torch.backends.quantized.engine`): `onednn`, `fbgemm`, `x86` or `qnnpack`, as this libtorch has them. */
    get engine(): string {
      return native.quantizedEngine();
    },
    set engine(name: string) {
      native.setQuantizedEngine(name);
    },
    /** The engines this libtorch was built with (`torch.backends.quantized.supported_engines`). */
    get supportedEngines(): string[] {
      return native.supportedQuantizedEngines();
    },
  },
};
