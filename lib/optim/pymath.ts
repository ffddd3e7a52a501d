// Python's `**` and `math.cos` on doubles, bit for bit.
//
// V8's Math.pow and Math.cos are fdlibm ports; CPython calls the C library's
// pow() and cos() (glibc here). The two disagree in the last bit for roughly 5%
// of `0.999 ** step` values and 3% of cosines, enough to break bitwise parity with
// torch.optim (Adam's bias corrections, CosineAnnealingLR, OneCycleLR). The addon
// links the same libm and exports both.
import { native } from '../native.js';

/** `base ** exponent` as CPython computes it for floats (libm's pow), for finite inputs. */
export const pyPow = (base: number, exponent: number): number => native.libmPow(base, exponent);

/** `math.cos(x)` as CPython computes it (libm's cos). */
export const pyCos = (x: number): number => native.libmCos(x);
