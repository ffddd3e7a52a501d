// `vgg-torch summary`: an architecture's layers, output shapes, parameters and
// MACs (nn.summary, torchinfo's table).
import { summary } from '../nn/summary.js';
import { type Command, type Values, UsageError, int, oneOf, str } from './args.js';
import { ARCHS, buildModel } from './models.js';

export const summaryCommand: Command = {
  synopsis: ['summary <arch>', 'layers, output shapes, parameters and MACs of an architecture'],
  help: `Usage: vgg-torch summary <arch> [options]

Options:
  --input <CxHxW>      input shape (default 3x224x224; 3x32x32 for tutorial)
  --num-classes <n>    default 1000 (10 for tutorial)
  -h, --help`,
  options: { input: str, 'num-classes': str },
  run: runSummary,
};

function runSummary(v: Values, positionals: string[]): number {
  if (positionals.length !== 1) throw new UsageError(`summary takes one architecture: ${ARCHS.join(', ')}`);
  const arch = oneOf(positionals[0], ARCHS, 'architecture');
  const tutorial = arch.startsWith('tutorial');
  const input = ((v.input as string) ?? (tutorial ? '3x32x32' : '3x224x224')).split('x').map(Number);
  if (input.length !== 3 || !input.every((d) => Number.isInteger(d) && d > 0))
    throw new UsageError(`--input must look like 3x224x224, got '${String(v.input)}'`);
  const numClasses = int(v, 'num-classes', tutorial ? 10 : 1000);
  if (tutorial && input[1] !== input[2]) throw new UsageError('the tutorial VGG takes square inputs');
  const model = buildModel(
    { arch, numClasses, inChannels: input[0], imageSize: input[1], classes: [], mean: [], std: [], dataset: '', data: '', pretrained: false },
    'forLoading',
  );
  try {
    console.log(`${arch}\n${summary(model, input).toString()}`);
  } finally {
    model.dispose();
  }
  return 0;
}
