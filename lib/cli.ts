#!/usr/bin/env node
// The `vgg-torch` command: predict (pretrained ImageNet or a trained
// checkpoint), train (the CIFAR-10 tutorial's recipe on CIFAR-10,
// Fashion-MNIST or an image folder), eval (a checkpoint's report), summary and
// export (ONNX or TorchScript).
// Every failure is one line on stderr and a non-zero exit code: 2 for usage
// errors, 1 for everything else, 130 after Ctrl-C.
import { existsSync, readdirSync, realpathSync, rmSync, statSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CIFAR10 } from './data/cifar.js';
import { DataLoader } from './data/dataloader.js';
import { DistributedSampler } from './data/distributed.js';
import { type Dataset, Subset } from './data/dataset.js';
import { IMG_EXTENSIONS, ImageFolder } from './data/folder.js';
import { FashionMNIST } from './data/mnist.js';
import { inferenceMode } from './autograd.js';
import { type ProcessGroup, barrier, destroyProcessGroup, initProcessGroup } from './distributed/distributedC10d.js';
import { launch, watchLauncher } from './distributed/run.js';
import { DistributedDataParallel } from './nn/parallel/distributed.js';
import { type VGG, vgg11, vgg11_bn, vgg13, vgg13_bn, vgg16, vgg16_bn, vgg19, vgg19_bn, vggTutorial } from './models/vgg.js';
import type { VGGFactoryOptions } from './models/vgg.js';
import {
  VGG11_BN_Weights, VGG11_Weights, VGG13_BN_Weights, VGG13_Weights, VGG16_BN_Weights, VGG16_Weights, VGG19_BN_Weights,
  VGG19_Weights, type Weights,
} from './models/weights.js';
import { Linear } from './nn/modules/linear.js';
import { summary } from './nn/summary.js';
import { loadStateDictFromUrlSync } from './hub/index.js';
import { StepLR } from './optim/lrScheduler.js';
import { SGD } from './optim/sgd.js';
import './jit/predict.js'; // installs nn.Module.predict and forwardAsync
import { quantize } from './ao/quantization/quantize.js';
import type { Module } from './nn/modules/module.js';
import { cuda, manualSeed, setNumThreads } from './runtime.js';
import { load } from './serialization/load.js';
import { tidy } from './tensor/scope.js';
import type { Tensor } from './tensor/tensor.js';
import { decodeImage } from './io/image.js';
import * as T from './transforms/transforms.js';
import { writeChartHtml } from './train/chart.js';
import { CHECKPOINT_FORMAT, type Checkpoint, disposeAll, loadCheckpoint } from './train/checkpoint.js';
import type { MetricsRecord } from './train/metricsLog.js';
import { evaluate, evaluationRecord, formatEvaluation } from './train/evaluate.js';
import { DEFAULT_OPSET, OPSET_RANGE } from './onnx/convert.js';
import { exportOnnx } from './onnx/export.js';
import { save as saveTorchScript } from './jit/serialization.js';
import { trace } from './jit/trace.js';
import { zeros } from './tensor/creation.js';
import { fit } from './train/trainer.js';

/** A mistake in the command line: exit code 2. */
class UsageError extends Error {}

const FACTORIES: Record<string, (o?: VGGFactoryOptions) => VGG> = {
  vgg11, vgg11_bn, vgg13, vgg13_bn, vgg16, vgg16_bn, vgg19, vgg19_bn,
};
/** Each factory's ImageNet weights: categories and preprocessing, also for weights given as a file or URL. */
const IMAGENET: Record<string, Weights> = {
  vgg11: VGG11_Weights.IMAGENET1K_V1, vgg11_bn: VGG11_BN_Weights.IMAGENET1K_V1, vgg13: VGG13_Weights.IMAGENET1K_V1,
  vgg13_bn: VGG13_BN_Weights.IMAGENET1K_V1, vgg16: VGG16_Weights.IMAGENET1K_V1, vgg16_bn: VGG16_BN_Weights.IMAGENET1K_V1,
  vgg19: VGG19_Weights.IMAGENET1K_V1, vgg19_bn: VGG19_BN_Weights.IMAGENET1K_V1,
};
const ARCHS = ['tutorial', 'tutorial_bn', ...Object.keys(FACTORIES)];
const DATASETS = ['cifar10', 'fashion-mnist', 'folder'];
/** Image side of the built-in datasets (folder images are resized to the model's size). */
const NATIVE_SIZE: Record<string, number> = { cifar10: 32, 'fashion-mnist': 28 };

