// The traced graph the ONNX export reads: the plain-JS description of a
// libtorch TorchScript graph (SSA values by unique name; `prim::Constant` nodes
// carry their values, tensors included).
import type { Tensor } from '../tensor/tensor.js';

/** A constant's value: tensors (weights), numbers, booleans, strings, int lists or `null` (None). */
export type ConstantValue = number | boolean | string | number[] | null | Tensor;

/** One node: `kind` is the operator (`aten::conv2d`, `prim::Constant`, …). */
export interface GraphNode {
  kind: string;
  inputs: string[];
  outputs: string[];
  value?: ConstantValue;
}

/** A traced graph: its inputs, its outputs and its nodes in execution order. */
export interface TracedGraph {
  inputs: string[];
  outputs: string[];
  nodes: GraphNode[];
}
