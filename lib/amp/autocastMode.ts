// torch.autocast (torch/amp/autocast_mode.py): switches libtorch's Autocast dispatch keys on for a
// region. The casting is libtorch's own: with a device's autocast on, every op the addon calls
// through the dispatcher passes its Autocast kernel, which casts by libtorch's op lists exactly as
// in PyTorch. The state is thread-local in libtorch, like grad mode.
import { withMode } from '../autograd.js';
import { native } from '../native.js';
import { cuda, version } from '../runtime.js';
import { type DType, dtypeCode, dtypeName, isFloatingDtype } from '../tensor/dtype.js';
import { checkFunction, checkOptions, describe } from '../utils/args.js';
import { type AmpRules, ampRules } from './releases.js';

/** The device types autocast covers: `'cpu'` (AutocastCPU) and `'cuda'` (AutocastCUDA). */
export type AutocastDeviceType = 'cpu' | 'cuda';

/** `torch.autocast`'s keyword arguments. */
export interface AutocastOptions {
  /**
   * The lower-precision type ops on the autocast lists run in. Default: the device's current
   * autocast dtype ({@link getAutocastDtype}), which is `'bfloat16'` for `'cpu'` and `'float16'`
   * for `'cuda'` unless an enclosing region set another.
   */
  dtype?: DType;
  /** Whether autocasting is on in the region (default true); `false` turns it off inside an enclosing region. */
  enabled?: boolean;
  /**
   * Whether libtorch caches the lower-precision copies of leaf tensors that require grad (the
   * weights) until the outermost autocast region exits. Default: the current setting (true unless
   * an enclosing region turned it off).
   */
  cacheEnabled?: boolean;
}

function checkDeviceType(fn: string, deviceType: unknown): AutocastDeviceType {
  if (typeof deviceType !== 'string') throw new TypeError(`${fn}: argument 'deviceType' must be a string, got ${describe(deviceType)}`);
  if (deviceType !== 'cpu' && deviceType !== 'cuda') {
    throw new RangeError(`${fn}: argument 'deviceType' must be 'cpu' or 'cuda' (the device types with autocast here), got ${describe(deviceType)}`);
  }
  return deviceType;
}

function checkBool(fn: string, what: string, v: unknown): boolean {
  if (typeof v !== 'boolean') throw new TypeError(`${fn}: option '${what}' must be a boolean, got ${describe(v)}`);
  return v;
}

function checkDtype(fn: string, v: unknown): DType {
  let name: DType;
  try {
    name = dtypeName(dtypeCode(v as string));
  } catch {
    throw new TypeError(`${fn}: option 'dtype' must be a dtype name such as 'bfloat16' or 'float16', got ${describe(v)}`);
  }
  // Autocast casts floating-point ops; an integer type would make no sense to libtorch's lists.
  if (!isFloatingDtype(name)) throw new RangeError(`${fn}: option 'dtype' must be a floating dtype ('bfloat16', 'float16'), got ${describe(v)}`);
  return name;
}

/** The lower-precision types CPU autocast takes in this libtorch (see {@link AmpRules.cpuAutocastHalf}). */
function cpuAutocastDtypes(torchVersion: string): DType[] {
  return ampRules(torchVersion).cpuAutocastHalf ? ['bfloat16', 'float16'] : ['bfloat16'];
}

// Python's warnings.warn shows a warning once per call site; once per message is the closest here.
const warned = new Set<string>();
function warn(message: string): void {
  if (warned.has(message)) return;
  warned.add(message);
  process.emitWarning(message, 'UserWarning');
}

/**
 * Whether autocast is on for `deviceType` on this thread (`torch.is_autocast_enabled(device_type)`).
 */
export function isAutocastEnabled(deviceType: AutocastDeviceType): boolean {
  return native.autocastIsEnabled(checkDeviceType('isAutocastEnabled()', deviceType));
}

/**
 * The lower-precision type autocast casts to on `deviceType` on this thread
 * (`torch.get_autocast_dtype(device_type)`): `'bfloat16'` for `'cpu'` and `'float16'` for
 * `'cuda'` outside any region that set another.
 */
export function getAutocastDtype(deviceType: AutocastDeviceType): DType {
  return dtypeName(native.autocastGetDtype(checkDeviceType('getAutocastDtype()', deviceType)));
}

