// The PyTorch tutorial "VGG for CIFAR-10", line for line in TypeScript: seed 777,
// Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)), batch 512, the 32×32 VGG
// (cfg [32, 32, 'M', 64, 64, 128, 128, 128, 'M', 256, 256, 256, 512, 512, 512, 'M'],
// classifier Linear(512 * 4 * 4, 4096) …), CrossEntropyLoss, SGD(lr 0.005,
// momentum 0.9), StepLR(step_size 5, gamma 0.9) stepped at the start of each
// epoch (as the tutorial does; PyTorch's call-order warning is printed once),
// 50 epochs, the loss every 30 mini-batches, test accuracy after each epoch.
// Runs on CUDA when available, on the CPU otherwise.
//
// Run: npx tsx examples/cifar10-vgg.ts   (downloads CIFAR-10, 163 MB, into ./cifar10 once)
// EPOCHS, TRAIN_LIMIT and TEST_LIMIT (images) shorten a run.
import { mkdirSync } from 'node:fs';
import {
  CIFAR10, DataLoader, Subset, cuda, manualSeed, nn, noGrad, optim, save, tidy, transforms, vggTutorial,
} from '../lib/index.js';

const device = cuda.isAvailable() ? 'cuda' : 'cpu';
manualSeed(777); // also seeds every CUDA device, as torch.manual_seed + torch.cuda.manual_seed_all

const transform = new transforms.Compose([
  new transforms.ToTensor(),
  new transforms.Normalize([0.5, 0.5, 0.5], [0.5, 0.5, 0.5]),
]);
const trainset = new CIFAR10({ root: './cifar10', train: true, download: true, transform });
const limit = Number(process.env.TRAIN_LIMIT ?? trainset.length);
const trainData = limit < trainset.length ? new Subset(trainset, Array.from({ length: limit }, (_, i) => i)) : trainset;
const trainloader = new DataLoader(trainData, { batchSize: 512, shuffle: true });
const testset = new CIFAR10({ root: './cifar10', train: false, download: true, transform });
const testLimit = Number(process.env.TEST_LIMIT ?? testset.length);
const testData = testLimit < testset.length ? new Subset(testset, Array.from({ length: testLimit }, (_, i) => i)) : testset;
const testloader = new DataLoader(testData, { batchSize: 4, shuffle: false });
const classes = ['plane', 'car', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];

const vgg16 = vggTutorial().to(device);
const criterion = new nn.CrossEntropyLoss();
const optimizer = new optim.SGD(vgg16.parameters(), { lr: 0.005, momentum: 0.9 });
const lrSche = new optim.StepLR(optimizer, { stepSize: 5, gamma: 0.9 });
const epochs = Number(process.env.EPOCHS ?? 50);

/** Accuracy on the test set, in percent; saves the model as the tutorial's acc_check does. */
function accCheck(epoch: number): number {
  vgg16.eval();
  let correct = 0;
  let total = 0;
  noGrad(() => {
    for (const [images, labels] of testloader) {
      tidy(() => {
        const predicted = vgg16.forward(images.to(device)).argmax(1);
        total += labels.shape[0];
        correct += predicted.eq(labels.to(device)).sum().item() as number;
      });
      images.dispose();
      labels.dispose();
    }
  });
  const acc = (100 * correct) / total;
  console.log(`Accuracy of the network on the ${total} test images: ${Math.trunc(acc)} %`);
  mkdirSync('./model', { recursive: true });
  const stateDict = vgg16.stateDict();
  save(stateDict, `./model/model_epoch_${epoch}_acc_${Math.trunc(acc)}.pth`);
  for (const t of stateDict.values()) t.dispose();
  vgg16.train();
  return acc;
}

for (let epoch = 0; epoch < epochs; epoch++) {
  let runningLoss = 0;
  lrSche.step();
  let i = 0;
  for (const [inputs, labels] of trainloader) {
    runningLoss += tidy(() => {
      optimizer.zeroGrad();
      const outputs = vgg16.forward(inputs.to(device));
      const loss = criterion.forward(outputs, labels.to(device));
      loss.backward();
      optimizer.step();
      return loss.item() as number;
    });
    inputs.dispose();
    labels.dispose();
    if (i % 30 === 29) {
      console.log(`[${epoch + 1}, ${String(i + 1).padStart(5)}] loss: ${(runningLoss / 30).toFixed(3)}`);
      runningLoss = 0;
    }
    i++;
  }
  accCheck(epoch);
}
console.log('Finished Training');

vgg16.eval();
const fmt = (idx: ArrayLike<bigint | number>) => Array.from({ length: 4 }, (_, j) => classes[Number(idx[j])].padStart(5)).join(' ');
for (const [images, labels] of testloader) {
  console.log('GroundTruth: ', fmt(labels.toTypedArray() as BigInt64Array));
  const predicted = tidy(() => noGrad(() => vgg16.forward(images.to(device)).argmax(1).cpu()));
  console.log('Predicted: ', fmt(predicted.toTypedArray() as BigInt64Array));
  for (const t of [images, labels, predicted]) t.dispose();
  break;
}
accCheck(epochs);
