// Bad input never aborts the process: every mistake is a JS Error with a useful message.
import { describe, expect, it } from 'vitest';
import { F, Generator, type Tensor, cat, cuda, fromBuffer, manualSeed, ones, randint, randn, setNumThreads, setRngState, tensor, zeros } from '../lib/index.js';

type Case = [name: string, fn: () => unknown, message: RegExp, type?: ErrorConstructor];

const x = randn(2, 3);
const img = randn(1, 3, 8, 8);
const disposed = randn(2, 3);
disposed.dispose();

const CASES: Case[] = [
  ['broadcast mismatch', () => randn(2, 3).add(randn(3, 2)), /size of tensor a \(3\) must match the size of tensor b \(2\)/],
  ['matmul shapes', () => randn(2, 3).matmul(randn(2, 3)), /cannot be multiplied/],
  ['mm dtype mismatch', () => ones([2, 2], { dtype: 'int64' }).mm(randn(2, 2)), /expected .*(Long|Float)/i],
  ['conv2d channels', () => F.conv2d(img, randn(4, 2, 3, 3)), /expected input\[1, 3, 8, 8\] to have 2 channels/],
  ['conv2d weight rank', () => F.conv2d(img, randn(4, 3, 3)), /weight|dimension|Expected/i],
  ['conv2d kernel too large', () => F.conv2d(img, randn(1, 3, 9, 9)), /Kernel size can't be greater than actual input size/],
  ['view invalid', () => x.view(5), /shape '\[5\]' is invalid for input of size 6/],
  ['view non-contiguous', () => randn(3, 4).t().view(12), /view size is not compatible/],
  ['reshape two -1', () => x.reshape(-1, -1), /only one dimension can be inferred/],
  ['expand incompatible', () => randn(3, 2).expand(3, 4), /expanded size of the tensor \(4\) must match/],
  ['select out of range', () => x.select(0, 5), /index 5 out of range/],
  ['index out of bounds', () => x.index(7), /index 7 is out of bounds for dimension 0 with size 2/, RangeError],
  ['too many indices', () => x.index(0, 0, 0), /too many indices for tensor of dimension 2/, RangeError],
  ['two ellipses', () => x.index('...', '...'), /single ellipsis/, TypeError],
  ['slice step 0', () => x.index('::0'), /step must be greater than zero/, RangeError],
  ['bad slice text', () => x.index('a:b'), /invalid slice/, TypeError],
  ['narrow past end', () => x.narrow(1, 2, 5), /start \(2\) \+ length \(5\) exceeds dimension size \(3\)/],
  ['transpose dim', () => x.transpose(0, 4), /Dimension out of range/],
  ['sum dim', () => x.sum(3), /Dimension out of range/],
  ['cat shapes', () => cat([randn(2, 3), randn(2, 4)]), /Sizes of tensors must match except in dimension 0/],
  ['cat empty', () => cat([]), /expected a non-empty list of Tensors/],
  ['cat non-tensor', () => cat([x, 3 as unknown as Tensor]), /argument 'tensors\[1\]' must be a Tensor/, TypeError],
  ['ragged data', () => tensor([[1, 2], [3]]), /expected sequence of length 2 at dim 1 \(got 1\)/, RangeError],
  ['non-numeric data', () => tensor([1, 'a' as unknown as number]), /expected numbers or booleans, got 'a' \(string\) at \[1\]/, TypeError],
  ['undefined data', () => tensor(undefined as unknown as number), /expected numbers or booleans/, TypeError],
  ['unknown dtype', () => zeros([2], { dtype: 'float8' as never }), /unknown dtype 'float8'/, TypeError],
  ['item of many', () => x.item(), /a Tensor with 6 elements cannot be converted to a scalar/, RangeError],
  ['disposed self', () => disposed.add(1), /add\(\): argument 'self' is a Tensor that has been disposed/, TypeError],
  ['disposed other', () => x.add(disposed), /argument 'other' is a Tensor that has been disposed/, TypeError],
  ['disposed read', () => disposed.toTypedArray(), /has been disposed/, TypeError],
  ['number for tensor', () => F.linear(x, 5 as unknown as Tensor), /argument 'weight' must be a Tensor, got 5/, TypeError],
  ['string scalar', () => x.add('1' as unknown as number), /argument 'other' must be a Tensor or a number, got '1' \(string\)/, TypeError],
  ['float for int arg', () => x.flatten(0.5), /argument 'start_dim' must be an integer/, TypeError],
  ['target out of range', () => F.crossEntropy(randn(2, 5), tensor([1, 7])), /Target 7 is out of bounds/],
  [
    'float class target',
    () => F.crossEntropy(randn(2, 5), randn(2)),
    /expected scalar type Long|expected target dtype to be Long|Expected floating point type for target with class probabilities|shape|size/i,
  ], // libtorch's words differ by version
  ['nll batch mismatch', () => F.nllLoss(randn(3, 5), tensor([1, 2])), /Expected input batch_size \(3\) to match target batch_size \(2\)/],
  ['bad reduction', () => F.mseLoss(x, x, { reduction: 'avg' as never }), /reduction must be 'none', 'mean' or 'sum'/, TypeError],
  ['pool kernel too large', () => F.maxPool2d(randn(1, 1, 2, 2), 3), /Output size is too small|pad should be/],
  ['pool padding too large', () => F.maxPool2d(img, 2, { padding: 2 }), /pad should be at most half of (effective )?kernel size/],
  ['batch norm one value', () => F.batchNorm(randn(1, 3, 1, 1), zeros(3), ones(3), { training: true }), /Expected more than 1 value per channel when training/],
  ['batch norm stats size', () => F.batchNorm(img, zeros(4), ones(4)), /running_mean should contain 3 elements not 4/],
  ['dropout p', () => F.dropout(x, 1.5), /dropout probability has to be between 0 and 1, but got 1.5/, RangeError],
  ['interpolate no size', () => F.interpolate(img, {}), /either size or scaleFactor should be defined/, TypeError],
  ['interpolate 3-D', () => F.interpolate(randn(1, 2, 3), { size: 4 }), /expected a 4-D/, RangeError],
  ['pad odd', () => F.pad(img, [1, 2, 3]), /Padding length must be divisible by 2/, RangeError],
  ['to CUDA without CUDA', () => x.to('cuda'), /CUDA|cuda/],
  ['bad device string', () => x.to('gpu:0' as never), /unknown dtype 'gpu:0'/, TypeError],
  ['cuda.synchronize', () => cuda.synchronize(), /CUDA is not available/],
  ['cuda.memoryAllocated', () => cuda.memoryAllocated(), /CUDA is not available/],
  ['cuda.getRngState', () => cuda.getRngState(), /CUDA is not available/],
  ['cuda.setRngState', () => cuda.setRngState(zeros(4)), /CUDA RNG state must be a uint8 CPU tensor/],
  ['manualSeed float', () => manualSeed(1.5), /seed must be an integer/, TypeError],
  ['setNumThreads 0', () => setNumThreads(0), /threads must be at least 1/, RangeError],
  ['Generator seed float', () => new Generator().manualSeed(1.5), /Generator.manualSeed\(\): seed must be an integer, got 1.5/, TypeError],
  [
    'Generator state not a tensor',
    () => new Generator().setState(new Uint8Array(5056) as never),
    /argument 'state' must be a Tensor, got a Uint8Array/,
    TypeError,
  ],
  ['Generator state wrong dtype', () => new Generator().setState(zeros(5056)), /RNG state must be a uint8 CPU tensor, got Float/],
  [
    'Generator state wrong size',
    () => new Generator().setState(zeros([16], { dtype: 'uint8' })),
    /CPUGeneratorImplState of size 5056 but found the input RNG state size to be 16/,
  ],
  ['randint empty range', () => randint(10, 5, [3]), /random_ expects 'from' to be less than 'to'/],
  ['fromBuffer ragged bytes', () => fromBuffer(Buffer.alloc(7), { dtype: 'float32' }), /7 bytes is not a whole number of float32 elements/, RangeError],
  [
    'fromBuffer too small',
    () => fromBuffer(Buffer.alloc(8), { dtype: 'float32', shape: [3] }),
    /argument 'shape' \[3\] holds 3 elements, but the buffer \(as float32\) has 2; the sizes must match exactly/,
    RangeError,
  ],
  [
    'fromBuffer too large',
    () => fromBuffer(Buffer.alloc(16), { dtype: 'float32', shape: [3] }),
    /argument 'shape' \[3\] holds 3 elements, but the buffer \(as float32\) has 4/,
    RangeError,
  ],
  [
    'tensor shape drops a value',
    () => tensor(new Float32Array(4), { shape: [3] }),
    /tensor\(\): argument 'shape' \[3\] holds 3 elements, but the Float32Array has 4; the sizes must match exactly/,
    RangeError,
  ],
  ['tensor shape of nested data', () => tensor([1, 2, 3, 4], { shape: [5] }), /argument 'shape' \[5\] holds 5 elements, but the data has 4/, RangeError],
  ['randn unknown option', () => randn({ a: 1 } as never), /randn\(\): unknown option 'a'; allowed: 'dtype', 'device', 'requiresGrad'/, TypeError],
  ['zeros misspelt option', () => zeros([2], { dtyp: 'float64' } as never), /zeros\(\): unknown option 'dtyp' \(did you mean 'dtype'\?\)/, TypeError],
  [
    'tensor unknown option',
    () => tensor([1], { requires_grad: true } as never),
    /tensor\(\): unknown option 'requires_grad' \(did you mean 'requiresGrad'\?\)/,
    TypeError,
  ],
  ['backward non-scalar', () => randn([3], { requiresGrad: true }).mul(2).backward(), /grad can be implicitly created only for scalar outputs/],
  ['backward without grad', () => randn(3).sum().backward(), /does not require grad and does not have a grad_fn/],
  [
    'grad of wrong shape',
    () => {
      randn([3], { requiresGrad: true }).grad = zeros(4);
    },
    /assigned grad has shape \[4\] but the tensor has shape \[3\]/,
  ],
  ['in-place on leaf', () => randn([3], { requiresGrad: true }).add_(1), /a leaf Variable that requires grad is being used in an in-place operation/],
  ['rng state dtype', () => setRngState(randn(5)), /RNG state must be a uint8 CPU tensor/],
];

describe('bad input gives a clear JS Error', () => {
  it('has at least 30 cases', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(30);
  });
  for (const [name, fn, message, type] of CASES) {
    it(name, () => {
      let caught: unknown;
      try {
        fn();
      } catch (e) {
        caught = e;
      }
      expect(caught, 'expected an exception').toBeInstanceOf(type ?? Error);
      expect((caught as Error).message).toMatch(message);
      // libtorch's C++ backtrace never leaks into the message.
      expect((caught as Error).message).not.toMatch(/Exception raised from|frame #\d/);
    });
  }
  it('leaves the process working', () => {
    expect(randn(2, 2).add(1).shape).toEqual([2, 2]);
  });
});
