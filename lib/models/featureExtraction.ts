// Feature extraction (torchvision/models/feature_extraction.py): create_feature_extractor
// and get_graph_node_names for models made of Sequential chains, VGG included.
//
// torchvision traces forward() with torch.fx and names each node after the leaf
// module it calls (`features.3`) or the function (`flatten`). A JS forward cannot
// be traced, but VGG's graph is a chain, so it is written down here: the leaves
// of each Sequential in order, and VGG's own steps (avgpool, flatten). The
// extractor runs that chain up to the last requested node and no further, as
// torchvision's graph, whose nodes after the outputs are dead code.
import { Module } from '../nn/modules/module.js';
import { Sequential } from '../nn/modules/container.js';
import type { Tensor } from '../tensor/tensor.js';
import { checkOptions, describe, isPlainObject } from '../utils/args.js';
import { VGG } from './vgg.js';

interface GraphNode {
  name: string;
  run: (x: Tensor) => Tensor;
  /** The top-level child the node belongs to ('' for the input and functions). */
  owner: string;
}

function chain(m: Module<any, any>, path: string, owner: string, out: GraphNode[]): void {
  const join = (name: string): string => (path ? `${path}.${name}` : name);
  const top = (name: string): string => owner || name;
  if (m instanceof VGG) {
    chain(m.features, join('features'), top('features'), out);
    const pool = m.avgpool;
    if (pool) out.push({ name: join('avgpool'), owner: top('avgpool'), run: (x) => pool(x) });
    out.push({ name: join('flatten'), owner, run: (x) => x.flatten(1) });
    chain(m.classifier, join('classifier'), top('classifier'), out);
  } else if (m instanceof Sequential) {
    for (const [name, child] of m.namedChildren()) chain(child, join(name), top(name), out);
  } else {
    if (!path) {
      throw new TypeError(`the graph of a ${m.typeName()} is not known: feature extraction takes a VGG, a Sequential, or a module made of them`);
    }
    out.push({ name: path, owner, run: (x) => (m as Module<[Tensor], Tensor>)(x) });
  }
}

function graphOf(model: unknown, fn: string): GraphNode[] {
  if (!(model instanceof Module)) throw new TypeError(`${fn}: argument 'model' must be a Module, got ${describe(model)}`);
  const nodes: GraphNode[] = [{ name: 'x', owner: '', run: (x) => x }];
  chain(model, '', '', nodes);
  return nodes;
}

/**
 * The names `createFeatureExtractor` accepts, in execution order
 * (`get_graph_node_names`): `'x'` for the input, then module paths as in
 * state-dict keys (`features.0` … `features.30`, `avgpool`, `flatten`,
 * `classifier.0` … `classifier.6` for vgg16). torchvision returns a train and an
 * eval list; for these models both are the same, so this returns one.
 */
export function getGraphNodeNames(model: Module<any, any>): string[] {
  return graphOf(model, 'getGraphNodeNames()').map((n) => n.name);
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}

// A leaf's name, or a module's (then its last leaf), as torchvision accepts both.
function resolve(nodes: GraphNode[], query: string): number {
  const exact = nodes.findIndex((n) => n.name === query);
  if (exact >= 0) return exact;
  for (let i = nodes.length - 1; i > 0; i--) if (nodes[i].name.startsWith(`${query}.`)) return i;
  const close = nodes
    .map((n) => ({ name: n.name, d: editDistance(query, n.name) }))
    .filter((c) => c.d <= Math.max(2, Math.floor(query.length / 3)))
    .sort((a, b) => a.d - b.d)
    .slice(0, 5)
    .map((c) => `'${c.name}'`);
  throw new Error(
    `node: '${query}' is not present in model.` +
      (close.length ? ` Close names: ${close.join(', ')}.` : '') +
      ' Use getGraphNodeNames(model) for the valid names.',
  );
}

// The part of `m` (at `path`) that the kept nodes use: Sequentials cut after
// their last used child, as torchvision's GraphModule holds only used submodules.
function truncate(m: Module<any, any>, path: string, nodes: GraphNode[]): Module<any, any> {
  if (!(m instanceof Sequential) || m instanceof VGG) return m;
  const used = (p: string): boolean => nodes.some((n) => n.name === p || n.name.startsWith(`${p}.`));
  const kept = [...m.namedChildren()].filter(([name]) => used(`${path}.${name}`));
  return new Sequential(...kept.map(([name, child]) => truncate(child, `${path}.${name}`, nodes)));
}

