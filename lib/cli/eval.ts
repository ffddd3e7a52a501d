// `vgg-torch eval`: a checkpoint's accuracy, per-class accuracy and confusion
// matrix on its test set, printed and written to report.html beside it.
import { dirname, join, resolve } from 'node:path';
import { DataLoader } from '../data/dataloader.js';
import { writeChartHtml } from '../train/chart.js';
import { evaluate, evaluationRecord, formatEvaluation } from '../train/evaluate.js';
import { type Command, type Values, UsageError, device, int, oneOf, str } from './args.js';
import { DATASETS, checkClasses, datasets, evenlySpaced } from './datasets.js';
import { modelFromCheckpoint } from './models.js';

export const evalCommand: Command = {
  synopsis: ['eval <checkpoint>', 'evaluate a checkpoint: accuracy, per-class accuracy, confusion matrix'],
  help: `Usage: vgg-torch eval <checkpoint> [options]

Prints overall and per-class accuracy and the confusion matrix, and writes them
(with the checkpoint's training curves) to report.html beside the checkpoint.

Options:
  --dataset <d>        cifar10, fashion-mnist or folder (default: the one it was trained on)
  --data <dir>         dataset folder (default: the one it was trained on)
  --limit <n>          evaluate on n test images, evenly spaced
  --batch-size <n>     default 500
  --device <d>         cpu or cuda
  -h, --help`,
  options: { dataset: str, data: str, limit: str, 'batch-size': str, device: str },
  run: runEval,
};

async function runEval(v: Values, positionals: string[]): Promise<number> {
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
