#!/usr/bin/env node
// The `vgg-torch` command: predict (pretrained ImageNet or a trained
// checkpoint), train (the CIFAR-10 tutorial's recipe on CIFAR-10,
// Fashion-MNIST or an image folder), eval (a checkpoint's report), summary and
// export (ONNX or TorchScript), serve (HTTP, TorchServe's API); one file per command beside this one.
// Every failure is one line on stderr and a non-zero exit code: 2 for usage
// errors, 1 for everything else, 130 after Ctrl-C.
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { inferenceCompiler } from '../jit/predict.js';
import { setInferenceCompiler } from '../nn/modules/module.js';
import { type Command, UsageError, parse } from './args.js';
import { evalCommand } from './eval.js';
import { exportCommand } from './export.js';
import { predictCommand } from './predict.js';
import { serveCommand } from './serve.js';
import { summaryCommand } from './summary.js';
import { trainCommand } from './train.js';

// The bin is a package entry of its own, assembled as lib/index.ts is: predict's
// forwardAsync compiles through lib/jit.
setInferenceCompiler(inferenceCompiler);

/** The commands, in the order `vgg-torch --help` lists them. */
const COMMANDS: Record<string, Command> = {
  predict: predictCommand,
  train: trainCommand,
  eval: evalCommand,
  summary: summaryCommand,
  export: exportCommand,
  serve: serveCommand,
};

const HELP = `vgg-torch — PyTorch's VGG family on libtorch, from the command line

Usage: vgg-torch <command> [options]

Commands:
${Object.values(COMMANDS)
  .map(({ synopsis: [usage, what] }) => `  ${usage.padEnd(20)}${what}`)
  .join('\n')}

Run 'vgg-torch <command> --help' for a command's options.`;

/** Runs the CLI with `argv` (without `node` and the script); resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    console.log(HELP);
    return 0;
  }
  const command = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!command) throw new UsageError(`unknown command '${name}' (commands: ${Object.keys(COMMANDS).join(', ')}; see 'vgg-torch --help')`);
  const { values, positionals } = parse(name, rest, command.options);
  if (values.help) {
    console.log(command.help);
    return 0;
  }
  return command.run(values, positionals, rest);
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
      const message = (e instanceof Error ? e.message : String(e))
        .split('\n')
        .map((l) => l.trim())
        .filter(Boolean)
        .join('; ');
      // A worker of a distributed run says which rank it is.
      const rank = Number(process.env.WORLD_SIZE ?? 1) > 1 && process.env.RANK !== undefined ? ` (rank ${process.env.RANK})` : '';
      process.stderr.write(`vgg-torch${rank}: ${message}\n`);
      process.exitCode = e instanceof UsageError ? 2 : 1;
    },
  );
}
