// Loads the compiled addon. The addon is a thin shim: every export takes and
// returns opaque tensor handles; all user-facing behaviour lives in TypeScript.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** An opaque native tensor handle: a number naming a slot in the addon's handle table. */
export type Handle = number & { readonly __handle: unique symbol };
/** An opaque native operator handle. */
export type OpHandle = { readonly __op: unique symbol };
/** An opaque native torch.Generator (a CPU generator owned by the JS object holding it). */
export type GeneratorHandle = { readonly __generator: unique symbol };
/** A PowerSGD hook's state (an External). */
export type PowerSGDStateHandle = { readonly __powerSGDState: unique symbol };
/** A libtorch custom-class object (quantized packed weights) held by the addon. */
export type ObjectHandle = { readonly __object: unique symbol };
/** A compiled TorchScript module held by the addon. */
export type ScriptHandle = { readonly __script: unique symbol };
/** The outputs of a compiled module: one tensor, or a tuple/list of tensors. */
export type ScriptOutput = Handle | Handle[];
/** jitGraph's description of a forward graph. */
export interface NativeGraph {
  inputs: string[];
  outputs: string[];
  nodes: { kind: string; inputs: string[]; outputs: string[]; value?: number | boolean | string | number[] | null | { tensor: Handle } }[];
  text: string;
}

export interface NativeAddon {
  fromBuffer(buffer: ArrayBufferLike, byteOffset: number, shape: number[], dtype: number, copy: boolean): Handle;
  toArrayBuffer(h: Handle): ArrayBuffer;
  toArrayBufferAsync(h: Handle): Promise<ArrayBuffer>;
  item(h: Handle): number | boolean;
  meta(h: Handle): [number[], number, string];
  strides(h: Handle): number[];
  isContiguous(h: Handle): boolean;
  storageInfo(h: Handle): [offset: number, nbytes: number];
  sameStorage(a: Handle, b: Handle): boolean;
  dispose(h: Handle): void;
  isDisposed(h: Handle): boolean;
  memory(): { tensors: number; bytes: number };
  op(name: string, overload: string): OpHandle;
  disposeObject(h: ObjectHandle): void;
  jitTrace(fn: (inputs: Handle[]) => Handle | Handle[], inputs: Handle[], weights: Handle[], objects?: [string, ObjectHandle][]): ScriptHandle;
  jitLoad(path: string): ScriptHandle;
  jitSave(script: ScriptHandle, path: string): void;
  jitFreeze(script: ScriptHandle, optimize: boolean): ScriptHandle;
  jitForward(script: ScriptHandle, inputs: Handle[]): ScriptOutput;
  jitForwardAsync(script: ScriptHandle, inputs: Handle[]): Promise<ScriptOutput>;
  jitDispose(script: ScriptHandle): void;
  jitIsDisposed(script: ScriptHandle): boolean;
  jitMemory(script: ScriptHandle): { tensors: number; bytes: number };
  jitGraph(script: ScriptHandle): NativeGraph;
  jitVersion(tensors: Handle[]): number;
  call(op: OpHandle, ...args: unknown[]): any;
  backward(h: Handle, gradient: Handle | null, retainGraph: boolean | undefined, createGraph: boolean): void;
  grad(h: Handle): Handle | null;
  registerHook(h: Handle, fn: (grad: Handle) => Handle | null | undefined): number;
  removeHook(h: Handle, pos: number): void;
  setGrad(h: Handle, g: Handle | null): void;
  requiresGrad(h: Handle): boolean;
  isLeaf(h: Handle): boolean;
  gradFnName(h: Handle): string | null;
  isGradEnabled(): boolean;
  setGradEnabled(enabled: boolean): void;
  enterInferenceMode(enabled: boolean): void;
  exitInferenceMode(): void;
  isInferenceModeEnabled(): boolean;
  autocastIsEnabled(deviceType: 'cpu' | 'cuda'): boolean;
  autocastSetEnabled(deviceType: 'cpu' | 'cuda', enabled: boolean): void;
  /** A ScalarType code (lib/tensor/dtype.ts). */
  autocastGetDtype(deviceType: 'cpu' | 'cuda'): number;
  autocastSetDtype(deviceType: 'cpu' | 'cuda', dtype: number): void;
  autocastIsCacheEnabled(): boolean;
  autocastSetCacheEnabled(enabled: boolean): void;
  /** The nesting count after the change. */
  autocastIncrementNesting(): number;
  autocastDecrementNesting(): number;
  autocastClearCache(): void;
  newGenerator(): GeneratorHandle;
  /** Without a generator: the default CPU generator (and, for manualSeed, every CUDA device's). */
  manualSeed(seed: number | bigint, generator?: GeneratorHandle): void;
  initialSeed(generator?: GeneratorHandle): bigint;
  getRngState(generator?: GeneratorHandle): Handle;
  setRngState(h: Handle, generator?: GeneratorHandle): void;
  libmPow(base: number, exponent: number): number;
  libmCos(x: number): number;
  setNumThreads(n: number): void;
  getNumThreads(): number;
  usableCores(): number;
  cudaIsAvailable(): boolean;
  cudaDeviceCount(): number;
  cudaSynchronize(device?: number): void;
  cudaMemoryAllocated(device?: number): number;
  cudaGetRngState(device?: number): Handle;
  cudaSetRngState(state: Handle, device?: number): void;
  setCudnnBenchmark(enabled: boolean): void;
  getCudnnBenchmark(): boolean;
  cudnnAvailable(): boolean;
  quantizedEngine(): string;
  torchVersion(): string;
  cpuCapability(): string;
  cpuBf16Isa(): { avx512bf16: boolean; amxTile: boolean } | null;
  setQuantizedEngine(name: string): void;
  supportedQuantizedEngines(): string[];
  compiledWithCuda(): boolean;
  // torch.distributed (native/distributed.cc); only the first two exist in a build without Gloo.
  distIsAvailable(): boolean;
  distNcclAvailable(): boolean;
  distInit(backend: string, host: string, port: number, rank: number, worldSize: number, timeoutMs: number): number;
  distNewGroup(ranks: number[]): number;
  distDestroy(): void;
  distIsInitialized(): boolean;
  distGroupRank(group: number): number;
  distGroupSize(group: number): number;
  distAllReduce(group: number, t: Handle, op: string, async: boolean): Promise<void> | undefined;
  distBroadcast(group: number, t: Handle, src: number, async: boolean): Promise<void> | undefined;
  distAllGather(group: number, t: Handle, async: boolean): Handle[] | Promise<Handle[]>;
  distReduceScatter(group: number, out: Handle, inputs: Handle[], op: string, async: boolean): Promise<void> | undefined;
  distBarrier(group: number, async: boolean): Promise<void> | undefined;
  distBroadcastCoalesced(group: number, tensors: Handle[], bufferSize: number, src: number): void;
  distVerifyParams(group: number, params: Handle[]): void;
  distReducerNew(group: number, params: Handle[], bucketCapBytes: number, findUnused: boolean, gradientAsBucketView: boolean, names: string[]): number;
  distReducerFree(reducer: number): void;
  distReducerPrepareForward(reducer: number, prepare: boolean, rebuildBuckets: boolean): void;
  distReducerPrepareForBackward(reducer: number, outputs: Handle[]): void;
  distReducerRegisterCommHook(
    reducer: number,
    kind: 'allreduce' | 'fp16' | 'bf16' | 'powerSGD',
    group: number,
    builtin: boolean,
    powerSGDState?: PowerSGDStateHandle,
  ): void;
  distPowerSGDStateNew(
    rank: number,
    startIter: number,
    minCompressionRate: number,
    errorFeedback: boolean,
    warmStart: boolean,
    epsilon: number,
    seed: number,
  ): PowerSGDStateHandle;
  distPowerSGDStateInfo(state: PowerSGDStateHandle): [number, number, number];
  distMarkExit(code: number): void;
  distExitNote(message: string): string;
}