const HELP: Record<string, string> = {
  main: `vgg-torch — PyTorch's VGG family on libtorch, from the command line

Usage: vgg-torch <command> [options]

Commands:
  predict <images…>   classify images (pretrained ImageNet weights, or a checkpoint)
  train               train a VGG (the CIFAR-10 tutorial's recipe) with live chart and checkpoints
  eval <checkpoint>   evaluate a checkpoint: accuracy, per-class accuracy, confusion matrix
  summary <arch>      layers, output shapes, parameters and MACs of an architecture
  export              write a model (pretrained or a checkpoint) as ONNX or TorchScript

Run 'vgg-torch <command> --help' for a command's options.`,
  predict: `Usage: vgg-torch predict <images…> [options]

Classifies images (JPEG, PNG, WebP, …) and prints the top classes.

Options:
  --arch <name>        vgg11 … vgg19_bn (default vgg16), with ImageNet weights
  --weights <w>        DEFAULT or IMAGENET1K_V1 (downloaded once into torch.hub's cache),
                       or a .pth state dict file or URL for the same architecture
  --checkpoint <file>  a checkpoint written by 'vgg-torch train' instead (its classes)
  --topk <k>           classes to print per image (default 5)
  --device <d>         cpu or cuda (default: cuda when available)
  --threads <n>        intra-op threads (default: libtorch's)
  --int8               quantize to int8 first (quantization.quantize, libtorch's quantized kernels)
  --calibrate <dir>    images to calibrate the int8 activation ranges on (default: the images given)
  -h, --help

On the CPU the model runs compiled for inference (jit.trace, then
jit.optimizeForInference) on a worker thread (nn.Module.forwardAsync); with
--int8 it runs libtorch's int8 kernels on this thread.`,
  train: `Usage: vgg-torch train [options]

Trains with the CIFAR-10 tutorial's recipe: SGD (momentum 0.9), StepLR, CrossEntropyLoss,
a '[epoch, batch] loss' line every 30 batches, evaluation after every epoch. Writes
metrics.jsonl, chart.html and checkpoint.pth (every epoch and on Ctrl-C) into --out.

Options:
  --dataset <d>        cifar10 (downloaded into --data), fashion-mnist (Debian's package
                       when --data lacks it) or folder (--data/<class>/*.jpg; --data/train and
                       --data/val when present). Default cifar10
  --data <dir>         dataset folder (default ./data/<dataset>)
  --arch <name>        tutorial, tutorial_bn, vgg11 … vgg19_bn (default tutorial)
  --pretrained         start vgg11 … vgg19_bn from ImageNet weights, with a new head
  --epochs <n>         default 50
  --batch-size <n>     default 512
  --lr <x>             default 0.005
  --momentum <x>       default 0.9
  --step-size <n>      StepLR step in epochs (default 5)
  --gamma <x>          StepLR factor (default 0.9)
  --augment            RandomCrop with padding and horizontal flips
  --image-size <n>     image side for folder datasets (default 32; 224 for --pretrained)
  --limit <n>          train on n images, evenly spaced through the set
  --test-limit <n>     evaluate on n test images, evenly spaced
  --log-every <n>      batches per loss line (default 30)
  --seed <n>           default 777
  --out <dir>          default ./runs/<dataset>-<arch>
  --resume             continue from <out>/checkpoint.pth
  --overwrite          start again in an --out that already holds a run
  --live               serve the live chart on http://127.0.0.1 (port: --port, default any)
  --port <n>
  --device <d>         cpu or cuda (default: cuda when available)
  --threads <n>        intra-op threads (default: libtorch's; with --nproc-per-node, cores / n)

Distributed (DistributedDataParallel; --batch-size is the global batch, split over the processes):
  --nproc-per-node <n> start n training processes on this machine
  --nnodes <n>         machines in the run (default 1); start the same command on each
  --node-rank <i>      this machine's index, 0 … nnodes-1 (default 0; machine 0 writes --out)
  --master-addr <a>    machine 0's address (default 127.0.0.1)
  --master-port <p>    a free port on machine 0 (default 29500)
  -h, --help`,
  eval: `Usage: vgg-torch eval <checkpoint> [options]

Prints overall and per-class accuracy and the confusion matrix, and writes them
(with the checkpoint's training curves) to report.html beside the checkpoint.

Options:
  --dataset <d>        cifar10, fashion-mnist or folder (default: the one it was trained on)
  --data <dir>         dataset folder (default: the one it was trained on)
  --limit <n>          evaluate on n test images, evenly spaced
  --batch-size <n>     default 500
  --device <d>         cpu or cuda
  -h, --help`,
  export: `Usage: vgg-torch export --out <file> [options]

Traces the model in eval mode and writes it as ONNX (dynamic batch dimension 'batch';
classes, mean and std in the model's metadata; weights past 2 GB in <file>.data), or as
TorchScript for torch.jit.load (any batch size).

Options:
  --arch <name>        vgg11 … vgg19_bn (default vgg16), with ImageNet weights
  --weights <w>        DEFAULT or IMAGENET1K_V1 (downloaded once into torch.hub's cache),
                       or a .pth state dict file or URL for the same architecture
  --checkpoint <file>  a checkpoint written by 'vgg-torch train' instead
  --format <f>         onnx (default) or torchscript
  --out <file>         the file to write
  --opset <n>          ONNX opset, ${OPSET_RANGE[0]} to ${OPSET_RANGE[1]} (default ${DEFAULT_OPSET}; ONNX only)
  --image-size <n>     input side traced (default: the checkpoint's, or 224)
  --static-batch       a fixed batch of 1 instead of the dynamic 'batch' (ONNX only)
  -h, --help`,
  summary: `Usage: vgg-torch summary <arch> [options]

Options:
  --input <CxHxW>      input shape (default 3x224x224; 3x32x32 for tutorial)
  --num-classes <n>    default 1000 (10 for tutorial)
  -h, --help`,
};

// ---- argument helpers ------------------------------------------------------------

type Values = Record<string, string | boolean | undefined>;

function parse(command: string, argv: string[], options: Record<string, { type: 'string' | 'boolean' }>): { values: Values; positionals: string[] } {
  try {
    return parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true }) as {
      values: Values;
      positionals: string[];
    };
  } catch (e) {
    throw new UsageError(`${(e as Error).message.split('\n')[0]} (see 'vgg-torch ${command} --help')`);
  }
}

function int(v: Values, name: string, dflt: number, min = 1, max = Number.MAX_SAFE_INTEGER): number {
  const raw = v[name];
  if (raw === undefined) return dflt;
  const x = /^\d+$/.test(String(raw)) ? Number(raw) : NaN; // not 0x40 or 1e1
  if (!Number.isSafeInteger(x) || x < min || x > max) {
    throw new UsageError(`--${name} must be an integer ${max < Number.MAX_SAFE_INTEGER ? `from ${min} to ${max}` : `>= ${min}`}, got '${String(raw)}'`);
  }
  return x;
}

