// Python's `**` and `math.cos` on doubles, bit for bit.
//
// V8's Math.pow and Math.cos are fdlibm ports; CPython calls the C library's
// pow() and cos() (glibc here). The two disagree in the last bit for roughly 5%
// of `0.999 ** step` values and 3% of cosines, enough to break bitwise parity with
// torch.optim (Adam's bias corrections, CosineAnnealingLR, OneCycleLR). libtorch
// links the same libm, and two of its CPU kernels call it one scalar at a time:
// pow.Tensor_Tensor (std::pow) and polar (std::cos). So these helpers run one
// double through those kernels. The cost is a few native calls, paid only for
// the handful of scalars an optimizer or scheduler step needs.
import { native, op } from '../native.js';
import { dtypeCode } from '../tensor/dtype.js';
import type { Handle } from '../native.js';

const F64 = dtypeCode('float64');
const scratch = new Float64Array(1);

function scalar(x: number): Handle {
  scratch[0] = x;
  return native.fromBuffer(scratch.buffer, 0, [], F64, true);
}

/**
 * `base ** exponent` as CPython computes it for floats (libm's pow), for finite
 * inputs. A zero exponent gives 1, as in Python (even for a NaN base).
 */
export function pyPow(base: number, exponent: number): number {
  if (exponent === 0) return 1;
  const b = scalar(base);
  const e = scalar(exponent);
  let r: Handle | undefined;
  try {
    r = native.call(op('aten::pow', 'Tensor_Tensor'), b, e) as Handle;
    return native.item(r) as number;
  } finally {
    native.dispose(b);
    native.dispose(e);
    if (r !== undefined) native.dispose(r);
  }
}

/** `math.cos(x)` as CPython computes it (libm's cos). */
export function pyCos(x: number): number {
  const one = scalar(1);
  const angle = scalar(x);
  let c: Handle | undefined;
  let re: Handle | undefined;
  try {
    // polar(1, x) = 1·cos(x) + i·1·sin(x), computed with std::cos; 1·cos(x) is exact.
    c = native.call(op('aten::polar'), one, angle) as Handle;
    re = native.call(op('aten::real'), c) as Handle;
    return native.item(re) as number;
  } finally {
    native.dispose(one);
    native.dispose(angle);
    if (c !== undefined) native.dispose(c);
    if (re !== undefined) native.dispose(re);
  }
}
