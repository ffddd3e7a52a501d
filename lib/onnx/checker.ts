// The structural rules of onnx.checker.check_model that an exported graph must
// meet (the Python onnx package is not a dependency): typed inputs and outputs
// with valid shapes, every node input defined before use, each value defined
// once, initializers whose bytes match their shape, known opset.
import { ELEM_SIZE, type IModelProto, type ITensorProto, type IValueInfoProto, onnx } from './proto.js';

const num = (v: unknown): number => Number(v); // int64 fields decode as Long

function checkValueInfo(v: IValueInfoProto, what: string, problems: string[]): void {
  const t = v.type?.tensorType;
  if (!v.name) problems.push(`${what} has no name`);
  if (!t) return void problems.push(`${what} ${v.name} has no tensor type`);
  if (!t.elemType || t.elemType === onnx.TensorProto.DataType.UNDEFINED) problems.push(`${what} ${v.name} has no element type`);
  if (!t.shape) return void problems.push(`${what} ${v.name} has no shape`);
  (t.shape.dim ?? []).forEach((d, i) => {
    const hasValue = d.dimValue !== undefined && d.dimValue !== null && num(d.dimValue) > 0;
    const hasParam = typeof d.dimParam === 'string' && d.dimParam.length > 0;
    if (hasValue === hasParam) problems.push(`${what} ${v.name}: dim ${i} must be a positive size or a symbolic name`);
  });
}

function checkInitializer(t: ITensorProto, problems: string[]): void {
  const dims = (t.dims ?? []).map(num);
  if (dims.some((d) => !Number.isInteger(d) || d < 0)) return void problems.push(`initializer ${t.name}: bad dims [${dims.join(', ')}]`);
  const size = ELEM_SIZE[t.dataType ?? 0];
  if (size === undefined) return void problems.push(`initializer ${t.name}: unexpected data type ${t.dataType}`);
  const bytes = dims.reduce((a, b) => a * b, 1) * size;
  if (t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL) {
    const kv = new Map((t.externalData ?? []).map((e) => [e.key, e.value]));
    const location = kv.get('location');
    if (!location || location.startsWith('/') || location.split(/[\\/]/).includes('..')) {
      problems.push(`initializer ${t.name}: external data location must be a relative path inside the model's folder, got ${String(location)}`);
    }
    if (num(kv.get('length')) !== bytes) problems.push(`initializer ${t.name}: external length ${kv.get('length')} is not ${bytes} bytes`);
    if (!(num(kv.get('offset') ?? 0) >= 0)) problems.push(`initializer ${t.name}: bad external offset ${kv.get('offset')}`);
  } else if ((t.rawData?.length ?? -1) !== bytes) {
    problems.push(`initializer ${t.name}: raw_data holds ${t.rawData?.length ?? 0} bytes, its shape needs ${bytes}`);
  }
}

/**
 * Checks `model` against the ONNX checker's structural rules; throws one Error
 * listing every problem.
 */
export function checkModel(model: IModelProto): void {
  const problems: string[] = [];
  if (!model.irVersion || num(model.irVersion) < 3) problems.push(`ir_version ${String(model.irVersion)} is missing or too old`);
  const opset = (model.opsetImport ?? []).find((o) => (o.domain ?? '') === '');
  if (!opset || !(num(opset.version) >= 1)) problems.push('no opset_import for the default domain');
  const g = model.graph;
  if (!g) throw new Error('invalid ONNX model: no graph');
  if (!g.name) problems.push('the graph has no name');
  if (!g.input?.length) problems.push('the graph has no inputs');
  if (!g.output?.length) problems.push('the graph has no outputs');
  const defined = new Set<string>();
  const define = (name: string, what: string) => {
    if (!name) problems.push(`${what} defines an empty name`);
    else if (defined.has(name)) problems.push(`${what} defines ${name} a second time`);
    defined.add(name);
  };
  for (const v of g.input ?? []) {
    checkValueInfo(v, 'graph input', problems);
    define(v.name ?? '', 'graph input');
  }
  for (const t of g.initializer ?? []) {
    checkInitializer(t, problems);
    // An initializer may also be listed as an input (IR ≥ 4 allows both).
    if (!(g.input ?? []).some((v) => v.name === t.name)) define(t.name ?? '', 'initializer');
  }
  for (const [i, n] of (g.node ?? []).entries()) {
    const what = `node ${i} (${n.opType})`;
    if (!n.opType) problems.push(`node ${i} has no op_type`);
    for (const x of n.input ?? []) if (x !== '' && !defined.has(x)) problems.push(`${what}: input ${x} is not defined before it`);
    for (const a of n.attribute ?? []) if (!a.name || !a.type) problems.push(`${what}: attribute ${a.name} has no name or type`);
    for (const o of n.output ?? []) define(o, what);
  }
  for (const v of g.output ?? []) {
    checkValueInfo(v, 'graph output', problems);
    if (!defined.has(v.name ?? '')) problems.push(`graph output ${v.name} is not computed by the graph`);
  }
  if (problems.length) throw new Error(`invalid ONNX model:\n  ${problems.join('\n  ')}`);
}
