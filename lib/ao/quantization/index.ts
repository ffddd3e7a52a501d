// torch.ao.quantization: post-training static int8 quantization on libtorch's quantized kernels.
export { quantize, Quantize, DeQuantize, QuantizedConv2d, QuantizedLinear } from './quantize.js';
export type { QuantizeOptions } from './quantize.js';
