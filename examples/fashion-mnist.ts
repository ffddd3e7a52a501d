// The CIFAR-10 tutorial's recipe on Fashion-MNIST, fully offline (Debian's
// dataset-fashion-mnist). A short budget so it ends in a few minutes on 2 CPU
// cores: the tutorial VGG with batch norm (the plain one barely moves in a few
// hundred steps), a subset of the training set, SGD with momentum, StepLR.
//
// Run: npm run demo            (environment: TRAIN_IMAGES, EPOCHS, BATCH to change the budget)
import {
  DataLoader, FashionMNIST, Subset, accuracy, getNumThreads, inferenceMode, manualSeed, memory, nn, optim, tidy,
  transforms, vggTutorial,
} from '../lib/index.js';

const TRAIN_IMAGES = Number(process.env.TRAIN_IMAGES ?? 3072);
const TEST_IMAGES = Number(process.env.TEST_IMAGES ?? 1000);
const EPOCHS = Number(process.env.EPOCHS ?? 2);
const BATCH = Number(process.env.BATCH ?? 64);

manualSeed(777);
const transform = new transforms.Compose([new transforms.ToTensor(), new transforms.Normalize([0.5], [0.5])]);
const trainSet = new FashionMNIST({ train: true, transform });
const testSet = new FashionMNIST({ train: false, transform });
const train = new Subset(trainSet, Array.from({ length: TRAIN_IMAGES }, (_, i) => i));
const test = new Subset(testSet, Array.from({ length: TEST_IMAGES }, (_, i) => i));
const trainLoader = new DataLoader(train, { batchSize: BATCH, shuffle: true, seed: 777 });
const testLoader = new DataLoader(test, { batchSize: 250 });

// 28×28 grey images: one input channel, the classifier sized for 28×28 (512 × 3 × 3).
const model = vggTutorial({ batchNorm: true, inChannels: 1, inputSize: [28, 28] });
const criterion = new nn.CrossEntropyLoss();
const optimizer = new optim.SGD(model.parameters(), { lr: 0.01, momentum: 0.9 });
const scheduler = new optim.StepLR(optimizer, { stepSize: 1, gamma: 0.5 });
console.log(`Fashion-MNIST: ${TRAIN_IMAGES} training images, ${EPOCHS} epochs, batch ${BATCH}, ${getNumThreads()} threads`);

const started = Date.now();
for (let epoch = 1; epoch <= EPOCHS; epoch++) {
  model.train();
  let running = 0;
  let batches = 0;
  for (const [images, labels] of trainLoader) {
    const loss = tidy(() => {
      optimizer.zeroGrad();
      const l = criterion.forward(model.forward(images), labels);
      l.backward();
      optimizer.step();
      return l.item() as number;
    });
    images.dispose();
    labels.dispose();
    running += loss;
    batches++;
    if (batches % 16 === 0) {
      console.log(`[${epoch}, ${String(batches).padStart(3)}] loss: ${(running / 16).toFixed(3)}  (${((Date.now() - started) / 1000).toFixed(0)} s)`);
      running = 0;
    }
  }
  scheduler.step();
}

model.eval();
let correct = 0;
let seen = 0;
for (const [images, labels] of testLoader) {
  const acc = tidy(() => inferenceMode(() => accuracy(model.forward(images), labels)));
  const n = labels.shape[0];
  correct += (acc / 100) * n;
  seen += n;
  images.dispose();
  labels.dispose();
}
console.log(`Accuracy of the network on the ${seen} test images: ${((100 * correct) / seen).toFixed(1)} %`);
console.log(`time ${((Date.now() - started) / 1000).toFixed(0)} s; live tensors: ${memory().tensors}`);
