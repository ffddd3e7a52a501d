// The traced graph of a module built from this package's layers, written by
// walking the module tree instead of running it: each layer gives the ATen call
// its forward makes (the node libtorch's tracer records), and VGG its forward
// (features → avgpool → flatten → classifier). A stand-in for the TorchScript
// tracer's graph, in the same form.
import { VGG } from '../models/vgg.js';
import {
  AdaptiveAvgPool2d, AvgPool2d, BatchNorm2d, Conv2d, Dropout, Flatten, Identity, Linear, MaxPool2d, type Module, ReLU, Sequential,
} from '../nn/modules/index.js';
import type { Pair } from '../nn/modules/utils.js';
import type { ConstantValue, GraphNode, TracedGraph } from './graph.js';

class Builder {
  readonly nodes: GraphNode[] = [];
  private n = 0;
  private name(): string {
    return String(this.n++);
  }
  const(value: ConstantValue): string {
    const out = this.name();
    this.nodes.push({ kind: 'prim::Constant', inputs: [], outputs: [out], value });
    return out;
  }
  list(values: readonly (number | null)[]): string {
    const inputs = values.map((v) => this.const(v));
    const out = this.name();
    this.nodes.push({ kind: 'prim::ListConstruct', inputs, outputs: [out] });
    return out;
  }
  pair(p: Pair): string {
    return this.list(typeof p === 'number' ? [p, p] : p);
  }
  op(kind: string, ...inputs: string[]): string {
    const out = this.name();
    this.nodes.push({ kind, inputs, outputs: [out] });
    return out;
  }
}

function walk(b: Builder, m: Module<any, any>, x: string, path: string): string {
  const at = (name: string) => (path ? `${path}.${name}` : name);
  if (m instanceof VGG) {
    let h = walk(b, m.features, x, at('features'));
    if (m.avgpool) h = walk(b, m.avgpool, h, at('avgpool'));
    h = b.op('aten::flatten', h, b.const(1), b.const(-1));
    return walk(b, m.classifier, h, at('classifier'));
  }
  if (m instanceof Sequential) {
    let h = x;
    for (const [name, child] of m.namedChildren()) h = walk(b, child, h, at(name));
    return h;
  }
  if (m instanceof Conv2d) {
    if (m.paddingMode !== 'zeros') throw new Error(`exportOnnx(): ${path} (Conv2d) has paddingMode '${m.paddingMode}'; only 'zeros' is exported`);
    const padding = typeof m.padding === 'string' ? b.const(m.padding) : b.pair(m.padding);
    return b.op('aten::conv2d', x, b.const(m.weight), b.const(m.bias), b.pair(m.stride), padding, b.pair(m.dilation), b.const(m.groups));
  }
  if (m instanceof BatchNorm2d) {
    // F.batch_norm's training flag: batch statistics in training, or without running statistics.
    const training = m.training || m.runningMean === null;
    return b.op('aten::batch_norm', x, b.const(m.weight), b.const(m.bias), b.const(m.runningMean), b.const(m.runningVar),
      b.const(training), b.const(m.momentum ?? 0), b.const(m.eps), b.const(true));
  }
  if (m instanceof ReLU) return b.op(m.inplace ? 'aten::relu_' : 'aten::relu', x);
  if (m instanceof MaxPool2d) {
    return b.op('aten::max_pool2d', x, b.pair(m.kernelSize), b.pair(m.stride), b.pair(m.padding), b.pair(m.dilation), b.const(m.ceilMode));
  }
  if (m instanceof AvgPool2d) {
    return b.op('aten::avg_pool2d', x, b.pair(m.kernelSize), b.pair(m.stride), b.pair(m.padding), b.const(m.ceilMode),
      b.const(m.countIncludePad), b.const(m.divisorOverride));
  }
  if (m instanceof AdaptiveAvgPool2d) {
    const s = m.outputSize;
    return b.op('aten::adaptive_avg_pool2d', x, b.list(typeof s === 'number' ? [s, s] : s));
  }
  if (m instanceof Linear) return b.op('aten::linear', x, b.const(m.weight), b.const(m.bias));
  if (m instanceof Dropout) return b.op(m.inplace ? 'aten::dropout_' : 'aten::dropout', x, b.const(m.p), b.const(m.training));
  if (m instanceof Flatten) return b.op('aten::flatten', x, b.const(m.startDim), b.const(m.endDim));
  if (m instanceof Identity) return x;
  throw new Error(`exportOnnx(): cannot export ${path || 'the model'} (${m.typeName()}): the ONNX export knows VGG, Sequential and the layers ` +
    'Conv2d, BatchNorm2d, ReLU, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, Linear, Dropout, Flatten, Identity');
}

/** The graph `model`'s forward runs on one input, from its module tree. */
export function moduleGraph(model: Module<any, any>): TracedGraph {
  const b = new Builder();
  const out = walk(b, model, 'input.1', '');
  return { inputs: ['input.1'], outputs: [out], nodes: b.nodes };
}
