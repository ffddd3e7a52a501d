// summary(model, inputShape): a Keras-style table of layers, output shapes,
// parameters and multiply-accumulates, from one real forward pass on zeros.
import { inferenceMode } from '../autograd.js';
import { zeros } from '../tensor/creation.js';
import type { Tensor } from '../tensor/tensor.js';
import { tidy } from '../tensor/scope.js';
import { Conv2d, Linear, Module } from './modules/index.js';
import { describe } from '../utils/args.js';

export interface LayerSummary {
  /** Dotted name, as in the state dict (`features.0`). */
  name: string;
  type: string;
  outputShape: number[];
  params: number;
  /** Multiply-accumulates for the given input (batch included). */
  macs: number;
}

export interface ModelSummary {
  layers: LayerSummary[];
  totalParams: number;
  trainableParams: number;
  totalMacs: number;
  inputShape: number[];
  outputShape: number[];
  /** The table as text. */
  toString(): string;
}

function macsOf(m: Module<any, any>, out: number[]): number {
  const numel = out.reduce((a, b) => a * b, 1);
  if (m instanceof Conv2d) return numel * (m.inChannels / m.groups) * m.kernelSize[0] * m.kernelSize[1];
  if (m instanceof Linear) return numel * m.inFeatures;
  return 0;
}

const count = (n: number): string => n.toLocaleString('en-US');

/**
 * Runs `model` once on zeros of `inputShape` (a batch dimension of 1 is added to
 * a 3-D shape) in inference mode and eval mode, recording every leaf layer.
 * Training mode and running statistics are left as they were.
 */
export function summary(model: Module<[Tensor], Tensor>, inputShape: number[]): ModelSummary {
  if (!(model instanceof Module)) throw new TypeError(`summary(): argument 'model' must be a Module, got ${describe(model)}`);
  if (!Array.isArray(inputShape) || !inputShape.every((d) => Number.isInteger(d) && d > 0)) {
    throw new TypeError(`summary(): argument 'inputShape' must be an array of positive integers, got ${describe(inputShape)}`);
  }
  const shape = inputShape.length === 3 ? [1, ...inputShape] : inputShape;
  const layers: LayerSummary[] = [];
  const restore: (() => void)[] = [];
  const wasTraining = [...model.modules()].map((m) => [m, m.training] as const);
  for (const [name, m] of model.namedModules()) {
    if ([...m.children()].length > 0) continue;
    const original = m.forward;
    const own = Object.hasOwn(m, 'forward');
    m.forward = (...args: unknown[]) => {
      const out = original.apply(m, args) as Tensor;
      const ownParams = [...m.parameters()].reduce((a, p) => a + p.numel(), 0);
      layers.push({ name, type: m.typeName(), outputShape: out.shape, params: ownParams, macs: macsOf(m, out.shape) });
      return out;
    };
    restore.push(() => {
      if (own) m.forward = original;
      else delete (m as { forward?: unknown }).forward;
    });
  }
  let outputShape: number[];
  try {
    model.eval();
    // tidy frees every layer's output, not just the input and the last.
    outputShape = tidy(() => inferenceMode(() => model(zeros(shape)).shape));
  } finally {
    for (const r of restore) r();
    for (const [m, t] of wasTraining) m.training = t;
  }
  const params = [...model.parameters()];
  const totalParams = params.reduce((a, p) => a + p.numel(), 0);
  const trainableParams = params.filter((p) => p.requiresGrad).reduce((a, p) => a + p.numel(), 0);
  const totalMacs = layers.reduce((a, l) => a + l.macs, 0);
  return {
    layers,
    totalParams,
    trainableParams,
    totalMacs,
    inputShape: shape,
    outputShape,
    toString() {
      const rows = layers.map((l) => [`${l.name} (${l.type})`, `[${l.outputShape.join(', ')}]`, count(l.params), count(l.macs)]);
      const head = ['Layer (type)', 'Output shape', 'Params', 'MACs'];
      const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
      const line = (r: string[]) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]) : c.padStart(widths[i]))).join('  ');
      const rule = '─'.repeat(widths.reduce((a, b) => a + b + 2, -2));
      return [
        line(head),
        rule,
        ...rows.map(line),
        rule,
        `Input shape: [${shape.join(', ')}]   Output shape: [${outputShape.join(', ')}]`,
        `Total params: ${count(totalParams)}   Trainable params: ${count(trainableParams)}`,
        `Multiply-accumulates: ${count(totalMacs)} (${(totalMacs / 1e9).toFixed(2)} G)`,
      ].join('\n');
    },
  };
}
