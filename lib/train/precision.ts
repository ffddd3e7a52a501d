// fit()'s `amp` option: which precision a training run uses, and why. Mixed
// precision is PyTorch's AMP recipe: the forward pass and the loss inside
// autocast, backward() outside; float16 with a GradScaler (its gradients
// underflow without one), bfloat16 without (it has float32's range).
import { ampRulesNow } from '../amp/releases.js';
import { backends, cuda, version } from '../runtime.js';
import type { DType } from '../tensor/dtype.js';
import type { Device } from '../tensor/tensor.js';
import { describe } from '../utils/args.js';

/**
 * What fit({ amp }) and `vgg-torch train --amp` take: `'auto'` (bf16 autocast on a CPU that
 * computes bf16 natively, fp16 with a GradScaler on CUDA, fp32 otherwise), `'bf16'`, `'fp16'`
 * (with a GradScaler) or `'off'` (fp32).
 */
export type AmpSetting = 'auto' | 'bf16' | 'fp16' | 'off';
/** The settings, in the order help texts list them. */
export const AMP_SETTINGS: readonly AmpSetting[] = ['auto', 'bf16', 'fp16', 'off'];
/** What a run resolves `amp` to, as checkpoints store it: `'auto'` is never stored. */
export type AmpMode = Exclude<AmpSetting, 'auto'>;

/** A run's precision, resolved from its `amp` setting and device. */
export interface PrecisionPlan {
  /** The resolved setting (what checkpoints store). */
  amp: AmpMode;
  /** The setting asked for. */
  asked: AmpSetting;
  /** The device type autocast runs on. */
  deviceType: 'cpu' | 'cuda';
  /** The autocast dtype, or null for fp32. */
  dtype: DType | null;
  /** fp16 trains with a GradScaler. */
  scaler: boolean;
  /** The line fit() prints: the precision and why. */
  line: string;
}

const NAMES: Record<AmpMode, string> = { bf16: 'bf16 autocast', fp16: 'fp16 autocast with GradScaler', off: 'fp32' };

/** The precision plan for `amp` on `device`; throws (naming `fn`) where that precision cannot run here. */
export function planPrecision(fn: string, amp: unknown, device: Device): PrecisionPlan {
  if (typeof amp !== 'string') throw new TypeError(`${fn}: option 'amp' must be a string, got ${describe(amp)}`);
  if (!(AMP_SETTINGS as readonly string[]).includes(amp)) {
    throw new RangeError(`${fn}: option 'amp' must be one of ${AMP_SETTINGS.map((s) => `'${s}'`).join(', ')}, got ${describe(amp)}`);
  }
  const asked = amp as AmpSetting;
  const type = device.split(':')[0];
  const plan = (mode: AmpMode, why: string): PrecisionPlan => ({
    amp: mode,
    asked,
    deviceType: type === 'cuda' ? 'cuda' : 'cpu',
    dtype: mode === 'bf16' ? 'bfloat16' : mode === 'fp16' ? 'float16' : null,
    scaler: mode === 'fp16',
    line: `${mode === 'off' ? 'Precision' : 'Mixed precision'}: ${NAMES[mode]} (${why})`,
  });
  if (asked === 'off') return plan('off', "amp 'off'");
  if (type !== 'cpu' && type !== 'cuda') {
    if (asked === 'auto') return plan('off', `amp 'auto': autocast covers cpu and cuda, not ${type}`);
    throw new RangeError(`${fn}: amp '${asked}' needs device 'cpu' or 'cuda' (the device types with autocast), got ${describe(device)}`);
  }
  if (type === 'cuda') {
    if (!cuda.isAvailable()) {
      throw new Error(`${fn}: amp '${asked}' on device '${device}' needs CUDA, and there is none here (cuda.isAvailable() is false)`);
    }
    // PyTorch's CUDA AMP recipe: fp16 runs on the tensor cores of every CUDA GPU AMP targets, bf16 only from Ampere.
    return asked === 'auto' ? plan('fp16', "amp 'auto' on CUDA: PyTorch's CUDA recipe") : plan(asked, `amp '${asked}'`);
  }
  const bf16 = backends.cpu.bf16Support();
  if (asked === 'auto') return bf16.native ? plan('bf16', `amp 'auto': ${bf16.reason}`) : plan('off', `amp 'auto': ${bf16.reason}`);
  if (asked === 'bf16') return plan('bf16', bf16.native ? `amp 'bf16': ${bf16.reason}` : `amp 'bf16': ${bf16.reason}, so bf16 is emulated and slower`);
  // fp16 on the CPU: float16 CPU autocast came in 2.1, GradScaler's CPU kernels in 2.3.
  if (!ampRulesNow.cpuGradScaler) {
    throw new RangeError(
      `${fn}: amp 'fp16' on the CPU needs libtorch 2.3 or later (CPU float16 autocast came in 2.1, GradScaler's CPU kernels in 2.3); ` +
        `this is libtorch ${version.torch}: use amp 'bf16' or 'off'`,
    );
  }
  return plan('fp16', "amp 'fp16'");
}
