// `vgg-torch train`: the CIFAR-10 tutorial's recipe on CIFAR-10, Fashion-MNIST
// or an image folder, in one process or as one rank of a DistributedDataParallel
// run (started by the launcher in launch.ts, or by torchrun).
import { existsSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { DataLoader } from '../data/dataloader.js';
import { DistributedSampler } from '../data/distributed.js';
import { type ProcessGroup, allReduceNumbers, barrier, destroyProcessGroup, initProcessGroup } from '../distributed/distributedC10d.js';
import { watchLauncher } from '../distributed/run.js';
import type { VGG } from '../models/vgg.js';
import { DistributedDataParallel } from '../nn/parallel/distributed.js';
import { StepLR } from '../optim/lrScheduler.js';
import { SGD } from '../optim/sgd.js';
import { manualSeed, setNumThreads } from '../runtime.js';
import { type Checkpoint, loadCheckpoint } from '../train/checkpoint.js';
import { AMP_SETTINGS, type AmpSetting, planPrecision } from '../train/precision.js';
import { fit } from '../train/trainer.js';
import { type Command, type Values, UsageError, bool, device, int, noPositionals, num, oneOf, str } from './args.js';
import { DATASETS, checkClasses, datasets, evenlySpaced } from './datasets.js';
import { LAUNCH_FLAGS, launchTraining } from './launch.js';
import { ARCHS, type ModelMeta, buildModel } from './models.js';

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
  amp: AmpSetting;
}

/** Each setting's flag. */
const RUN_FLAGS: Record<keyof RunSettings, string> = {
  dataset: 'dataset',
  arch: 'arch',
  pretrained: 'pretrained',
  imageSize: 'image-size',
  epochs: 'epochs',
  batchSize: 'batch-size',
  lr: 'lr',
  momentum: 'momentum',
  stepSize: 'step-size',
  gamma: 'gamma',
  augment: 'augment',
  limit: 'limit',
  testLimit: 'test-limit',
  logEvery: 'log-every',
  seed: 'seed',
  data: 'data',
  amp: 'amp',
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

export const trainCommand: Command = {
  synopsis: ['train', "train a VGG (the CIFAR-10 tutorial's recipe) with live chart and checkpoints"],
  help: `Usage: vgg-torch train [options]

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
  --amp <mode>         mixed precision: auto (default: bf16 autocast on a CPU with native bf16,
                       AVX512_BF16 or AMX; fp16 autocast with a GradScaler on CUDA; fp32
                       otherwise), bf16, fp16 (GradScaler; on the CPU from libtorch 2.3) or
                       off (fp32). A resumed run keeps its own
  --threads <n>        intra-op threads (default: libtorch's; with --nproc-per-node, cores / n)

Distributed (DistributedDataParallel; --batch-size is the global batch, split over the processes):
  --nproc-per-node <n> start n training processes on this machine
  --nnodes <n>         machines in the run (default 1); start the same command on each
  --node-rank <i>      this machine's index, 0 … nnodes-1 (default 0; machine 0 writes --out)
  --master-addr <a>    machine 0's address (default 127.0.0.1)
  --master-port <p>    a free port on machine 0 (default 29500)
  --max-restarts <n>   when a process fails, start this machine's processes again, up to n
                       times (default 0); they resume from the last checkpoint in --out
  --dist-timeout <s>   seconds a rank waits for the others (rendezvous, each collective)
                       before failing (default 1800, as PyTorch)
  -h, --help`,
  options: {
    dataset: str,
    data: str,
    arch: str,
    pretrained: bool,
    epochs: str,
    'batch-size': str,
    lr: str,
    momentum: str,
    'step-size': str,
    gamma: str,
    augment: bool,
    'image-size': str,
    limit: str,
    'test-limit': str,
    'log-every': str,
    seed: str,
    out: str,
    resume: bool,
    overwrite: bool,
    live: bool,
    port: str,
    device: str,
    amp: str,
    threads: str,
    'dist-timeout': str,
    ...Object.fromEntries(LAUNCH_FLAGS.map((f) => [f, str])),
  },
  run: runTraining,
};

/** `--amp`: one of auto, bf16, fp16, off (default auto). */
function ampFlag(v: Values): AmpSetting {
  const raw = (v.amp as string | undefined) ?? 'auto';
  if (!(AMP_SETTINGS as readonly string[]).includes(raw)) throw new UsageError(`--amp must be one of ${AMP_SETTINGS.join(', ')}, got '${raw}'`);
  return raw as AmpSetting;
}

/** Checks every flag, then trains here or starts the launcher. */
async function runTraining(v: Values, positionals: string[], argv: string[]): Promise<number> {
  noPositionals('train', positionals);
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
    amp: ampFlag(v),
  };
  const out = resolve((v.out as string) ?? join('runs', `${asked.dataset}-${asked.arch}`));
  if (v.port !== undefined && !v.live) throw new UsageError('--port goes with --live');
  const port = int(v, 'port', 0, 0, 65535);
  if (v.resume && v.overwrite) throw new UsageError('--resume continues the run in --out, --overwrite starts it again: pick one');
  const launcher = LAUNCH_FLAGS.some((f) => v[f] !== undefined);
  // --out is machine 0's, and rank 0's: the others write nothing there.
  const writesOut = launcher ? v['node-rank'] === undefined || int(v, 'node-rank', 0, 0) === 0 : (process.env.RANK ?? '0') === '0';
  // Started again by the launcher after a failure (--max-restarts): continue the run its first start began.
  const restarted = !launcher && Number(process.env.TORCHELASTIC_RESTART_COUNT ?? 0) > 0;
  if (writesOut && !v.resume && !restarted && !v.overwrite && existsSync(join(out, 'checkpoint.pth'))) {
    throw new Error(`${out} already holds a run: pass --resume to continue it or --overwrite to start again`);
  }
  if (writesOut && v.resume && !existsSync(join(out, 'checkpoint.pth'))) throw new Error(`--resume: no checkpoint in ${out}`);
  const distTimeout = int(v, 'dist-timeout', 1800, 1);
  const dev = device(v);
  // Refused here, before any download: fp16 on a CPU libtorch without it, or CUDA missing.
  planPrecision('--amp', asked.amp, dev);
  if (v.threads !== undefined) setNumThreads(int(v, 'threads', 1));
  if (launcher) {
    // A restart must not continue an older run that --overwrite replaces, should the first start fail before fit() clears it.
    if (writesOut && v.overwrite) rmSync(join(out, 'checkpoint.pth'), { force: true });
    return launchTraining(argv, v, asked.batchSize);
  }
  // A worker of the launcher (or of torchrun): torchrun's environment names the process group.
  const group = Number(process.env.WORLD_SIZE ?? 1) > 1 ? initProcessGroup({ initMethod: 'env://', timeout: distTimeout * 1000 }) : null;
  try {
    watchLauncher();
    const resume = Boolean(v.resume) || (restarted && resumable(group, out));
    return await trainIn(group, { ...v, resume }, asked, out, dev, port);
  } finally {
    if (group) destroyProcessGroup();
  }
}

