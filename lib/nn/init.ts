// torch.nn.init: the same formulas, the same RNG draws, so seeded models match PyTorch.
import { noGrad } from '../autograd.js';
import { type Tensor, handleOf } from '../tensor/tensor.js';
import { checkOptions } from '../utils/args.js';

export type Nonlinearity =
  | 'linear'
  | 'conv1d'
  | 'conv2d'
  | 'conv3d'
  | 'conv_transpose1d'
  | 'conv_transpose2d'
  | 'conv_transpose3d'
  | 'sigmoid'
  | 'tanh'
  | 'relu'
  | 'leaky_relu'
  | 'selu';
export type FanMode = 'fan_in' | 'fan_out';

/** The recommended gain for a nonlinearity (`torch.nn.init.calculate_gain`). */
export function calculateGain(nonlinearity: Nonlinearity, param?: number): number {
  switch (nonlinearity) {
    case 'linear':
    case 'conv1d':
    case 'conv2d':
    case 'conv3d':
    case 'conv_transpose1d':
    case 'conv_transpose2d':
    case 'conv_transpose3d':
    case 'sigmoid':
      return 1;
    case 'tanh':
      return 5.0 / 3;
    case 'relu':
      return Math.sqrt(2.0);
    case 'leaky_relu': {
      if (param !== undefined && (typeof param !== 'number' || !Number.isFinite(param))) {
        throw new TypeError(`negative_slope ${param} not a valid number`);
      }
      const slope = param ?? 0.01;
      return Math.sqrt(2.0 / (1 + slope ** 2));
    }
    case 'selu':
      return 3.0 / 4;
    default:
      throw new TypeError(`Unsupported nonlinearity ${nonlinearity}`);
  }
}

/** `[fanIn, fanOut]` of a weight: dim 1 and dim 0 times the receptive field. */
export function calculateFanInAndFanOut(tensor: Tensor): [number, number] {
  handleOf(tensor, 'tensor');
  const shape = tensor.shape;
  if (shape.length < 2) throw new RangeError('Fan in and fan out can not be computed for tensor with fewer than 2 dimensions');
  const receptive = shape.slice(2).reduce((a, b) => a * b, 1);
  return [shape[1] * receptive, shape[0] * receptive];
}

function correctFan(tensor: Tensor, mode: FanMode): number {
  if (mode !== 'fan_in' && mode !== 'fan_out') throw new TypeError(`Mode ${mode} not supported, please use one of fan_in, fan_out`);
  const [fanIn, fanOut] = calculateFanInAndFanOut(tensor);
  return mode === 'fan_in' ? fanIn : fanOut;
}

export interface KaimingOptions {
  /** Negative slope of the rectifier after this layer (leaky_relu only). */
  a?: number;
  mode?: FanMode;
  nonlinearity?: Nonlinearity;
}

/** U(-bound, bound) with bound = gain × √(3 / fan) (He et al. 2015). */
export function kaimingUniform_(tensor: Tensor, opts: KaimingOptions = {}): Tensor {
  handleOf(tensor, 'tensor');
  checkOptions('kaimingUniform_()', opts, ['a', 'mode', 'nonlinearity']);
  if (tensor.numel() === 0) return tensor;
  const fan = correctFan(tensor, opts.mode ?? 'fan_in');
  const gain = calculateGain(opts.nonlinearity ?? 'leaky_relu', opts.a ?? 0);
  const std = gain / Math.sqrt(fan);
  const bound = Math.sqrt(3.0) * std;
  return noGrad(() => tensor.uniform_(-bound, bound));
}

/** N(0, std²) with std = gain / √fan (He et al. 2015). */
export function kaimingNormal_(tensor: Tensor, opts: KaimingOptions = {}): Tensor {
  handleOf(tensor, 'tensor');
  checkOptions('kaimingNormal_()', opts, ['a', 'mode', 'nonlinearity']);
  if (tensor.numel() === 0) return tensor;
  const fan = correctFan(tensor, opts.mode ?? 'fan_in');
  const gain = calculateGain(opts.nonlinearity ?? 'leaky_relu', opts.a ?? 0);
  const std = gain / Math.sqrt(fan);
  return noGrad(() => tensor.normal_(0, std));
}

/** U(-a, a) with a = gain × √(6 / (fanIn + fanOut)) (Glorot & Bengio 2010). */
export function xavierUniform_(tensor: Tensor, gain = 1.0): Tensor {
  const [fanIn, fanOut] = calculateFanInAndFanOut(tensor);
  const std = gain * Math.sqrt(2.0 / (fanIn + fanOut));
  const a = Math.sqrt(3.0) * std;
  return noGrad(() => tensor.uniform_(-a, a));
}

/** N(0, std²) with std = gain × √(2 / (fanIn + fanOut)). */
export function xavierNormal_(tensor: Tensor, gain = 1.0): Tensor {
  const [fanIn, fanOut] = calculateFanInAndFanOut(tensor);
  const std = gain * Math.sqrt(2.0 / (fanIn + fanOut));
  return noGrad(() => tensor.normal_(0, std));
}

export const normal_ = (tensor: Tensor, mean = 0, std = 1): Tensor => noGrad(() => tensor.normal_(mean, std));
export const uniform_ = (tensor: Tensor, a = 0, b = 1): Tensor => noGrad(() => tensor.uniform_(a, b));
export const constant_ = (tensor: Tensor, value: number): Tensor => noGrad(() => tensor.fill_(value));
export const zeros_ = (tensor: Tensor): Tensor => noGrad(() => tensor.zero_());
export const ones_ = (tensor: Tensor): Tensor => noGrad(() => tensor.fill_(1));