function num(v: Values, name: string, dflt: number): number {
  const raw = v[name];
  if (raw === undefined) return dflt;
  const x = Number(raw);
  if (!Number.isFinite(x) || x < 0) throw new UsageError(`--${name} must be a non-negative number, got '${String(raw)}'`);
  return x;
}

function oneOf(value: string, allowed: readonly string[], what: string): string {
  if (!allowed.includes(value)) throw new UsageError(`unknown ${what} '${value}' (choose from ${allowed.join(', ')})`);
  return value;
}

function device(v: Values): 'cpu' | 'cuda' {
  const d = (v.device as string | undefined) ?? (cuda.isAvailable() ? 'cuda' : 'cpu');
  oneOf(d, ['cpu', 'cuda'], 'device');
  if (d === 'cuda' && !cuda.isAvailable()) throw new Error('--device cuda: no CUDA device is available to this libtorch build');
  return d as 'cpu' | 'cuda';
}

// ---- models and data -------------------------------------------------------------

/** How a trained model is rebuilt: stored in every checkpoint's `meta`. */
interface ModelMeta {
  arch: string;
  numClasses: number;
  inChannels: number;
  imageSize: number;
  classes: string[];
  mean: number[];
  std: number[];
  dataset: string;
  data: string;
  /** Started from ImageNet weights (and so normalized with ImageNet's mean and std). */
  pretrained: boolean;
}

/** A training run's settings, stored in its checkpoints (`meta.run`) so that --resume continues with them. */
interface RunSettings {
  dataset: string;
  arch: string;
  pretrained: boolean;
  imageSize: number | null;
  epochs: number;
  batchSize: number;
  lr: number;
  momentum: number;
  stepSize: number;
  gamma: number;
  augment: boolean;
  limit: number | null;
  testLimit: number | null;
  logEvery: number;
  seed: number;
  data: string | null;
}

/** Each setting's flag. */
const RUN_FLAGS: Record<keyof RunSettings, string> = {
  dataset: 'dataset', arch: 'arch', pretrained: 'pretrained', imageSize: 'image-size', epochs: 'epochs', batchSize: 'batch-size',
  lr: 'lr', momentum: 'momentum', stepSize: 'step-size', gamma: 'gamma', augment: 'augment', limit: 'limit',
  testLimit: 'test-limit', logEvery: 'log-every', seed: 'seed', data: 'data',
};
/** What a resumed run may change: the rest shapes its losses (or its restored optimizer and scheduler would override it). */
const CHANGEABLE_ON_RESUME = new Set<keyof RunSettings>(['epochs', 'logEvery', 'data']);

/**
 * The settings a resumed run continues with: the run's own, with --epochs,
 * --log-every and --data as asked; any other flag that differs is an error.
 */
function continuedRun(ck: Checkpoint, out: string, asked: RunSettings, v: Values): RunSettings {
  const saved = ck.meta.run as Partial<RunSettings> | undefined;
  if (!saved || typeof saved !== 'object') throw new Error(`--resume: ${ck.path} was not written by 'vgg-torch train' (its meta has no run settings)`);
  const run = { ...asked } as Record<keyof RunSettings, unknown>;
  for (const key of Object.keys(RUN_FLAGS) as (keyof RunSettings)[]) {
    if (!(key in saved)) continue;
    const flag = RUN_FLAGS[key];
    if (v[flag] === undefined) run[key] = saved[key];
    else if (!CHANGEABLE_ON_RESUME.has(key) && asked[key] !== saved[key]) {
      const was = typeof saved[key] === 'boolean' ? (saved[key] ? `with --${flag}` : `without --${flag}`) : `with --${flag} ${String(saved[key])}`;
      throw new UsageError(`--resume: the run in ${out} was trained ${was}; leave --${flag} out, or start again with --overwrite`);
    }
  }
  const result = run as unknown as RunSettings;
  if (result.epochs <= ck.epoch) {
    throw new UsageError(`--resume: the run in ${out} has already trained ${ck.epoch} epochs; pass --epochs with more to train on`);
  }
  return result;
}

/**
 * The model `meta` describes: ImageNet weights and a new head (`pretrained`),
 * a fresh init, or (`forLoading`) no init at all, for weights loaded next.
 */
function buildModel(meta: ModelMeta, how: 'pretrained' | 'init' | 'forLoading'): VGG {
  const initWeights = how !== 'forLoading';
  if (meta.arch === 'tutorial' || meta.arch === 'tutorial_bn') {
    return vggTutorial({
      batchNorm: meta.arch === 'tutorial_bn', numClasses: meta.numClasses, inChannels: meta.inChannels,
      inputSize: [meta.imageSize, meta.imageSize], initWeights,
    });
  }
  const factory = FACTORIES[meta.arch];
  if (how !== 'pretrained') return factory({ numClasses: meta.numClasses, inChannels: meta.inChannels, initWeights });
  // ImageNet weights, then a new last layer for our classes (the fine-tuning recipe).
  const model = factory({ weights: 'DEFAULT' });
  model.classifier[6].dispose();
  model.classifier[6] = new Linear(4096, meta.numClasses);
  return model;
}

/** The model and its description from a checkpoint `vgg-torch train` wrote, weights loaded. */
function modelFromCheckpoint(file: string): { model: VGG; meta: ModelMeta; epoch: number; metrics: MetricsRecord[] } {
  if (!existsSync(file)) throw new Error(`no such checkpoint: ${file}`);
  const ck = loadCheckpoint(file);
  try {
    const m = ck.meta as Partial<ModelMeta>;
    const ok =
      typeof m.arch === 'string' && ARCHS.includes(m.arch) && Number.isInteger(m.numClasses) && Number.isInteger(m.inChannels) &&
      Number.isInteger(m.imageSize) && Array.isArray(m.classes) && Array.isArray(m.mean) && Array.isArray(m.std) &&
      typeof m.dataset === 'string' && typeof m.data === 'string';
    if (!ok) throw new Error(`${file} was not written by 'vgg-torch train': its meta does not describe the model`);
    const meta = { ...(m as ModelMeta), pretrained: m.pretrained === true };
    const model = buildModel(meta, 'forLoading');
    try {
      model.loadStateDict(ck.model);
    } catch (e) {
      model.dispose();
      throw e;
    }
    return { model, meta, epoch: ck.epoch, metrics: ck.metrics };
  } finally {
    ck.dispose();
  }
}

