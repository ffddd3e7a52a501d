// Data types: names as PyTorch prints them (without "torch."), codes as c10::ScalarType.

/** A tensor element type, named as in PyTorch (`torch.float32` → `'float32'`). */
export type DType = 'float32' | 'float64' | 'float16' | 'bfloat16' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

const CODES: Record<DType, number> = {
  uint8: 0,
  int8: 1,
  int16: 2,
  int32: 3,
  int64: 4,
  float16: 5,
  float32: 6,
  float64: 7,
  bool: 11,
  bfloat16: 15,
};
const NAMES = new Map<number, DType>(Object.entries(CODES).map(([k, v]) => [v, k as DType]));

/** Aliases PyTorch accepts for the same types. */
const ALIASES: Record<string, DType> = {
  float: 'float32',
  double: 'float64',
  half: 'float16',
  long: 'int64',
  int: 'int32',
  short: 'int16',
};

export function dtypeCode(dtype: DType | string): number {
  const name = (ALIASES[dtype] ?? dtype) as DType;
  const code = CODES[name];
  if (code === undefined) {
    throw new TypeError(`unknown dtype '${dtype}'; expected one of ${Object.keys(CODES).join(', ')}`);
  }
  return code;
}

export function dtypeName(code: number): DType {
  const name = NAMES.get(code);
  if (name === undefined) throw new TypeError(`vgg-torch does not support ScalarType ${code}`);
  return name;
}

export function normalizeDtype(dtype: DType | string): DType {
  return dtypeName(dtypeCode(dtype));
}

export const isFloatingDtype = (d: DType): boolean => d === 'float32' || d === 'float64' || d === 'float16' || d === 'bfloat16';

/** The typed array `toTypedArray()` returns for each dtype (half types widen to float32). */
export type TypedArrayFor = {
  float32: Float32Array;
  float64: Float64Array;
  float16: Float32Array;
  bfloat16: Float32Array;
  int64: BigInt64Array;
  int32: Int32Array;
  int16: Int16Array;
  int8: Int8Array;
  uint8: Uint8Array;
  bool: Uint8Array;
};
export type AnyTypedArray = TypedArrayFor[DType];

/** Wraps raw host bytes (as the addon copies them out) in the typed array for `dtype`. */
export function viewBytes(dtype: DType, buf: ArrayBuffer): AnyTypedArray {
  switch (dtype) {
    case 'float32':
    case 'float16':
    case 'bfloat16':
      return new Float32Array(buf);
    case 'float64':
      return new Float64Array(buf);
    case 'int64':
      return new BigInt64Array(buf);
    case 'int32':
      return new Int32Array(buf);
    case 'int16':
      return new Int16Array(buf);
    case 'int8':
      return new Int8Array(buf);
    case 'uint8':
    case 'bool':
      return new Uint8Array(buf);
  }
}

/** The dtype a typed array holds, as `torch.from_numpy` would see it. */
export function dtypeOfTypedArray(a: ArrayBufferView): DType | undefined {
  if (a instanceof Float32Array) return 'float32';
  if (a instanceof Float64Array) return 'float64';
  if (a instanceof BigInt64Array) return 'int64';
  if (a instanceof Int32Array) return 'int32';
  if (a instanceof Int16Array) return 'int16';
  if (a instanceof Int8Array) return 'int8';
  if (a instanceof Uint8Array || a instanceof Uint8ClampedArray) return 'uint8';
  return undefined;
}

export const elementSize = (d: DType): number =>
  ({ float32: 4, float64: 8, float16: 2, bfloat16: 2, int64: 8, int32: 4, int16: 2, int8: 1, uint8: 1, bool: 1 })[d];