function here(): string {
  // tsup's shims make import.meta.url work in the CommonJS build too.
  return dirname(fileURLToPath(import.meta.url));
}

function findAddon(): string {
  let dir = here();
  for (let i = 0; i < 5; i++) {
    const candidate = join(dir, 'build', 'Release', 'vgg_torch.node');
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  throw new Error(
    'vgg-torch: the native addon is not built (build/Release/vgg_torch.node is missing). ' +
      'Run `npm rebuild vgg-torch` (or `npx cmake-js compile` in the package folder).',
  );
}

/** The addon file this package loads; worker threads (the DataLoader's pool) load the very same one. */
export const addonPath: string = findAddon();

/** The loaded addon; one instance per JS environment (main thread or worker). */
export const native: NativeAddon = createRequire(import.meta.url)(addonPath);

const opCache = new Map<string, OpHandle>();

/** Resolves a libtorch operator once (e.g. `op('aten::add', 'Tensor')`). */
export function op(name: string, overload = ''): OpHandle {
  const key = `${name}.${overload}`;
  let handle = opCache.get(key);
  if (handle === undefined) {
    handle = native.op(name, overload);
    opCache.set(key, handle);
  }
  return handle;
}

// libtorch defaults to one intra-op thread on some builds (Debian's among them);
// PyTorch users expect every core they may run on, unless OMP_NUM_THREADS says otherwise.
if (!process.env.OMP_NUM_THREADS && native.getNumThreads() < native.usableCores()) {
  native.setNumThreads(native.usableCores());
}
