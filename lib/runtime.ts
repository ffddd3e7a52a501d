// Seeds, RNG state, threads, CUDA and cuDNN switches.
import { readFileSync } from 'node:fs';
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

/** What {@link backends}`.cpu.bf16Support()` finds. */
export interface Bf16Support {
  /** This CPU has bfloat16 instructions (AVX512_BF16 or AMX_BF16), so bf16 autocast runs in hardware, not emulated. */
  native: boolean;
  /** The bfloat16 features found: `'AVX512_BF16'`, `'AMX_BF16'` (empty when none). */
  features: string[];
  /** Where the answer comes from: libtorch's own detection, Linux's `/proc/cpuinfo`, or nowhere. */
  source: 'libtorch' | '/proc/cpuinfo' | 'unknown';
  /** One line saying why, for a log: `'this CPU has AVX512_BF16'`, `'this CPU has no native bf16: no avx512_bf16 or amx_bf16 in /proc/cpuinfo'`. */
  reason: string;
}

/** `/proc/cpuinfo`'s flags of the first processor, or null off Linux. */
function cpuinfoFlags(): Set<string> | null {
  let text: string;
  try {
    text = readFileSync('/proc/cpuinfo', 'utf8');
  } catch {
    return null;
  }
  const line = /^flags\s*:(.*)$/m.exec(text);
  return line ? new Set(line[1].trim().split(/\s+/)) : null;
}

function bf16Support(): Bf16Support {
  const described = (features: string[], source: Bf16Support['source'], how: string): Bf16Support => ({
    native: features.length > 0,
    features,
    source,
    reason: features.length > 0 ? `this CPU has ${features.join(' and ')}` : `this CPU has no native bf16: ${how}`,
  });
  // libtorch's cpuinfo checks, as torch.cpu._is_avx512_bf16_supported() and _is_amx_tile_supported();
  // every CPU with AMX tiles (Sapphire Rapids on) has AMX_BF16.
  const isa = native.cpuBf16Isa();
  if (isa !== null) {
    const features = [...(isa.avx512bf16 ? ['AVX512_BF16'] : []), ...(isa.amxTile ? ['AMX_BF16'] : [])];
    return described(features, 'libtorch', "libtorch's cpuinfo finds neither AVX512_BF16 nor AMX tiles");
  }
  // libtorch 1.13 has no such check: the kernel's flags.
  const flags = cpuinfoFlags();
  if (flags !== null) {
    const features = [...(flags.has('avx512_bf16') ? ['AVX512_BF16'] : []), ...(flags.has('amx_bf16') ? ['AMX_BF16'] : [])];
    return described(features, '/proc/cpuinfo', 'no avx512_bf16 or amx_bf16 in /proc/cpuinfo');
  }
  return described([], 'unknown', `libtorch ${version.torch} cannot tell and there is no /proc/cpuinfo`);
}

/** `torch.backends`. */
export const backends = {
  cpu: {
    /**
     * The ATen CPU kernel level libtorch dispatches to (`torch.backends.cpu.get_cpu_capability()`), as
     * PyTorch 2.x names it: `'NO AVX'` (the portable kernels), `'AVX2'`, `'AVX512'` on x86-64;
     * `'DEFAULT'`, `'VSX'`, `'ZVECTOR'`, … elsewhere. The environment variable `ATEN_CPU_CAPABILITY`
     * (`default`, `avx2`, `avx512`) lowers it, read once when libtorch first dispatches.
     */
    getCpuCapability: (): string => native.cpuCapability(),
    /**
     * Whether this CPU computes bfloat16 natively (AVX512_BF16 or AMX_BF16), which is when bf16
     * autocast pays off: elsewhere oneDNN emulates bfloat16 and training gets slower, not faster.
     * From libtorch's own cpuinfo checks where the libtorch has them (2.4 and later: PyTorch's
     * `torch.cpu._is_avx512_bf16_supported()` and `_is_amx_tile_supported()`), else from Linux's
     * `/proc/cpuinfo` flags. (`torch.ops.mkldnn._is_mkldnn_bf16_supported()` is not this question:
     * it is true on any AVX512 CPU, where bf16 is emulated.)
     */
    bf16Support,
  },
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
