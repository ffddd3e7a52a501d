// From a traced graph to an ONNX ModelProto, as torch.onnx's graph pass: every
// node's symbolic function emits ONNX nodes, constant tensors become
// initializers, the graph's inputs and outputs are typed (with a symbolic
// 'batch' dimension when asked).
import type { DType } from '../tensor/dtype.js';
import { Tensor } from '../tensor/tensor.js';
import type { GraphConstant as ConstantValue, Graph as TracedGraph } from '../jit/scriptModule.js';
import { type AttrValue, type IModelProto, type INodeProto, type ITensorProto, attribute, elemType, onnx, rawBytes, tensorProto, valueInfo } from './proto.js';
import { SYMBOLICS, type SymbolicContext, type ValueType } from './symbolic.js';

/** The opsets the exporter writes: every operator it emits has the same meaning in all of them. */
export const OPSET_RANGE = [11, 17] as const;
export const DEFAULT_OPSET = 13;
/** The ONNX IR version each opset came with (onnx/helper.py's VERSION_TABLE). */
const IR_VERSION = (opset: number): number => (opset <= 11 ? 6 : opset <= 14 ? 7 : 8);
/** The name of the symbolic batch dimension. */
export const BATCH_DIM = 'batch';

export interface ConvertOptions {
  /** Default {@link DEFAULT_OPSET}; from 11 to 17. */
  opset?: number;
  /** Dim 0 of every input (and of the outputs that keep it) is the symbolic `'batch'` (default true). */
  dynamicBatch?: boolean;
  /** Names of the graph inputs (default `input`, or `input0`, `input1`, … when several). */
  inputNames?: string[];
  /** Names of the graph outputs (default `output`, or `output0`, …). */
  outputNames?: string[];
  /** A name for a constant tensor (its parameter's name, `features.0.weight`); default the traced value's. */
  constantName?: (t: Tensor) => string | undefined;
  /** `producer_name` of the model (default `vgg-torch`). */
  producerName?: string;
  /** `metadata_props`: strings a runtime can read back (class names, normalization). */
  metadata?: Record<string, string>;
}

/** The supported traced operators, for error messages. */
export const supportedOps = (): string[] => Object.keys(SYMBOLICS);

/** Graph input/output names: given ones, checked, or the defaults. */
function names(given: string[] | undefined, n: number, base: string, what: string): string[] {
  if (given === undefined) return n === 1 ? [base] : Array.from({ length: n }, (_, i) => `${base}${i}`);
  if (!Array.isArray(given) || given.length !== n || !given.every((s) => typeof s === 'string' && s.length > 0)) {
    throw new TypeError(`onnx.export(): ${what} must be ${n} non-empty string${n === 1 ? '' : 's'}, got ${JSON.stringify(given)}`);
  }
  if (new Set(given).size !== n) throw new Error(`onnx.export(): ${what} must be distinct, got ${JSON.stringify(given)}`);
  return given;
}

/**
 * Converts `graph`, traced with inputs of `inputs` (shape, dtype), into an ONNX
 * model. Weights are initializers holding `raw_data`.
 */
