// Post-training static int8 quantization (torch.ao.quantization, eager mode):
// fuse conv+BN(+ReLU) and linear(+ReLU), observe activation ranges on
// calibration batches, then run libtorch's quantized kernels
// (quantized::conv2d_relu, quantized::linear, …) on pre-packed int8 weights.
//
// Observers follow PyTorch's defaults for x86: weights per output channel,
// symmetric qint8 (PerChannelMinMaxObserver, qscheme per_channel_symmetric);
// activations quint8 affine from their running min/max (MinMaxObserver), with
// reduce_range on fbgemm (whose kernels need it) and the full range on onednn.
import { noGrad } from '../../autograd.js';
import { scriptObjects } from '../../jit/objects.js';
import { VGG } from '../../models/vgg.js';
import { type Handle, type ObjectHandle, native, op } from '../../native.js';
import { Module } from '../../nn/modules/module.js';
import { BatchNorm2d } from '../../nn/modules/batchnorm.js';
import { Sequential } from '../../nn/modules/container.js';
import { Conv2d } from '../../nn/modules/conv.js';
import { Dropout } from '../../nn/modules/dropout.js';
import { Flatten } from '../../nn/modules/flatten.js';
import { Linear, Identity } from '../../nn/modules/linear.js';
import { ReLU } from '../../nn/modules/activation.js';
import { AdaptiveAvgPool2d, AvgPool2d, MaxPool2d } from '../../nn/modules/pooling.js';
import { keep, tidy } from '../../tensor/scope.js';
import { Tensor, wrap } from '../../tensor/tensor.js';
import { checkOptions, describe } from '../../utils/args.js';
import { backends } from '../../runtime.js';

// c10::ScalarType codes.
const QINT8 = 12;
const QUINT8 = 13;
/** float32's machine epsilon: PyTorch's observers never go below it. */
const EPS = 1.1920928955078125e-7;

/** Options of {@link quantize}. */
export interface QuantizeOptions {
  /** The quantized engine (`torch.backends.quantized.engine`): libtorch's default here (`onednn` on Debian's build). */
  engine?: string;
}

/** Quantization parameters of an affine quint8 tensor. */
interface QParams {
  scale: number;
  zeroPoint: number;
}

/** Rounds to the nearest integer, ties to even (torch.round). */
function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** A running min/max (MinMaxObserver). */
class MinMax {
  min = Infinity;
  max = -Infinity;
  observe(x: Tensor): void {
    tidy(() => {
      this.min = Math.min(this.min, x.min().item() as number);
      this.max = Math.max(this.max, x.max().item() as number);
    });
  }
  /** MinMaxObserver.calculate_qparams for quint8, per_tensor_affine. */
  qparams(reduceRange: boolean): QParams {
    if (!Number.isFinite(this.min)) throw new Error('quantize: an observer saw no data (is the calibration set empty?)');
    const [qmin, qmax] = reduceRange ? [0, 127] : [0, 255];
    const lo = Math.fround(Math.min(this.min, 0));
    const hi = Math.fround(Math.max(this.max, 0));
    // float32 arithmetic step by step, as PyTorch's observer computes on float32 tensors
    // (rounding hi − lo first can move the scale by an ulp), and torch.round's ties-to-even.
    const scale = Math.max(Math.fround(Math.fround(hi - lo) / (qmax - qmin)), EPS);
    const zeroPoint = Math.min(qmax, Math.max(qmin, qmin - roundHalfEven(Math.fround(lo / scale))));
    return { scale, zeroPoint };
  }
}

/** Quantizes a float tensor to quint8 with fixed parameters (`torch.ao.nn.quantized.Quantize`). */
export class Quantize extends Module {
  constructor(
    readonly scale: number,
    readonly zeroPoint: number,
  ) {
    super();
  }
  forward(x: Tensor): Tensor {
    return wrap(native.call(op('aten::quantize_per_tensor'), x._h, this.scale, this.zeroPoint, QUINT8));
  }
  extraRepr(): string {
    return `scale=${this.scale}, zero_point=${this.zeroPoint}, dtype=torch.quint8`;
  }
}

/** Back to float (`torch.ao.nn.quantized.DeQuantize`). */
export class DeQuantize extends Module {
  forward(x: Tensor): Tensor {
    return wrap(native.call(op('aten::dequantize', 'self'), x._h));
  }
}