/** A torchvision architecture with `--weights`: DEFAULT or IMAGENET1K_V1 (torch.hub's cache), or a state dict file or URL. */
function modelWithWeights(arch: string, w: string): VGG {
  const factory = FACTORIES[arch];
  if (w === 'DEFAULT' || w === 'IMAGENET1K_V1') return factory({ weights: w });
  const sd: unknown = /^https?:\/\//.test(w) ? loadStateDictFromUrlSync(w, { checkHash: true }) : load(w);
  const model = factory({ initWeights: false });
  try {
    if (!(sd instanceof Map)) throw new Error(`${w} does not hold a state dict`);
    if (sd.get('format') === CHECKPOINT_FORMAT) throw new Error(`${w} is a training checkpoint: use --checkpoint`);
    model.loadStateDict(sd as Map<string, Tensor>);
    return model;
  } catch (e) {
    model.dispose();
    throw e;
  } finally {
    disposeAll(sd);
  }
}

/** The transforms of a dataset for a model: augmentation (training only), size, channels, normalization. */
function transformFor(meta: ModelMeta, nativeSize: number | null, nativeChannels: number, augment: boolean): T.Compose {
  const steps: T.Transform[] = [];
  if (nativeSize === null) steps.push(new T.Resize(meta.imageSize), new T.CenterCrop(meta.imageSize));
  else if (nativeSize < meta.imageSize) steps.push(new T.Pad((meta.imageSize - nativeSize) / 2)); // 28 → 32 for VGG's five poolings
  if (nativeChannels !== meta.inChannels) steps.push(new T.Grayscale(meta.inChannels as 1 | 3));
  if (augment) steps.push(new T.RandomCrop(meta.imageSize, { padding: Math.round(meta.imageSize / 8) }), new T.RandomHorizontalFlip());
  steps.push(new T.ToTensor(), new T.Normalize(meta.mean, meta.std));
  return new T.Compose(steps);
}

/** Labels are class indices: data labelled by `found` means `expected` only if the names agree, in order. */
function checkClasses(found: readonly string[], where: string, expected: readonly string[], expectedWhere: string): void {
  if (found.join('\n') !== expected.join('\n')) {
    throw new Error(`${where} has classes [${found.join(', ')}] but ${expectedWhere} [${expected.join(', ')}]`);
  }
}

/** n samples evenly spaced through `ds` (a folder dataset is sorted by class, so its first n would be one class). */
const evenlySpaced = <D extends Dataset<any>>(ds: D, n: number | null): Dataset<any> =>
  n === null || n >= ds.length ? ds : new Subset(ds, Array.from({ length: n }, (_, i) => Math.floor((i * ds.length) / n)));

/** The train and test splits of a dataset, and what the model needs to know about it. */
async function datasets(name: string, root: string, meta: { arch: string; pretrained: boolean; imageSize?: number }, augment: boolean) {
  const tutorial = meta.arch.startsWith('tutorial');
  const pretrained = meta.pretrained;
  const norm = pretrained ? { mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] } : null;
  if (name === 'cifar10') {
    const m: ModelMeta = {
      arch: meta.arch, numClasses: 10, inChannels: 3, imageSize: meta.imageSize ?? 32, classes: [...CIFAR10.CLASSES],
      mean: norm?.mean ?? [0.5, 0.5, 0.5], std: norm?.std ?? [0.5, 0.5, 0.5], dataset: name, data: root, pretrained,
    };
    const train = async () => CIFAR10.load({ root, train: true, download: true, transform: transformFor(m, NATIVE_SIZE.cifar10, 3, augment) });
    const test = async () => CIFAR10.load({ root, train: false, download: true, transform: transformFor(m, NATIVE_SIZE.cifar10, 3, false) });
    return { meta: m, train, test };
  }
  if (name === 'fashion-mnist') {
    const channels = pretrained ? 3 : 1;
    const m: ModelMeta = {
      arch: meta.arch, numClasses: 10, inChannels: channels, imageSize: meta.imageSize ?? (tutorial ? 28 : 32), classes: [...FashionMNIST.CLASSES],
      mean: norm?.mean ?? Array(channels).fill(0.5), std: norm?.std ?? Array(channels).fill(0.5), dataset: name, data: root, pretrained,
    };
    const opts = existsSync(root) ? { root } : {};
    const size = NATIVE_SIZE['fashion-mnist'];
    const train = async () => FashionMNIST.load({ ...opts, train: true, transform: transformFor(m, size, 1, augment) });
    const test = async () => FashionMNIST.load({ ...opts, train: false, transform: transformFor(m, size, 1, false) });
    return { meta: m, train, test };
  }
  // folder: root/train and root/val, or root alone (no evaluation)
  const trainRoot = existsSync(join(root, 'train')) ? join(root, 'train') : root;
  const valRoot = existsSync(join(root, 'val')) ? join(root, 'val') : null;
  const scan = new ImageFolder(trainRoot);
  const m: ModelMeta = {
    arch: meta.arch, numClasses: scan.classes.length, inChannels: 3, imageSize: meta.imageSize ?? (pretrained ? 224 : 32), classes: scan.classes,
    mean: norm?.mean ?? [0.5, 0.5, 0.5], std: norm?.std ?? [0.5, 0.5, 0.5], dataset: name, data: root, pretrained,
  };
  const train = async () => ImageFolder.load(trainRoot, { transform: transformFor(m, null, 3, augment) });
  const test = valRoot
    ? async () => {
        const val = await ImageFolder.load(valRoot, { transform: transformFor(m, null, 3, false) });
        try {
          checkClasses(val.classes, valRoot, scan.classes, `${trainRoot} has`);
        } catch (e) {
          val.dispose();
          throw e;
        }
        return val;
      }
    : null;
  return { meta: m, train, test };
}

