// The ONNX protobuf schema (onnx.proto of ONNX 1.10, compiled with protobufjs by
// the onnx-proto package) and the few conversions the exporter needs.
import { endianness } from 'node:os';
import onnxProto from 'onnx-proto';
import type { onnx as Onnx } from 'onnx-proto';
import type { DType } from '../tensor/dtype.js';
import type { Tensor } from '../tensor/tensor.js';

export const { onnx } = onnxProto;
export type ModelProto = Onnx.ModelProto;
export type IModelProto = Onnx.IModelProto;
export type INodeProto = Onnx.INodeProto;
export type ITensorProto = Onnx.ITensorProto;
export type IValueInfoProto = Onnx.IValueInfoProto;
export type IAttributeProto = Onnx.IAttributeProto;

const { DataType } = onnx.TensorProto;

/** ONNX element types of the tensor dtypes an exported graph may hold. */
const ELEM_TYPES: Partial<Record<DType, number>> = {
  float32: DataType.FLOAT,
  float64: DataType.DOUBLE,
  int64: DataType.INT64,
  int32: DataType.INT32,
};

/** ONNX's element type for `dtype`; an Error for the dtypes the exporter does not write. */
export function elemType(dtype: DType, what: string): number {
  const t = ELEM_TYPES[dtype];
  if (t === undefined) throw new TypeError(`onnx.export(): ${what} has dtype ${dtype}; ONNX export supports ${Object.keys(ELEM_TYPES).join(', ')}`);
  return t;
}

/** Bytes per element of each ONNX element type written here. */
export const ELEM_SIZE: Record<number, number> = { [DataType.FLOAT]: 4, [DataType.DOUBLE]: 8, [DataType.INT64]: 8, [DataType.INT32]: 4 };

// ONNX raw_data is little-endian, as the typed arrays of this machine must be.
if (endianness() !== 'LE') throw new Error('vgg-torch ONNX export needs a little-endian machine');

/** A tensor's elements as ONNX raw_data (row-major, little-endian; copied off the device). */
export function rawBytes(t: Tensor): Uint8Array {
  const a = t.toTypedArray();
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

/** A TensorProto holding `data` (raw little-endian bytes). */
export function tensorProto(name: string, dataType: number, dims: readonly number[], data: Uint8Array): ITensorProto {
  return { name, dataType, dims: [...dims], rawData: data };
}

/** An int64 TensorProto (shapes, axes). */
export function int64Tensor(name: string, values: readonly number[]): ITensorProto {
  return tensorProto(name, DataType.INT64, [values.length], new Uint8Array(BigInt64Array.from(values, BigInt).buffer));
}

/** A float32 TensorProto. */
export function floatTensor(name: string, dims: readonly number[], values: readonly number[]): ITensorProto {
  return tensorProto(name, DataType.FLOAT, dims, new Uint8Array(Float32Array.from(values).buffer));
}

/** A dimension: a size, or a named symbolic one (`'batch'`). */
export type Dim = number | string;

/** A typed graph input or output: element type and shape. */
export function valueInfo(name: string, type: number, shape: readonly Dim[]): IValueInfoProto {
  return {
    name,
    type: { tensorType: { elemType: type, shape: { dim: shape.map((d) => (typeof d === 'string' ? { dimParam: d } : { dimValue: d })) } } },
  };
}

/** Attribute values by kind, as onnx.helper.make_attribute infers them. */
export type AttrValue = number | number[] | string | { float: number };

/** An AttributeProto: integers as INT(S), `{ float }` as FLOAT, strings as STRING. */
export function attribute(name: string, v: AttrValue): IAttributeProto {
  const { AttributeType } = onnx.AttributeProto;
  if (typeof v === 'string') return { name, type: AttributeType.STRING, s: new TextEncoder().encode(v) };
  if (typeof v === 'number') {
    if (!Number.isInteger(v)) throw new Error(`attribute ${name}: ${v} is not an integer (floats are written as { float })`);
    return { name, type: AttributeType.INT, i: v };
  }
  if (Array.isArray(v)) return { name, type: AttributeType.INTS, ints: v };
  return { name, type: AttributeType.FLOAT, f: v.float };
}