/**
 * After a restart: whether rank 0 finds a checkpoint in `out` to continue from (there is none
 * when the failure came before the first one), agreed by every rank.
 */
function resumable(group: ProcessGroup | null, out: string): boolean {
  const here = (group?.rank() ?? 0) === 0 && existsSync(join(out, 'checkpoint.pth')) ? 1 : 0;
  return (group ? allReduceNumbers([here])[0] : here) > 0;
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
  if (asked.batchSize % world !== 0)
    throw new UsageError(`--batch-size ${asked.batchSize} does not split over ${world} processes: pass a multiple of ${world}`);
  // Read once: the run's settings are checked here, then fit() restores and frees it. Under DDP
  // rank 0 reads it and sends it to the others.
  const resume = v.resume ? loadCheckpoint(join(out, 'checkpoint.pth'), { processGroup: group }) : null;
  let model: VGG | null = null;
  let ddp: DistributedDataParallel | null = null;
  let optimizer: SGD | null = null;
  try {
    const run = resume ? continuedRun(resume, out, asked, v) : asked;
    const { dataset, arch, pretrained, imageSize, epochs, batchSize, lr, momentum, stepSize, gamma, logEvery } = run;
    if (pretrained && arch.startsWith('tutorial'))
      throw new UsageError('--pretrained needs one of vgg11 … vgg19_bn (the tutorial VGG has no pretrained weights)');
    if (imageSize !== null && dataset !== 'folder')
      throw new UsageError('--image-size applies to folder datasets (CIFAR-10 and Fashion-MNIST keep their size)');
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
    if (rank === 0 && v.overwrite && !v.resume) rmSync(join(out, 'report.html'), { force: true }); // fit() starts the rest of --out over
    say(
      `Training ${arch}${pretrained ? ' (ImageNet weights, new head)' : ''} on ${dataset}: ${trainSet.length} images, ` +
        `${epochs} epochs, batch ${batchSize}${world > 1 ? ` (${batchSize / world} on each of ${world} processes)` : ''}, ${dev}; writing to ${out}`,
    );
    ddp = group ? new DistributedDataParallel(model) : null;
    const result = await fit({
      model: ddp ?? model,
      optimizer,
      scheduler,
      epochs,
      device: dev,
      amp: run.amp,
      logEvery,
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
