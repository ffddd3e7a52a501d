// The one argument parser of every command (node:util's parseArgs) and the
// checks of flag values. A bad command line throws UsageError: one line on
// stderr, exit code 2, never a stack trace.
import { parseArgs } from 'node:util';
import { cuda } from '../runtime.js';

/** A mistake in the command line: exit code 2. */
export class UsageError extends Error {}

/** A command's flags, as parseArgs takes them (every value is checked by the command). */
export type Options = Record<string, { type: 'string' | 'boolean' }>;
export type Values = Record<string, string | boolean | undefined>;

/** One `vgg-torch <name>` command. */
export interface Command {
  /** Its line in `vgg-torch --help`: the name and its positionals, then what it does. */
  synopsis: [string, string];
  /** The text of `vgg-torch <name> --help`. */
  help: string;
  options: Options;
  /** Runs with the parsed flags; `argv` is the command line after the command's name. Resolves to the exit code. */
  run(v: Values, positionals: string[], argv: string[]): Promise<number> | number;
}

/** Options entries: a flag with a value (--epochs 5), one without (--augment). */
export const str = { type: 'string' } as const;
export const bool = { type: 'boolean' } as const;

/** `argv` parsed with the command's flags and -h/--help; unknown flags and missing values are UsageErrors. */
export function parse(command: string, argv: string[], options: Options): { values: Values; positionals: string[] } {
  try {
    return parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: true, strict: true }) as {
      values: Values;
      positionals: string[];
    };
  } catch (e) {
    throw new UsageError(`${parseArgsMessage((e as Error).message)} (see 'vgg-torch ${command} --help')`);
  }
}

/** parseArgs's messages in the style of the others (theirs go on about positionals that start with '-'). */
function parseArgsMessage(message: string): string {
  const option = /^(?:Unknown option|Option) '(-[^' ]*)/.exec(message)?.[1];
  if (message.startsWith('Unknown option')) return `unknown option '${option}'`;
  if (/argument missing/.test(message)) return `${option} needs a value`;
  if (/argument is ambiguous/.test(message)) return `${option} needs a value (write ${option}=<value> for one that starts with '-')`;
  if (/does not take an argument/.test(message)) return `${option} takes no value`;
  return message.split('\n')[0];
}

/** `--name` as an integer from `min` to `max`, `dflt` when absent. */
export function int(v: Values, name: string, dflt: number, min = 1, max = Number.MAX_SAFE_INTEGER): number {
  const raw = v[name];
  if (raw === undefined) return dflt;
  const x = /^\d+$/.test(String(raw)) ? Number(raw) : NaN; // not 0x40 or 1e1
  if (!Number.isSafeInteger(x) || x < min || x > max) {
    throw new UsageError(`--${name} must be an integer ${max < Number.MAX_SAFE_INTEGER ? `from ${min} to ${max}` : `>= ${min}`}, got '${String(raw)}'`);
  }
  return x;
}

/** `--name` as a non-negative number, `dflt` when absent. */
export function num(v: Values, name: string, dflt: number): number {
  const raw = v[name];
  if (raw === undefined) return dflt;
  const x = Number(raw);
  if (!Number.isFinite(x) || x < 0) throw new UsageError(`--${name} must be a non-negative number, got '${String(raw)}'`);
  return x;
}

export function oneOf(value: string, allowed: readonly string[], what: string): string {
  if (!allowed.includes(value)) throw new UsageError(`unknown ${what} '${value}' (choose from ${allowed.join(', ')})`);
  return value;
}

/** `--device`: cpu or cuda, cuda by default when there is one. */
export function device(v: Values): 'cpu' | 'cuda' {
  const d = (v.device as string | undefined) ?? (cuda.isAvailable() ? 'cuda' : 'cpu');
  oneOf(d, ['cpu', 'cuda'], 'device');
  if (d === 'cuda' && !cuda.isAvailable()) throw new Error('--device cuda: no CUDA device is available to this libtorch build');
  return d as 'cpu' | 'cuda';
}

/** A command that takes no positionals got one. */
export function noPositionals(command: string, positionals: string[]): void {
  if (positionals.length) throw new UsageError(`unexpected argument '${positionals[0]}' (see 'vgg-torch ${command} --help')`);
}