/** Per-output-channel symmetric qint8 weights (PerChannelMinMaxObserver, per_channel_symmetric). */
function quantizeWeight(w: Tensor): Tensor {
  return tidy(() => {
    const flat = w.flatten(1);
    const [lo] = flat.min(1);
    const [hi] = flat.max(1);
    // max(-min(w, 0), max(w, 0)) / ((qmax - qmin) / 2), at least eps; zero point 0.
    const amax = lo.clamp(null, 0).neg().max(hi.clamp(0, null));
    const scales = amax
      .div(255 / 2)
      .clamp(EPS, null)
      .to('float64');
    const zeroPoints = scales.mul(0).to('int64');
    return wrap(native.call(op('aten::quantize_per_channel'), w._h, scales._h, zeroPoints._h, 0, QINT8));
  });
}

/**
 * A layer on pre-packed int8 weights (a libtorch custom-class object), ReLU
 * optionally fused: the packed weights are freed by `dispose()`.
 */
abstract class PackedLayer extends Module {
  private packed: ObjectHandle | null;
  constructor(
    packed: ObjectHandle,
    readonly relu: boolean,
    readonly output: QParams,
    private readonly repr: string,
  ) {
    super();
    this.packed = packed;
  }
  /** Runs `name` (or its `_relu` twin) on the quantized input, the packed weights and the output's qparams. */
  protected run(name: string, overload: string, x: Tensor): Tensor {
    if (!this.packed) throw new Error(`${this.typeName()}: disposed`);
    return wrap(native.call(op(this.relu ? `${name}_relu` : name, overload), x._h, this.packed, this.output.scale, this.output.zeroPoint));
  }
  /** Unpacks the packed weights: `[int8 weight (qint8, per channel), float bias or null]`, owned by the caller. */
  protected unpack(name: string): [Tensor, Tensor | null] {
    if (!this.packed) throw new Error(`${this.typeName()}: disposed`);
    const [w, b] = native.call(op(name), this.packed) as [Handle, Handle | undefined];
    return [wrap(w), b === undefined ? null : wrap(b)];
  }
  /** The quantized weight, qint8 per output channel, a new tensor owned by the caller (PyTorch's `weight()`). */
  abstract weight(): Tensor;
  /** The float bias (BatchNorm folded in), a new tensor owned by the caller, or null (PyTorch's `bias()`). */
  abstract bias(): Tensor | null;
  extraRepr(): string {
    return `${this.repr}, scale=${this.output.scale}, zero_point=${this.output.zeroPoint}`;
  }
  /** For jit.trace: the packed weights, under PyTorch's attribute name. @internal */
  [scriptObjects](): [string, ObjectHandle][] {
    if (!this.packed) throw new Error(`${this.typeName()}: disposed`);
    return [['_packed_params', this.packed]];
  }
  protected releaseOwn(): void {
    if (this.packed) native.disposeObject(this.packed);
    this.packed = null;
  }
}

/** A quantized 2-d convolution, ReLU optionally fused (`torch.ao.nn.quantized.Conv2d`, `intrinsic.quantized.ConvReLU2d`). */
export class QuantizedConv2d extends PackedLayer {
  constructor(
    conv: { weight: Tensor; bias: Tensor | null; stride: number[]; padding: number[]; dilation: number[]; groups: number },
    relu: boolean,
    output: QParams,
    repr: string,
  ) {
    const packed = tidy(
      () =>
        native.call(
          op('quantized::conv2d_prepack'),
          quantizeWeight(conv.weight)._h,
          conv.bias?._h ?? null,
          conv.stride,
          conv.padding,
          conv.dilation,
          conv.groups,
        ) as ObjectHandle,
    );
    super(packed, relu, output, repr);
  }
  forward(x: Tensor): Tensor {
    return this.run('quantized::conv2d', 'new', x);
  }
  weight(): Tensor {
    const [w, b] = this.unpack('quantized::conv2d_unpack');
    b?.dispose();
    return w;
  }
  bias(): Tensor | null {
    const [w, b] = this.unpack('quantized::conv2d_unpack');
    w.dispose();
    return b;
  }
  typeName(): string {
    return this.relu ? 'QuantizedConvReLU2d' : 'QuantizedConv2d';
  }
}