// ---- commands --------------------------------------------------------------------

async function train(argv: string[]): Promise<number> {
  const s = { type: 'string' } as const;
  const b = { type: 'boolean' } as const;
  const { values: v, positionals } = parse('train', argv, {
    dataset: s, data: s, arch: s, pretrained: b, epochs: s, 'batch-size': s, lr: s, momentum: s, 'step-size': s, gamma: s,
    augment: b, 'image-size': s, limit: s, 'test-limit': s, 'log-every': s, seed: s, out: s, resume: b, overwrite: b, live: b, port: s, device: s,
    threads: s, ...Object.fromEntries(LAUNCH_FLAGS.map((f) => [f, s])),
  });
  if (v.help) return help('train');
  if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}' (see 'vgg-torch train --help')`);
  // Every flag is checked before any download or model is made.
  const asked: RunSettings = {
    dataset: oneOf((v.dataset as string) ?? 'cifar10', DATASETS, 'dataset'),
    arch: oneOf((v.arch as string) ?? 'tutorial', ARCHS, 'architecture'),
    pretrained: Boolean(v.pretrained),
    imageSize: v['image-size'] === undefined ? null : int(v, 'image-size', 0, 16),
    epochs: int(v, 'epochs', 50),
    batchSize: int(v, 'batch-size', 512),
    lr: num(v, 'lr', 0.005),
    momentum: num(v, 'momentum', 0.9),
    stepSize: int(v, 'step-size', 5),
    gamma: num(v, 'gamma', 0.9),
    augment: Boolean(v.augment),
    limit: v.limit === undefined ? null : int(v, 'limit', 1),
    testLimit: v['test-limit'] === undefined ? null : int(v, 'test-limit', 1),
    logEvery: int(v, 'log-every', 30),
    seed: int(v, 'seed', 777, 0),
    data: v.data === undefined ? null : resolve(v.data as string),
  };
  const out = resolve((v.out as string) ?? join('runs', `${asked.dataset}-${asked.arch}`));
  if (v.port !== undefined && !v.live) throw new UsageError('--port goes with --live');
  const port = int(v, 'port', 0, 0, 65535);
  if (v.resume && v.overwrite) throw new UsageError('--resume continues the run in --out, --overwrite starts it again: pick one');
  const launcher = LAUNCH_FLAGS.some((f) => v[f] !== undefined);
  // --out is machine 0's, and rank 0's: the others write nothing there.
  const writesOut = launcher ? v['node-rank'] === undefined || int(v, 'node-rank', 0, 0) === 0 : (process.env.RANK ?? '0') === '0';
  if (writesOut && !v.resume && !v.overwrite && existsSync(join(out, 'checkpoint.pth'))) {
    throw new Error(`${out} already holds a run: pass --resume to continue it or --overwrite to start again`);
  }
  if (writesOut && v.resume && !existsSync(join(out, 'checkpoint.pth'))) throw new Error(`--resume: no checkpoint in ${out}`);
  const dev = device(v);
  if (v.threads !== undefined) setNumThreads(int(v, 'threads', 1));
  if (launcher) return launchTraining(argv, v, asked.batchSize);
  // A worker of the launcher (or of torchrun): torchrun's environment names the process group.
  const group = Number(process.env.WORLD_SIZE ?? 1) > 1 ? initProcessGroup({ initMethod: 'env://' }) : null;
  try {
    watchLauncher();
    return await trainIn(group, v, asked, out, dev, port);
  } finally {
    if (group) destroyProcessGroup();
  }
}

/** The flags of `train` that start the distributed launcher. */
const LAUNCH_FLAGS = ['nproc-per-node', 'nnodes', 'node-rank', 'master-addr', 'master-port'] as const;

/** `train --nproc-per-node n`: this machine's workers, each running `train` with the other flags. */
async function launchTraining(argv: string[], v: Values, batchSize: number): Promise<number> {
  const nproc = int(v, 'nproc-per-node', 1);
  const nnodes = int(v, 'nnodes', 1);
  const nodeRank = int(v, 'node-rank', 0, 0);
  if (nodeRank >= nnodes) throw new UsageError(`--node-rank must be below --nnodes (${nnodes}), got ${nodeRank}`);
  const masterPort = int(v, 'master-port', 29500, 1, 65535);
  const world = nproc * nnodes;
  if (batchSize % world !== 0) throw new UsageError(`--batch-size ${batchSize} does not split over ${world} processes: pass a multiple of ${world}`);
  const script = process.argv[1];
  if (!script) throw new Error('cannot tell which script to start the workers with (process.argv[1] is empty)');
  const workerArgv = withoutFlags(argv, LAUNCH_FLAGS);
  const threads = v.threads === undefined ? Math.max(1, Math.floor(availableParallelism() / nproc)) : int(v, 'threads', 1);
  if (v.threads === undefined) workerArgv.push('--threads', String(threads));
  const first = nodeRank * nproc;
  console.log(
    `Starting ${nproc} training process${nproc > 1 ? 'es' : ''} (rank${nproc > 1 ? `s ${first}–${first + nproc - 1}` : ` ${first}`} of ${world}), ` +
      `${threads} thread${threads > 1 ? 's' : ''} each; rendezvous at ${(v['master-addr'] as string | undefined) ?? '127.0.0.1'}:${masterPort}`,
  );
  const result = await launch(script, ['train', ...workerArgv], {
    nprocPerNode: nproc, nnodes, nodeRank, masterAddr: v['master-addr'] as string | undefined, masterPort, threads,
  });
  return result.exitCode;
}