export function graphToOnnx(graph: TracedGraph, inputs: { shape: number[]; dtype: DType }[], opts: ConvertOptions = {}): IModelProto {
  const opset = opts.opset ?? DEFAULT_OPSET;
  if (!Number.isInteger(opset) || opset < OPSET_RANGE[0] || opset > OPSET_RANGE[1]) {
    throw new RangeError(`onnx.export(): opset must be an integer from ${OPSET_RANGE[0]} to ${OPSET_RANGE[1]}, got ${String(opset)}`);
  }
  const dynamicBatch = opts.dynamicBatch ?? true;
  if (inputs.length !== graph.inputs.length) throw new Error(`onnx.export(): the graph takes ${graph.inputs.length} inputs, got ${inputs.length} input types`);
  const inputNames = names(opts.inputNames, graph.inputs.length, 'input', 'inputNames');
  const outputNames = names(opts.outputNames, graph.outputs.length, 'output', 'outputNames');

  const constants = new Map<string, ConstantValue>(); // traced value → its constant value
  const types = new Map<string, ValueType>(); // ONNX tensor name → type
  const onnxName = new Map<string, string>(); // traced tensor value → ONNX name
  const used = new Set<string>([...graph.inputs, ...graph.outputs, ...inputNames, ...outputNames]);
  for (const n of graph.nodes) for (const o of n.outputs) used.add(o);
  const fresh = (hint: string): string => {
    let name = hint;
    for (let i = 1; used.has(name); i++) name = `${hint}_${i}`;
    used.add(name);
    return name;
  };
  const nodes: INodeProto[] = [];
  const initializers: ITensorProto[] = [];
  const initializerOf = new Map<Tensor, string>(); // a tensor used twice is stored once

  graph.inputs.forEach((v, i) => {
    if (inputs[i].shape.length === 0) throw new RangeError('onnx.export(): a graph input must have at least one dimension (the batch)');
    onnxName.set(v, inputNames[i]);
    types.set(inputNames[i], { shape: inputs[i].shape, dtype: inputs[i].dtype, batched: true });
  });

  const tensorInitializer = (value: string, t: Tensor): string => {
    const known = initializerOf.get(t);
    if (known !== undefined) return known;
    const name = fresh(opts.constantName?.(t) ?? value);
    initializers.push(tensorProto(name, elemType(t.dtype, `constant ${name}`), t.shape, rawBytes(t)));
    initializerOf.set(t, name);
    types.set(name, { shape: t.shape, dtype: t.dtype, batched: false });
    return name;
  };

  for (const [index, node] of graph.nodes.entries()) {
    if (node.kind === 'prim::Constant') {
      if (node.outputs.length !== 1) throw new Error(`onnx.export(): prim::Constant with ${node.outputs.length} outputs`);
      constants.set(node.outputs[0], node.value === undefined ? null : node.value);
      continue;
    }
    if (node.kind === 'prim::ListConstruct') {
      const items = node.inputs.map((v) => constants.get(v));
      if (!items.every((x): x is number => typeof x === 'number' || x === null)) {
        // int?[] (output_size) may hold None
        throw new Error(`onnx.export(): node ${index} (prim::ListConstruct) lists values computed at run time; only constant int lists are exported`);
      }
      constants.set(node.outputs[0], items);
      continue;
    }
    const symbolic = SYMBOLICS[node.kind];
    if (!symbolic) {
      throw new Error(`onnx.export(): the operator ${node.kind} (node ${index}) is not supported by the ONNX export; supported: ${supportedOps().join(', ')}`);
    }
    const where = `node ${index} (${node.kind})`;
    const arg = (i: number): string => {
      if (i >= node.inputs.length) throw new Error(`onnx.export(): ${where} has no input ${i}`);
      return node.inputs[i];
    };
    const ctx: SymbolicContext = {
      node,
      opset,
      dynamicBatch,
      tensor(i) {
        const v = arg(i);
        const name = onnxName.get(v);
        if (name !== undefined) return name;
        const c = constants.get(v);
        if (c instanceof Tensor) return tensorInitializer(v, c);
        throw new Error(`onnx.export(): ${where}: input ${i} (${v}) is ${c === undefined ? 'not defined before it' : `not a tensor (${String(c)})`}`);
      },
      optionalTensor(i) {
        return i < node.inputs.length && constants.has(node.inputs[i]) && constants.get(node.inputs[i]) === null ? null : this.tensor(i);
      },
      type(i) {
        return types.get(this.tensor(i))!;
      },
      constant(i) {
        const v = arg(i);
        if (!constants.has(v)) throw new Error(`onnx.export(): ${where}: input ${i} (${v}) is computed at run time; the ONNX export needs it constant`);
        return constants.get(v)!;
      },
      initializer(hint, make) {
        const t = make(fresh(hint));
        initializers.push(t);
        const dtype = t.dataType === onnx.TensorProto.DataType.INT64 ? 'int64' : 'float32'; // the shapes, scales and fills symbolics make
        types.set(t.name!, { shape: (t.dims as number[]).map(Number), dtype, batched: false });
        return t.name!;
      },
      emit(opType, ins, attrs: Record<string, AttrValue> = {}) {
        const out = fresh(`${opType}_${nodes.length}`);
        nodes.push({
          opType,
          name: `${opType}_${nodes.length}`,
          input: ins,
          output: [out],
          attribute: Object.entries(attrs).map(([k, a]) => attribute(k, a)),
        });
        return out;
      },
      result(name, type, i = 0) {
        onnxName.set(node.outputs[i], name);
        types.set(name, type);
      },
      fail(message) {
        return new Error(`onnx.export(): ${where}: ${message}`);
      },
    };
    symbolic(ctx);
    for (const o of node.outputs) if (!onnxName.has(o)) throw new Error(`onnx.export(): ${where}: output ${o} was not converted`);
  }

  // Outputs carry their given names: the node computing one is renamed, an input or constant passes through Identity.
  const produced = new Set(nodes.flatMap((n) => n.output as string[]));
  const rename = new Map<string, string>();
  const outputs = graph.outputs.map((v, i) => {
    const name = onnxName.get(v);
    if (name === undefined) throw new Error(`onnx.export(): graph output ${v} is not a tensor the graph computes`);
    const type = types.get(name)!;
    if (produced.has(name) && !rename.has(name) && !inputNames.includes(name)) rename.set(name, outputNames[i]);
    else nodes.push({ opType: 'Identity', name: `Identity_${nodes.length}`, input: [rename.get(name) ?? name], output: [outputNames[i]] });
    return valueInfo(outputNames[i], elemType(type.dtype, `output ${outputNames[i]}`), shapeOf(type, dynamicBatch));
  });
  for (const n of nodes) {
    n.input = (n.input as string[]).map((s) => rename.get(s) ?? s);
    n.output = (n.output as string[]).map((s) => rename.get(s) ?? s);
  }

  return {
    irVersion: IR_VERSION(opset),
    opsetImport: [{ domain: '', version: opset }],
    producerName: opts.producerName ?? 'vgg-torch',
    metadataProps: Object.entries(opts.metadata ?? {}).map(([key, value]) => {
      if (typeof value !== 'string') throw new TypeError(`onnx.export(): metadata.${key} must be a string, got ${typeof value}`);
      return { key, value };
    }),
    graph: {
      name: 'main_graph',
      node: nodes,
      initializer: initializers,
      input: inputNames.map((name) => valueInfo(name, elemType(types.get(name)!.dtype, `input ${name}`), shapeOf(types.get(name)!, dynamicBatch))),
      output: outputs,
    },
  };
}

function shapeOf(t: ValueType, dynamicBatch: boolean): (number | string)[] {
  return t.batched && dynamicBatch ? [BATCH_DIM, ...t.shape.slice(1)] : t.shape;
}
