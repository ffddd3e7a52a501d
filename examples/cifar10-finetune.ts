// Fine-tune pretrained VGG16-BN (ImageNet, torchvision's IMAGENET1K_V1) on
// CIFAR-10: the ImageNet weights for the features, a new 10-class last layer,
// augmentation (RandomCrop with padding 4, horizontal flips), ImageNet
// normalization, SGD with momentum and weight decay, cosine learning rate.
// Images stay 32×32: VGG's adaptive 7×7 average pooling takes any size
// (RESIZE=224 gives the ImageNet resolution, ~50× the compute).
// Writes runs/cifar10-finetune/{metrics.jsonl, chart.html, checkpoint.pth}; Ctrl-C
// saves a checkpoint, and RESUME=1 continues from it.
//
// Run: npx tsx examples/cifar10-finetune.ts
//   (downloads the weights, 528 MB, into torch.hub's cache, and CIFAR-10, 163 MB, into ./cifar10, once)
// EPOCHS, TRAIN_LIMIT, TEST_LIMIT, BATCH, RESIZE, LIVE=1 change the run.
import { CIFAR10, DataLoader, Subset, VGG16_BN_Weights, cuda, manualSeed, nn, optim, train, transforms, vgg16_bn } from '../lib/index.js';

const EPOCHS = Number(process.env.EPOCHS ?? 5);
const BATCH = Number(process.env.BATCH ?? 128);
const RESIZE = process.env.RESIZE ? Number(process.env.RESIZE) : null;
const device = cuda.isAvailable() ? 'cuda' : 'cpu';
manualSeed(777);

// The preprocessing the ImageNet weights were trained with: their mean and std.
const { mean, std } = VGG16_BN_Weights.IMAGENET1K_V1.preset;
const resize = RESIZE ? [new transforms.Resize(RESIZE)] : [];
const trainTransform = new transforms.Compose([
  new transforms.RandomCrop(32, { padding: 4 }),
  new transforms.RandomHorizontalFlip(),
  ...resize,
  new transforms.ToTensor(),
  new transforms.Normalize(mean, std),
]);
const testTransform = new transforms.Compose([...resize, new transforms.ToTensor(), new transforms.Normalize(mean, std)]);
const trainSet = await CIFAR10.load({ root: './cifar10', train: true, download: true, transform: trainTransform });
const testSet = await CIFAR10.load({ root: './cifar10', train: false, download: true, transform: testTransform });
const limit = (ds: CIFAR10, n: string | undefined) =>
  n
    ? new Subset(
        ds,
        Array.from({ length: Number(n) }, (_, i) => i),
      )
    : ds;
const trainLoader = new DataLoader(limit(trainSet, process.env.TRAIN_LIMIT), { batchSize: BATCH, shuffle: true });
const testLoader = new DataLoader(limit(testSet, process.env.TEST_LIMIT), { batchSize: 500 });

// model.classifier[6] = nn.Linear(4096, 10), as in PyTorch.
const model = vgg16_bn({ weights: VGG16_BN_Weights.IMAGENET1K_V1 });
model.classifier[6].dispose();
model.classifier[6] = new nn.Linear(4096, 10);
model.to(device);

const optimizer = new optim.SGD(model.parameters(), { lr: 0.01, momentum: 0.9, weightDecay: 5e-4 });
const scheduler = new optim.CosineAnnealingLR(optimizer, { tMax: EPOCHS });
const result = await train.fit({
  model,
  optimizer,
  scheduler,
  trainLoader,
  testLoader,
  device,
  epochs: EPOCHS,
  classes: trainSet.classes,
  outDir: 'runs/cifar10-finetune',
  resume: process.env.RESUME === '1',
  live: process.env.LIVE === '1',
  title: 'vgg-torch: fine-tuning VGG16-BN on CIFAR-10',
});
if (!result.interrupted) console.log(`Test accuracy after ${result.epochs} epochs: ${result.evaluation!.accuracy.toFixed(1)} %`);
model.dispose();
optimizer.dispose();
