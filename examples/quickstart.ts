// The native core in one page: the same numbers as this PyTorch program.
//
//   torch.manual_seed(777)
//   x = torch.randn(2, 3, 32, 32)
//   w = torch.randn(8, 3, 3, 3, requires_grad=True)
//   y = torch.nn.functional.conv2d(x, w, padding=1).relu()
//   loss = torch.nn.functional.cross_entropy(y.flatten(1)[:, :10], torch.tensor([1, 2]))
//   loss.backward(); print(w.grad.sum())
//
// Then a few steps of plain SGD on a small conv net, to show training memory stays flat.
// Run: npm run quickstart
import { F, getNumThreads, manualSeed, memory, noGrad, randint, randn, tensor, tidy } from '../lib/index.js';

manualSeed(777);
const x = randn(2, 3, 32, 32);
const w = randn([8, 3, 3, 3], { requiresGrad: true });
const y = F.conv2d(x, w, null, 1, 1).relu();
const loss = F.crossEntropy(y.flatten(1).index(':', ':10'), tensor([1, 2]));
loss.backward();
console.log('loss        ', loss.toString());
console.log('w.grad.sum()', w.grad!.sum().toString());

// A small conv net trained on random data for 50 steps.
manualSeed(0);
const conv = randn([16, 3, 3, 3]).mul(0.1).requiresGrad_();
const bias = randn([16]).mul(0.01).requiresGrad_();
const fc = randn([10, 16 * 16 * 16])
  .mul(0.01)
  .requiresGrad_();
const params = [conv, bias, fc];
const data = randn(64, 3, 32, 32);
const labels = randint(0, 10, [64]);
const start = memory();
for (let step = 1; step <= 50; step++) {
  const value = tidy(() => {
    const h = F.maxPool2d(F.relu(F.conv2d(data, conv, bias, 1, 1)), 2);
    const l = F.crossEntropy(F.linear(h.flatten(1), fc), labels);
    l.backward();
    noGrad(() => {
      for (const p of params) {
        p.sub_(p.grad!, 0.05);
        p.grad!.zero_();
      }
    });
    return l.item() as number;
  });
  if (step % 10 === 0) console.log(`step ${step}: loss ${value.toFixed(4)}`);
}
const end = memory();
console.log(`threads ${getNumThreads()}; live tensors before/after training: ${start.tensors}/${end.tensors}`);