/** `argv` without `flags` (as `--flag value` or `--flag=value`). */
function withoutFlags(argv: readonly string[], flags: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (flags.some((f) => a === `--${f}`)) i++;
    else if (!flags.some((f) => a.startsWith(`--${f}=`))) out.push(a);
  }
  return out;
}

/**
 * The training run itself, in one process or as one rank of `group`: rank 0
 * prints and writes --out; each rank trains on its DistributedSampler share
 * of the data with the global batch split evenly.
 */
async function trainIn(group: ProcessGroup | null, v: Values, asked: RunSettings, out: string, dev: 'cpu' | 'cuda', port: number): Promise<number> {
  const rank = group?.rank() ?? 0;
  const world = group?.size() ?? 1;
  const say = rank === 0 ? console.log : () => {};
  if (asked.batchSize % world !== 0) throw new UsageError(`--batch-size ${asked.batchSize} does not split over ${world} processes: pass a multiple of ${world}`);
  // Read once: the run's settings are checked here, then fit() restores and frees it. Under DDP
  // rank 0 reads it and sends it to the others.
  const resume = v.resume ? loadCheckpoint(join(out, 'checkpoint.pth'), { processGroup: group }) : null;
  let model: VGG | null = null;
  let ddp: DistributedDataParallel | null = null;
  let optimizer: SGD | null = null;
  try {
    const run = resume ? continuedRun(resume, out, asked, v) : asked;
    const { dataset, arch, pretrained, imageSize, epochs, batchSize, lr, momentum, stepSize, gamma, logEvery } = run;
    if (pretrained && arch.startsWith('tutorial')) throw new UsageError('--pretrained needs one of vgg11 … vgg19_bn (the tutorial VGG has no pretrained weights)');
    if (imageSize !== null && dataset !== 'folder') throw new UsageError('--image-size applies to folder datasets (CIFAR-10 and Fashion-MNIST keep their size)');
    const minSize = arch.startsWith('tutorial') ? 16 : 32;
    if (imageSize !== null && imageSize < minSize) throw new UsageError(`--image-size must be at least ${minSize} for ${arch}`);
    const root = run.data ?? resolve(join('data', dataset));

    // Rank r > 0 draws its own augmentations and dropout masks (rank 0 those of a one-process run).
    manualSeed(run.seed + rank);
    // Downloads (CIFAR-10, ImageNet weights) happen once per machine: local rank 0 first.
    const localFirst = group !== null && Number(process.env.LOCAL_RANK ?? rank) !== 0;
    if (localFirst) barrier();
    const ds = await datasets(dataset, root, { arch, pretrained, imageSize: imageSize ?? undefined }, run.augment);
    const trainSet = evenlySpaced(await ds.train(), run.limit);
    const testSet = ds.test ? evenlySpaced(await ds.test(), run.testLimit) : null;
    // The data must still describe the model the run trained.
    const savedClasses = (resume?.meta as Partial<ModelMeta> | undefined)?.classes;
    if (savedClasses) checkClasses(ds.meta.classes, root, savedClasses, `the run in ${out} (--resume) was trained on`);
    // Resuming loads every weight from the checkpoint: no ImageNet download, no init.
    model = buildModel(ds.meta, resume ? 'forLoading' : pretrained ? 'pretrained' : 'init').to(dev);
    if (group !== null && !localFirst) barrier();
    optimizer = new SGD(model.parameters(), { lr, momentum });
    const scheduler = new StepLR(optimizer, { stepSize, gamma });
    if (rank === 0 && v.overwrite) rmSync(join(out, 'report.html'), { force: true }); // fit() starts the rest of --out over
    say(
      `Training ${arch}${pretrained ? ' (ImageNet weights, new head)' : ''} on ${dataset}: ${trainSet.length} images, ` +
        `${epochs} epochs, batch ${batchSize}${world > 1 ? ` (${batchSize / world} on each of ${world} processes)` : ''}, ${dev}; writing to ${out}`,
    );
    ddp = group ? new DistributedDataParallel(model) : null;
    const result = await fit({
      model: ddp ?? model, optimizer, scheduler, epochs, device: dev, logEvery,
      trainLoader: group
        ? new DataLoader(trainSet, { batchSize: batchSize / world, sampler: new DistributedSampler(trainSet, { seed: run.seed }) })
        : new DataLoader(trainSet, { batchSize, shuffle: true }),
      testLoader: testSet ? new DataLoader(testSet, { batchSize }) : null,
      classes: ds.meta.classes,
      outDir: out,
      meta: { ...ds.meta, run },
      resume,
      live: v.live ? port : false,
      title: `vgg-torch: ${arch} on ${dataset}`,
    });
    if (result.interrupted) return 130;
    say(`Finished Training. Chart: ${join(out, 'chart.html')}; checkpoint: ${result.checkpoint}`);
    return 0;
  } finally {
    resume?.dispose(); // already freed by fit() unless something failed before it
    ddp?.dispose();
    model?.dispose();
    optimizer?.dispose();
  }
}