/** A quantized linear layer, ReLU optionally fused (`torch.ao.nn.quantized.Linear`, `intrinsic.quantized.LinearReLU`). */
export class QuantizedLinear extends PackedLayer {
  constructor(linear: Linear, relu: boolean, output: QParams) {
    const packed = tidy(() => native.call(op('quantized::linear_prepack'), quantizeWeight(linear.weight)._h, linear.bias?._h ?? null) as ObjectHandle);
    super(packed, relu, output, `in_features=${linear.inFeatures}, out_features=${linear.outFeatures}`);
  }
  forward(x: Tensor): Tensor {
    return this.run('quantized::linear', '', x);
  }
  weight(): Tensor {
    const [w, b] = this.unpack('quantized::linear_unpack');
    b?.dispose();
    return w;
  }
  bias(): Tensor | null {
    const [w, b] = this.unpack('quantized::linear_unpack');
    w.dispose();
    return b;
  }
  typeName(): string {
    return this.relu ? 'QuantizedLinearReLU' : 'QuantizedLinear';
  }
}

/** The layers a model runs, in order: a Sequential's, or a VGG's (features, avgpool, flatten, classifier). */
function layersOf(model: Module<any, any>): Module<any, any>[] {
  if (model instanceof Sequential) return [...model.children()].flatMap(layersOf);
  if (model instanceof VGG) return [...layersOf(model.features), ...(model.avgpool ? [model.avgpool] : []), new Flatten(1), ...layersOf(model.classifier)];
  const supported = [Conv2d, BatchNorm2d, ReLU, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, Flatten, Linear, Dropout, Identity];
  if (supported.some((c) => model instanceof c)) return [model];
  throw new TypeError(
    `quantize: cannot quantize a ${model.typeName()}: supported are VGG, Sequential and the layers ${supported.map((c) => c.name).join(', ')}`,
  );
}

/** A conv or linear step with what follows it fused in: BatchNorm (folded into the weights) and ReLU. */
interface Step {
  kind: 'conv' | 'linear' | 'other';
  layer: Module<any, any>;
  /** The conv's weight and bias with BatchNorm folded in (owned here). */
  weight?: Tensor;
  bias?: Tensor | null;
  relu: boolean;
  observer: MinMax;
}

/** Folds eval-mode BatchNorm into the convolution before it: w·γ/√(σ²+ε), (b−μ)·γ/√(σ²+ε)+β. */
function foldBatchNorm(conv: Conv2d, bn: BatchNorm2d | null): { weight: Tensor; bias: Tensor | null } {
  return noGrad(() =>
    tidy(() => {
      if (!bn) return { weight: keep(conv.weight.detach().clone()), bias: conv.bias ? keep(conv.bias.detach().clone()) : null };
      if (!bn.runningMean || !bn.runningVar) throw new Error('quantize: BatchNorm2d without running statistics cannot be folded');
      const invStd = wrap(native.call(op('aten::rsqrt'), bn.runningVar.add(bn.eps)._h));
      const gamma = bn.weight ? bn.weight.mul(invStd) : invStd;
      const weight = conv.weight.mul(gamma.reshape([-1, 1, 1, 1]));
      const b0 = conv.bias ?? bn.runningMean.mul(0);
      // In fuse_conv_bn_weights' order, ((b − μ)·rsqrt)·γ + β, for the same float32 roundings.
      let bias = b0.sub(bn.runningMean).mul(invStd);
      if (bn.weight) bias = bias.mul(bn.weight);
      if (bn.bias) bias = bias.add(bn.bias);
      return { weight: keep(weight), bias: keep(bias) };
    }),
  );
}

function plan(layers: Module<any, any>[]): Step[] {
  const steps: Step[] = [];
  for (let i = 0; i < layers.length; i++) {
    const m = layers[i];
    if (m instanceof Conv2d) {
      if (m.paddingMode !== 'zeros' || typeof m.padding === 'string')
        throw new TypeError(`quantize: Conv2d with padding '${m.padding}'/${m.paddingMode} is not supported`);
      const bn = layers[i + 1] instanceof BatchNorm2d ? (layers[++i] as BatchNorm2d) : null;
      const relu = layers[i + 1] instanceof ReLU && ++i > 0;
      const { weight, bias } = foldBatchNorm(m, bn);
      steps.push({ kind: 'conv', layer: m, weight, bias, relu, observer: new MinMax() });
    } else if (m instanceof Linear) {
      const relu = layers[i + 1] instanceof ReLU && ++i > 0;
      steps.push({ kind: 'linear', layer: m, relu, observer: new MinMax() });
    } else if (m instanceof BatchNorm2d) {
      throw new TypeError('quantize: a BatchNorm2d that does not follow a Conv2d cannot be fused');
    } else {
      steps.push({ kind: 'other', layer: m, relu: false, observer: new MinMax() });
    }
  }
  return steps;
}