/** Options of {@link createFeatureExtractor}. */
export interface FeatureExtractorOptions {
  /** Node names to return: an array (each returned under its own name) or `{ node: outputName }`. */
  returnNodes: string[] | Record<string, string>;
}

/**
 * The module {@link createFeatureExtractor} returns: its forward gives a Map
 * from the output names to the tensors, in the order requested. It shares the
 * model's submodules (and so its parameters); it holds only the top-level
 * children it runs, so its state-dict keys are the model's.
 */
export class FeatureExtractor extends Module<[Tensor], Map<string, Tensor>> {
  private readonly _nodes: GraphNode[];
  private readonly _outputs: [index: number, name: string][];

  constructor(model: Module<any, any>, opts: FeatureExtractorOptions) {
    super();
    checkOptions('createFeatureExtractor()', opts, ['returnNodes'], { required: ['returnNodes'] });
    const nodes = graphOf(model, 'createFeatureExtractor()');
    const spec = opts.returnNodes;
    let pairs: [string, string][];
    if (Array.isArray(spec)) pairs = spec.map((n) => [n, n]);
    else if (isPlainObject(spec)) pairs = Object.entries(spec) as [string, string][];
    else throw new TypeError(`createFeatureExtractor(): returnNodes must be an array of node names or a { node: name } object, got ${describe(spec)}`);
    if (pairs.length === 0) throw new RangeError('createFeatureExtractor(): returnNodes is empty');
    for (const [node, name] of pairs) {
      if (typeof node !== 'string' || typeof name !== 'string') {
        throw new TypeError(`createFeatureExtractor(): node and output names must be strings, got ${describe(node)}: ${describe(name)}`);
      }
    }
    const names = pairs.map(([, name]) => name);
    const dup = names.find((n, i) => names.indexOf(n) !== i);
    if (dup !== undefined) throw new Error(`createFeatureExtractor(): output name '${dup}' is given twice`);
    this._outputs = pairs.map(([node, name]) => [resolve(nodes, node), name]);
    const last = Math.max(...this._outputs.map(([i]) => i));
    this._nodes = nodes.slice(0, last + 1);
    const self = this as unknown as Record<string, unknown>;
    const children = new Map(model.namedChildren());
    const props = Object.entries(model).filter(([, v]) => v instanceof Module);
    for (const { owner } of this._nodes) {
      if (!owner || self[owner] !== undefined) continue;
      // The property that holds the child (camelCase) keeps the state-dict key (snake_case).
      const prop = props.find(([, v]) => v === children.get(owner))?.[0] ?? owner;
      self[prop] = truncate(children.get(owner)!, owner, this._nodes);
    }
    this.training = model.training;
  }

  /** Runs the model up to the last requested node; the outputs not requested are freed when the call returns. */
  forward(x: Tensor): Map<string, Tensor> {
    const values = [x];
    for (const node of this._nodes.slice(1)) values.push(node.run(values[values.length - 1]));
    return new Map(this._outputs.map(([i, name]) => [name, values[i]]));
  }
}

/**
 * A module that returns the intermediate outputs of `model` named in
 * `returnNodes` (`torchvision.models.feature_extraction.create_feature_extractor`):
 *
 * ```ts
 * const fx = createFeatureExtractor(vgg19(), { returnNodes: { 'features.3': 'relu1_2', 'features.8': 'relu2_2' } });
 * const feats = fx(x); // Map { 'relu1_2' => Tensor, 'relu2_2' => Tensor }
 * ```
 *
 * Nothing after the last requested node is computed. Names are those of
 * {@link getGraphNodeNames}; a module's name stands for its last node. Note
 * that VGG's ReLUs are in place: a conv's output is returned after the ReLU that
 * follows it when that ReLU runs too (as in PyTorch).
 */
export function createFeatureExtractor(model: Module<any, any>, opts: FeatureExtractorOptions): FeatureExtractor {
  return new FeatureExtractor(model, opts);
}