async function evalCommand(argv: string[]): Promise<number> {
  const s = { type: 'string' } as const;
  const { values: v, positionals } = parse('eval', argv, { dataset: s, data: s, limit: s, 'batch-size': s, device: s });
  if (v.help) return help('eval');
  if (positionals.length !== 1) throw new UsageError("eval takes one checkpoint file (see 'vgg-torch eval --help')");
  const file = resolve(positionals[0]);
  const limit = v.limit === undefined ? null : int(v, 'limit', 1);
  const batchSize = int(v, 'batch-size', 500);
  const dev = device(v);
  const { model, meta, epoch, metrics } = modelFromCheckpoint(file);
  try {
    const name = oneOf((v.dataset as string) ?? meta.dataset, DATASETS, 'dataset');
    const root = resolve((v.data as string) ?? (name === meta.dataset ? meta.data : join('data', name)));
    const ds = await datasets(name, root, meta, false);
    checkClasses(ds.meta.classes, root, meta.classes, "the checkpoint's model was trained on");
    if (!ds.test) throw new Error(`${root} has no val/ folder to evaluate on`);
    const testSet = evenlySpaced(await ds.test(), limit);
    model.to(dev);
    const ev = await evaluate(model, new DataLoader(testSet, { batchSize }), { classes: meta.classes, device: dev });
    console.log(formatEvaluation(ev));
    const report = join(dirname(file), 'report.html');
    writeChartHtml(report, [...metrics, evaluationRecord(ev, epoch)], { title: `vgg-torch: ${meta.arch} on ${name}, epoch ${epoch}` });
    console.log(`Report: ${report}`);
  } finally {
    model.dispose();
  }
  return 0;
}

/** The images in a folder (torchvision's IMG_EXTENSIONS), sorted. */
function imagesIn(dir: string): string[] {
  if (!existsSync(dir)) throw new Error(`no such folder: ${dir}`);
  const images = readdirSync(dir).filter((f) => (IMG_EXTENSIONS as readonly string[]).includes(extname(f).toLowerCase())).sort().map((f) => join(dir, f));
  if (images.length === 0) throw new Error(`no images in ${dir}`);
  return images;
}

async function predict(argv: string[]): Promise<number> {
  const s = { type: 'string' } as const;
  const { values: v, positionals: files } = parse('predict', argv, { arch: s, weights: s, checkpoint: s, topk: s, device: s, threads: s, int8: { type: 'boolean' }, calibrate: s });
  if (v.help) return help('predict');
  if (files.length === 0) throw new UsageError("predict needs at least one image (see 'vgg-torch predict --help')");
  for (const f of files) if (!existsSync(f)) throw new Error(`no such image: ${f}`);
  const topkAsked = int(v, 'topk', 5);
  if (v.threads !== undefined) setNumThreads(int(v, 'threads', 1, 1, 1024));
  const dev = device(v);
  let model: VGG;
  let classes: readonly string[];
  let preprocess: (image: Tensor) => Tensor;
  if (v.checkpoint) {
    if (v.arch || v.weights) throw new UsageError('--checkpoint brings its own architecture and weights: drop --arch and --weights');
    const loaded = modelFromCheckpoint(resolve(v.checkpoint as string));
    model = loaded.model;
    classes = loaded.meta.classes;
    // A photo is first brought to the dataset's own size, then prepared as training prepared that dataset.
    const size = NATIVE_SIZE[loaded.meta.dataset] ?? null;
    const tf = size === null
      ? transformFor(loaded.meta, null, 3, false)
      : new T.Compose([new T.Resize(size), new T.CenterCrop(size), transformFor(loaded.meta, size, 3, false)]);
    preprocess = (img) => tf.forward(img).unsqueeze(0);
  } else {
    const arch = oneOf((v.arch as string) ?? 'vgg16', Object.keys(FACTORIES), 'architecture');
    const weights = IMAGENET[arch];
    model = modelWithWeights(arch, (v.weights as string) ?? 'DEFAULT');
    classes = weights.meta.categories!;
    const preset = weights.transforms();
    preprocess = (img) => preset.forward(img).unsqueeze(0);
  }
  model.to(dev).eval();
  if (v.calibrate !== undefined && !v.int8) throw new UsageError('--calibrate goes with --int8');
  let run: (x: Tensor) => Promise<Tensor> = async (x) =>
    (dev === 'cpu' ? await model.forwardAsync(x) : inferenceMode(() => model.forward(x)));
  let int8: Module<any, any> | null = null;
  if (v.int8) {
    if (dev !== 'cpu') throw new UsageError('--int8 runs on the CPU: add --device cpu');
    const dirImages = v.calibrate === undefined ? files : imagesIn(resolve(v.calibrate as string));
    const calibration: Tensor[] = [];
    for (const f of dirImages) {
      const image = await decodeImage(f);
      calibration.push(tidy(() => preprocess(image)));
      image.dispose();
    }
    int8 = quantize(model, calibration);
    for (const c of calibration) c.dispose();
    const q = int8;
    run = async (x) => inferenceMode(() => q.forward(x));
  }
  const topk = Math.min(topkAsked, classes.length);
  for (const file of files) {
    const image = await decodeImage(file);
    const x = tidy(() => preprocess(image).to(dev));
    // The compiled graph on a worker thread on the CPU; CUDA runs eagerly (asynchronous on its stream already).
    const logits = await run(x);
    x.dispose();
    const lines = tidy(() =>
      inferenceMode(() => {
        const [p, c] = logits.softmax(1).topk(topk);
        const probs = p.cpu().toTypedArray() as Float32Array;
        const idx = c.cpu().toTypedArray();
        return Array.from(probs, (prob, i) => `  ${(Number(prob) * 100).toFixed(2).padStart(6)} %  ${classes[Number(idx[i])]}`);
      }),
    );
    image.dispose();
    logits.dispose();
    console.log(`${file}:\n${lines.join('\n')}`);
  }
  int8?.dispose();
  model.dispose();
  return 0;
}