/**
 * Runs `fn` with automatic mixed precision on `deviceType` (`with torch.autocast(device_type, …):`).
 * Ops on libtorch's lower-precision lists (convolutions, linear, matmul) run in `dtype`, those on
 * its float32 lists (losses, softmax) in float32, the rest in the widest input type: a VGG's logits
 * come out bfloat16 under `autocast('cpu', …)`. Run the forward pass and the loss inside and
 * `backward()` outside, as in PyTorch; the parameters and their gradients stay float32.
 *
 * ```ts
 * const loss = autocast('cpu', { dtype: 'bfloat16' }, () => F.crossEntropy(model(x), target));
 * loss.backward();
 * ```
 *
 * As in PyTorch: the previous state (enabled, dtype, cache) is restored on exit, also when `fn`
 * throws; regions nest (an inner `{ enabled: false }` turns autocast off until it exits); leaving
 * the outermost region drops libtorch's cache of cast weights. `'cuda'` without CUDA warns and
 * runs `fn` with autocast off, as PyTorch does; so does float32 or float64 for `'cpu'` from PyTorch
 * 2.1, where CPU autocast takes bfloat16 and float16. Before 2.1 (libtorch 1.13) CPU autocast
 * takes bfloat16 only, and any other dtype is a RangeError (PyTorch fails there too, in libtorch).
 *
 * An async `fn` keeps autocast on until its promise settles, like `noGrad`: meanwhile any
 * other work the event loop runs on this thread runs under it too, and overlapping async regions
 * must settle in the reverse order of their starts to restore the right state. Work off the JS
 * thread (`Module.forwardAsync`, `predict`, DataLoader workers) does not see it: the state is per thread.
 *
 * @param deviceType `'cpu'` or `'cuda'`.
 * @param opts `dtype`, `enabled`, `cacheEnabled` (see {@link AutocastOptions}); may be left out.
 * @param fn the region; its result (or promise) is returned.
 */
export function autocast<T>(deviceType: AutocastDeviceType, fn: () => T): T;
export function autocast<T>(deviceType: AutocastDeviceType, opts: AutocastOptions, fn: () => T): T;
export function autocast<T>(deviceType: AutocastDeviceType, optsOrFn: AutocastOptions | (() => T), maybeFn?: () => T): T {
  const FN = 'autocast()';
  const [opts, fn] = typeof optsOrFn === 'function' && maybeFn === undefined ? [{}, optsOrFn] : [optsOrFn as AutocastOptions, maybeFn];
  const device = checkDeviceType(FN, deviceType);
  checkOptions(FN, opts, ['dtype', 'enabled', 'cacheEnabled']);
  checkFunction(FN, 'fn', fn);

  // torch.autocast.__init__: the defaults are the thread's current state, then the checks.
  const fastDtype = opts.dtype === undefined ? getAutocastDtype(device) : checkDtype(FN, opts.dtype);
  let enabled = opts.enabled === undefined ? true : checkBool(FN, 'enabled', opts.enabled);
  const cacheEnabled = opts.cacheEnabled === undefined ? native.autocastIsCacheEnabled() : checkBool(FN, 'cacheEnabled', opts.cacheEnabled);
  if (device === 'cuda' && enabled && !cuda.isAvailable()) {
    warn("User provided device_type of 'cuda', but CUDA is not available. Disabling");
    enabled = false;
  }
  if (device === 'cpu') {
    const supported = cpuAutocastDtypes(version.torch);
    // Before 2.1 libtorch itself refuses any other CPU autocast dtype (PyTorch warns, then fails
    // in __enter__ with "AutocastCPU only support Bfloat16"): say so before anything is changed.
    if (supported.length === 1 && fastDtype !== 'bfloat16') {
      throw new RangeError(
        `${FN}: option 'dtype' must be 'bfloat16' for 'cpu' autocast in libtorch ${version.torch} (float16 from PyTorch 2.1), got ${describe(opts.dtype ?? fastDtype)}`,
      );
    }
    if (enabled && !supported.includes(fastDtype)) {
      warn(
        'In CPU autocast, but the target dtype is not supported. Disabling autocast.\n' +
          `CPU Autocast only supports dtype of ${supported.map((d) => `torch.${d}`).join(', ')} currently.`,
      );
      enabled = false;
    }
  }
  const code = dtypeCode(fastDtype);

  let prevCache = false;
  let prev = false;
  let prevDtype = 0;
  return withMode(
    () => {
      // __enter__
      prevCache = native.autocastIsCacheEnabled();
      prev = native.autocastIsEnabled(device);
      prevDtype = native.autocastGetDtype(device);
      native.autocastSetEnabled(device, enabled);
      native.autocastSetDtype(device, code);
      native.autocastIncrementNesting();
      native.autocastSetCacheEnabled(cacheEnabled);
    },
    () => {
      // __exit__: the cast weights are dropped once outside every region.
      if (native.autocastDecrementNesting() === 0) native.autocastClearCache();
      native.autocastSetEnabled(device, prev);
      native.autocastSetDtype(device, prevDtype);
      native.autocastSetCacheEnabled(prevCache);
    },
    fn as () => T,
  );
}
