// The PyTorch tutorial "VGG for CIFAR-10", line for line in TypeScript: seed 777,
// Normalize((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)), batch 512, the 32×32 VGG
// (cfg [32, 32, 'M', 64, 64, 128, 128, 128, 'M', 256, 256, 256, 512, 512, 512, 'M'],
// classifier Linear(512 * 4 * 4, 4096) …), CrossEntropyLoss, SGD(lr 0.005,
// momentum 0.9), StepLR(step_size 5, gamma 0.9) stepped at the start of each
// epoch (as the tutorial does; PyTorch's call-order warning is printed once),
// 50 epochs, the loss every 30 mini-batches, test accuracy after each epoch.
// Runs on CUDA when available, on the CPU otherwise.
// Where the tutorial plots in visdom, this writes runs/cifar10/samples.png (the
// image grid), runs/cifar10/chart.html (loss and accuracy, refreshed as it
// trains) and, with LIVE=1, serves the same chart live on http://127.0.0.1.
// (`npx vgg-torch train` runs this recipe with checkpoints and --resume.)
//
// Run: npx tsx examples/cifar10-vgg.ts   (downloads CIFAR-10, 163 MB, into ./cifar10 once)
// EPOCHS, TRAIN_LIMIT and TEST_LIMIT (images) shorten a run.
import { mkdirSync } from 'node:fs';
import { CIFAR10, DataLoader, Subset, cuda, manualSeed, nn, noGrad, optim, save, saveImage, tidy, train, transforms, vggTutorial } from '../lib/index.js';

const device = cuda.isAvailable() ? 'cuda' : 'cpu';
manualSeed(777); // also seeds every CUDA device, as torch.manual_seed + torch.cuda.manual_seed_all

const transform = new transforms.Compose([new transforms.ToTensor(), new transforms.Normalize([0.5, 0.5, 0.5], [0.5, 0.5, 0.5])]);
const trainset = new CIFAR10({ root: './cifar10', train: true, download: true, transform });
const limit = Number(process.env.TRAIN_LIMIT ?? trainset.length);
const trainData =
  limit < trainset.length
    ? new Subset(
        trainset,
        Array.from({ length: limit }, (_, i) => i),
      )
    : trainset;
const trainloader = new DataLoader(trainData, { batchSize: 512, shuffle: true });
const testset = new CIFAR10({ root: './cifar10', train: false, download: true, transform });
const testLimit = Number(process.env.TEST_LIMIT ?? testset.length);
const testData =
  testLimit < testset.length
    ? new Subset(
        testset,
        Array.from({ length: testLimit }, (_, i) => i),
      )
    : testset;
const testloader = new DataLoader(testData, { batchSize: 4, shuffle: false });
const classes = ['plane', 'car', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];

// vis.images(images / 2 + 0.5): the first training batch as a grid.
mkdirSync('./runs/cifar10', { recursive: true });
for (const [images, labels] of trainloader) {
  await saveImage(
    tidy(() => images.narrow(0, 0, 64).div(2).add(0.5)),
    './runs/cifar10/samples.png',
    { nrow: 8 },
  );
  images.dispose();
  labels.dispose();
  break;
}

// The loss plot: metrics as JSON lines, a chart file, and optionally a live page.
const metrics = new train.MetricsLog('./runs/cifar10/metrics.jsonl');
if (process.env.LIVE === '1') console.log(`Live chart: ${(await train.startLiveServer({ log: metrics, title: 'VGG on CIFAR-10' })).url}`);
const plot = () => train.writeChartHtml('./runs/cifar10/chart.html', metrics.records, { title: 'VGG on CIFAR-10' });

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
        const predicted = vgg16(images.to(device)).argmax(1);
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

let step = 0;
for (let epoch = 0; epoch < epochs; epoch++) {
  let runningLoss = 0;
  let runningCorrect = 0;
  let runningSeen = 0;
  const total = { loss: 0, correct: 0, seen: 0, started: Date.now() };
  lrSche.step();
  let i = 0;
  for (const [inputs, labels] of trainloader) {
    runningLoss += tidy(() => {
      optimizer.zeroGrad();
      const target = labels.to(device);
      const outputs = vgg16(inputs.to(device));
      const loss = criterion(outputs, target);
      loss.backward();
      optimizer.step();
      const correct = outputs.argmax(1).eq(target).sum().item() as number;
      runningCorrect += correct;
      runningSeen += target.shape[0];
      total.correct += correct;
      total.seen += target.shape[0];
      const l = loss.item() as number;
      total.loss += l * target.shape[0];
      return l;
    });
    inputs.dispose();
    labels.dispose();
    step++;
    if (i % 30 === 29) {
      console.log(`[${epoch + 1}, ${String(i + 1).padStart(5)}] loss: ${(runningLoss / 30).toFixed(3)}`);
      metrics.append({
        kind: 'batch',
        epoch: epoch + 1,
        batch: i + 1,
        step,
        loss: runningLoss / 30,
        accuracy: (100 * runningCorrect) / runningSeen,
        lr: optimizer.paramGroups[0].lr as number,
        time: Date.now(),
      });
      plot();
      runningLoss = runningCorrect = runningSeen = 0;
    }
    i++;
  }
  const seconds = (Date.now() - total.started) / 1000;
  const acc = accCheck(epoch);
  metrics.append({
    kind: 'epoch',
    epoch: epoch + 1,
    step,
    trainLoss: total.loss / total.seen,
    trainAccuracy: (100 * total.correct) / total.seen,
    testAccuracy: acc,
    lr: optimizer.paramGroups[0].lr as number,
    seconds,
    imagesPerSecond: total.seen / seconds,
    time: Date.now(),
  });
  plot();
}
console.log('Finished Training');

vgg16.eval();
const fmt = (idx: ArrayLike<bigint | number>) => Array.from({ length: 4 }, (_, j) => classes[Number(idx[j])].padStart(5)).join(' ');
for (const [images, labels] of testloader) {
  console.log('GroundTruth: ', fmt(labels.toTypedArray() as BigInt64Array));
  const predicted = tidy(() => noGrad(() => vgg16(images.to(device)).argmax(1).cpu()));
  console.log('Predicted: ', fmt(predicted.toTypedArray() as BigInt64Array));
  for (const t of [images, labels, predicted]) t.dispose();
  break;
}
accCheck(epochs);