/** The float forward of one step, as it will be quantized (BatchNorm folded, ReLU fused). */
function runFloat(s: Step, x: Tensor): Tensor {
  if (s.kind === 'conv') {
    const c = s.layer as Conv2d;
    const y = wrap(native.call(op('aten::conv2d'), x._h, s.weight!._h, s.bias?._h ?? null, c.stride, c.padding as number[], c.dilation, c.groups));
    return s.relu ? y.relu() : y;
  }
  if (s.kind === 'linear') {
    const y = s.layer.forward(x) as Tensor;
    return s.relu ? y.relu() : y;
  }
  return s.layer.forward(x) as Tensor;
}

/**
 * Post-training static int8 quantization: returns a new model that runs on
 * libtorch's quantized kernels (`model` is left as it was). Convolutions with
 * their BatchNorm folded in and their ReLU fused, and linear layers (+ReLU),
 * get int8 weights per output channel; activations are quint8 with ranges
 * observed on `calibration` (a few batches of real inputs, as the model sees
 * them: normalized). Dropout is dropped, pooling runs on int8. The input is
 * quantized at the start and the output dequantized at the end.
 *
 * Supported: VGG (any of this package's) and Sequential models of Conv2d,
 * BatchNorm2d, ReLU, pooling, Flatten, Linear and Dropout.
 *
 * The result compiles as float models do: `predict` and `forwardAsync` (a
 * frozen TorchScript graph, run on a libuv worker by forwardAsync) give
 * `forward`'s output bit for bit, and `jit.trace` of it saves (`jit.save`) a
 * file that Python's `torch.jit.load` runs; the packed weights are attributes
 * of the traced module, as in PyTorch's traced quantized models.
 */
export function quantize(model: Module<any, any>, calibration: Iterable<Tensor>, options: QuantizeOptions = {}): Sequential {
  checkOptions('quantize', options, ['engine']);
  if (!(model instanceof Module)) throw new TypeError(`quantize: expected an nn.Module, got ${describe(model)}`);
  if (options.engine !== undefined) backends.quantized.engine = options.engine;
  const engine = backends.quantized.engine;
  // fbgemm's int8 kernels can overflow on the full quint8 range (PyTorch's x86 qconfig reduces it); onednn's cannot.
  const reduceRange = engine === 'fbgemm' || engine === 'x86';
  const steps = plan(layersOf(model));
  const inputObserver = new MinMax();
  const training = model.training;
  model.eval();
  let batches = 0;
  try {
    noGrad(() => {
      for (const batch of calibration) {
        if (!(batch instanceof Tensor)) throw new TypeError(`quantize: calibration batches must be tensors, got ${describe(batch)}`);
        batches++;
        tidy(() => {
          inputObserver.observe(batch);
          let x = batch;
          for (const s of steps) {
            x = runFloat(s, x);
            if (s.kind !== 'other') s.observer.observe(x);
          }
        });
      }
    });
    if (batches === 0) throw new Error('quantize: the calibration set is empty');
    const input = inputObserver.qparams(reduceRange);
    const layers: Module<any, any>[] = [new Quantize(input.scale, input.zeroPoint)];
    for (const s of steps) {
      if (s.kind === 'conv') {
        const c = s.layer as Conv2d;
        layers.push(
          new QuantizedConv2d(
            { weight: s.weight!, bias: s.bias ?? null, stride: c.stride, padding: c.padding as number[], dilation: c.dilation, groups: c.groups },
            s.relu,
            s.observer.qparams(reduceRange),
            c.extraRepr(),
          ),
        );
      } else if (s.kind === 'linear') {
        layers.push(new QuantizedLinear(s.layer as Linear, s.relu, s.observer.qparams(reduceRange)));
      } else if (!(s.layer instanceof Dropout) && !(s.layer instanceof Identity)) {
        layers.push(s.layer);
      }
    }
    layers.push(new DeQuantize());
    return new Sequential(...layers).eval();
  } finally {
    for (const s of steps) {
      s.weight?.dispose();
      s.bias?.dispose();
    }
    model.train(training);
  }
}