function summaryCommand(argv: string[]): number {
  const s = { type: 'string' } as const;
  const { values: v, positionals } = parse('summary', argv, { input: s, 'num-classes': s });
  if (v.help) return help('summary');
  if (positionals.length !== 1) throw new UsageError(`summary takes one architecture: ${ARCHS.join(', ')}`);
  const arch = oneOf(positionals[0], ARCHS, 'architecture');
  const tutorial = arch.startsWith('tutorial');
  const input = ((v.input as string) ?? (tutorial ? '3x32x32' : '3x224x224')).split('x').map(Number);
  if (input.length !== 3 || !input.every((d) => Number.isInteger(d) && d > 0)) throw new UsageError(`--input must look like 3x224x224, got '${String(v.input)}'`);
  const numClasses = int(v, 'num-classes', tutorial ? 10 : 1000);
  const model = buildModel(
    { arch, numClasses, inChannels: input[0], imageSize: input[1], classes: [], mean: [], std: [], dataset: '', data: '', pretrained: false },
    'forLoading',
  );
  if (tutorial && input[1] !== input[2]) throw new UsageError('the tutorial VGG takes square inputs');
  try {
    console.log(`${arch}\n${summary(model, input).toString()}`);
  } finally {
    model.dispose();
  }
  return 0;
}

function exportCommand(argv: string[]): number {
  const s = { type: 'string' } as const;
  const { values: v, positionals } = parse('export', argv, {
    arch: s, weights: s, checkpoint: s, format: s, out: s, opset: s, 'image-size': s, 'static-batch': { type: 'boolean' },
  });
  if (v.help) return help('export');
  if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}' (see 'vgg-torch export --help')`);
  const format = oneOf((v.format as string) ?? 'onnx', ['onnx', 'torchscript'], 'format');
  if (format === 'torchscript' && (v.opset !== undefined || v['static-batch'])) throw new UsageError('--opset and --static-batch apply to --format onnx');
  if (!v.out) throw new UsageError("export needs --out <file> (see 'vgg-torch export --help')");
  const out = resolve(v.out as string);
  const opset = int(v, 'opset', DEFAULT_OPSET, OPSET_RANGE[0], OPSET_RANGE[1]);
  const imageSize = v['image-size'] === undefined ? null : int(v, 'image-size', 0, 1);
  let model: VGG;
  let what: string;
  let input: number[];
  let metadata: Record<string, string>;
  if (v.checkpoint) {
    if (v.arch || v.weights) throw new UsageError('--checkpoint brings its own architecture and weights: drop --arch and --weights');
    const loaded = modelFromCheckpoint(resolve(v.checkpoint as string));
    const { meta } = loaded;
    model = loaded.model;
    what = `${meta.arch} (${v.checkpoint as string}, epoch ${loaded.epoch})`;
    input = [meta.inChannels, imageSize ?? meta.imageSize, imageSize ?? meta.imageSize];
    metadata = { arch: meta.arch, classes: JSON.stringify(meta.classes), mean: JSON.stringify(meta.mean), std: JSON.stringify(meta.std) };
  } else {
    const arch = oneOf((v.arch as string) ?? 'vgg16', Object.keys(FACTORIES), 'architecture');
    const w = (v.weights as string) ?? 'DEFAULT';
    model = modelWithWeights(arch, w);
    what = `${arch} (weights ${w})`;
    input = [3, imageSize ?? 224, imageSize ?? 224];
    const { preset } = IMAGENET[arch].transforms();
    metadata = { arch, classes: JSON.stringify(IMAGENET[arch].meta.categories), mean: JSON.stringify(preset.mean), std: JSON.stringify(preset.std) };
  }
  const example = zeros([1, ...input]);
  try {
    if (format === 'torchscript') {
      const engine = trace(model.eval(), example);
      try {
        saveTorchScript(engine, out);
      } finally {
        engine.dispose();
      }
      const mb = (statSync(out).size / 2 ** 20).toFixed(1);
      console.log(`Exported ${what} to ${out}: ${mb} MiB, TorchScript (traced), input [batch, ${input.join(', ')}] float32`);
      return 0;
    }
    const saved = exportOnnx(model, example, out, { opset, dynamicBatch: !v['static-batch'], metadata });
    const mb = (saved.bytes / 2 ** 20).toFixed(1);
    console.log(`Exported ${what} to ${out}${saved.dataPath ? ` (weights in ${saved.dataPath})` : ''}: ${mb} MiB, ONNX opset ${opset}, ` +
      `input [${v['static-batch'] ? 1 : 'batch'}, ${input.join(', ')}] float32`);
  } finally {
    example.dispose();
    model.dispose();
  }
  return 0;
}

function help(command: string): number {
  console.log(HELP[command]);
  return 0;
}

/** Runs the CLI with `argv` (without `node` and the script); resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      return help('main');
    case 'predict':
      return predict(rest);
    case 'train':
      return train(rest);
    case 'eval':
      return evalCommand(rest);
    case 'summary':
      return summaryCommand(rest);
    case 'export':
      return exportCommand(rest);
    default:
      throw new UsageError(`unknown command '${command}' (commands: predict, train, eval, summary, export; see 'vgg-torch --help')`);
  }
}

/** Runs as the `vgg-torch` bin (not when imported). */
function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  // `vgg-torch … | head` closes stdout early: that is not an error.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(0);
    throw e;
  });
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      // One line: libtorch's and loadStateDict's multi-line messages are joined.
      const message = (e instanceof Error ? e.message : String(e)).split('\n').map((l) => l.trim()).filter(Boolean).join('; ');
      // A worker of a distributed run says which rank it is.
      const rank = Number(process.env.WORLD_SIZE ?? 1) > 1 && process.env.RANK !== undefined ? ` (rank ${process.env.RANK})` : '';
      process.stderr.write(`vgg-torch${rank}: ${message}\n`);
      process.exitCode = e instanceof UsageError ? 2 : 1;
    },
  );
}
