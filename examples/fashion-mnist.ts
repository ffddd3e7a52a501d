// The CIFAR-10 tutorial's recipe on Fashion-MNIST, fully offline (Debian's
// dataset-fashion-mnist). A short budget so it ends in a few minutes on 2 CPU
// cores: the tutorial VGG with batch norm (the plain one barely moves in a few
// hundred steps), a subset of the training set, SGD with momentum, StepLR.
// Writes runs/fashion-mnist/{metrics.jsonl, chart.html, checkpoint.pth}.
//
// Mixed precision by default: AMP=auto trains in bf16 autocast on a CPU that computes bf16 natively
// (AVX512_BF16 or AMX) and in fp32 elsewhere; fit() prints which and why.
//
// Run: npm run demo      (environment: TRAIN_IMAGES, TEST_IMAGES, EPOCHS, BATCH, AMP=auto|bf16|off, LIVE=1 for the live chart)
import { DataLoader, FashionMNIST, Subset, getNumThreads, manualSeed, memory, optim, train, transforms, vggTutorial } from '../lib/index.js';

const TRAIN_IMAGES = Number(process.env.TRAIN_IMAGES ?? 3072);
const TEST_IMAGES = Number(process.env.TEST_IMAGES ?? 1000);
const EPOCHS = Number(process.env.EPOCHS ?? 2);
const BATCH = Number(process.env.BATCH ?? 64);
const AMP = process.env.AMP ?? 'auto';
if (!['auto', 'bf16', 'off'].includes(AMP)) throw new Error(`AMP must be auto, bf16 or off, got ${JSON.stringify(AMP)}`);

manualSeed(777);
const transform = new transforms.Compose([new transforms.ToTensor(), new transforms.Normalize([0.5], [0.5])]);
const trainSet = new FashionMNIST({ train: true, transform });
const testSet = new FashionMNIST({ train: false, transform });
const first = (n: number) => Array.from({ length: n }, (_, i) => i);
const trainLoader = new DataLoader(new Subset(trainSet, first(TRAIN_IMAGES)), { batchSize: BATCH, shuffle: true, seed: 777 });
const testLoader = new DataLoader(new Subset(testSet, first(TEST_IMAGES)), { batchSize: 250 });

// 28×28 grey images: one input channel, the classifier sized for 28×28 (512 × 3 × 3).
const model = vggTutorial({ batchNorm: true, inChannels: 1, inputSize: [28, 28] });
const optimizer = new optim.SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
const scheduler = new optim.StepLR(optimizer, { stepSize: 1, gamma: 0.5 });
console.log(`Fashion-MNIST: ${TRAIN_IMAGES} training images, ${EPOCHS} epochs, batch ${BATCH}, ${getNumThreads()} threads`);

const started = Date.now();
const result = await train.fit({
  model,
  optimizer,
  scheduler,
  trainLoader,
  testLoader,
  epochs: EPOCHS,
  amp: AMP as 'auto' | 'bf16' | 'off',
  logEvery: 16,
  classes: trainSet.classes,
  outDir: 'runs/fashion-mnist',
  live: process.env.LIVE === '1',
  title: 'vgg-torch: tutorial VGG (BN) on Fashion-MNIST',
});
console.log(`Test accuracy ${result.evaluation!.accuracy.toFixed(1)} % after ${result.epochs} epochs, ${((Date.now() - started) / 1000).toFixed(0)} s`);
console.log('Wrote runs/fashion-mnist/chart.html, metrics.jsonl and checkpoint.pth');
model.dispose();
optimizer.dispose();
console.log(`live tensors: ${memory().tensors}`);
