// Shared test helpers: fixture tensors in and out, bitwise comparison, the Python oracle.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DataLoader, type DType, FashionMNIST, Subset, type Tensor, fromBuffer, makeLayers, manualSeed, nn, optim, tidy, transforms } from '../lib/index.js';

export interface EncodedTensor {
  dtype: string;
  shape: number[];
  data: string; // base64 of the contiguous bytes
}

/**
 * The live oracle: Debian's /usr/bin/python3, whose python3-torch links the libtorch the addon
 * is built against; or VGG_TORCH_PYTHON, e.g. a venv with the pip torch the addon was built
 * against (LIBTORCH=<venv>/lib/python3.x/site-packages/torch).
 */
export const PYTHON = process.env.VGG_TORCH_PYTHON || '/usr/bin/python3';

/** `torch.__version__` of the oracle (`'2.6.0'`, `'2.13.0+cpu'`), or null where it has no torch. */
export const oracleTorchVersion: string | null = (() => {
  if (!existsSync(PYTHON)) return null;
  const r = spawnSync(PYTHON, ['-W', 'ignore', '-c', 'import torch; print(torch.__version__)'], { encoding: 'utf8', timeout: 120_000 });
  return r.status === 0 ? r.stdout.trim() : null;
})();

/** Whether the oracle's torch is importable, so live oracle runs are possible. */
export const hasTorchPython: boolean = oracleTorchVersion !== null;

/** In CI the live oracle must run: a missing python3-torch is a failure, not a skip. */
export const requireLiveOracle = process.env.CI === 'true';

export function decode(e: EncodedTensor): Tensor {
  const bytes = Buffer.from(e.data, 'base64');
  // Copy into a fresh, aligned buffer; the tensor borrows it.
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  return fromBuffer(copy, { dtype: e.dtype as DType, shape: e.shape });
}

/** Raw bytes of a tensor in its own dtype (half types are compared after widening on both sides). */
export function bytesOf(t: Tensor): Buffer {
  const a = t.contiguous().toTypedArray();
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

/** Describes how `actual` differs from `expected`; null when equal bit for bit. */
export function bitwiseDiff(actual: Tensor, expected: EncodedTensor): string | null {
  if (actual.dtype !== expected.dtype) return `dtype ${actual.dtype} != ${expected.dtype}`;
  if (actual.shape.join(',') !== expected.shape.join(',')) return `shape [${actual.shape}] != [${expected.shape}]`;
  const want = decode(expected);
  try {
    if (bytesOf(actual).equals(bytesOf(want))) return null;
    const a = actual.toTypedArray();
    const b = want.toTypedArray();
    let worst = 0;
    let at = -1;
    for (let i = 0; i < a.length; i++) {
      const d = Math.abs(Number(a[i]) - Number(b[i]));
      if (!(d <= worst)) {
        worst = d;
        at = i;
      }
    }
    return `values differ: max |diff| ${worst} at flat index ${at} (${a[at]} vs ${b[at]})`;
  } finally {
    want.dispose();
  }
}

/**
 * Runs the oracle's Python without blocking this process's event loop (vitest's
 * worker must keep answering its RPC while a long oracle runs).
 */
export function python(args: string[], opts: { timeoutMs?: number; env?: Record<string, string> } = {}): Promise<ChildResult> {
  const env = opts.env ? { ...process.env, ...opts.env } : process.env;
  return outcome(spawn(PYTHON, args, { stdio: ['ignore', 'pipe', 'pipe'], env }), opts.timeoutMs ?? 600_000);
}

/** Collects a child's output and how it ended; kills it after `timeoutMs`. */
function outcome(child: ChildProcess, timeoutMs: number): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stdout, stderr });
    });
  });
}

/** Runs a fixture script with the Python oracle into a temp file and returns its JSON. */
export async function runOracle<T>(script: string, ...args: string[]): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'vgg-torch-oracle-'));
  const out = join(dir, 'out.json');
  const r = await python([script, out, ...args]);
  if (r.status !== 0) throw new Error(`${script} failed: ${r.stderr}`);
  return JSON.parse(readFileSync(out, 'utf8')) as T;
}

export function readFixture<T>(name: string): T {
  return JSON.parse(readFileSync(new URL(`./fixtures/${name}`, import.meta.url), 'utf8')) as T;
}

/** What a child process did: its exit code or the signal that killed it, and its output. */
export interface ChildResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs an ES module (plain JS) in a fresh `node` with `--import tsx`, so that a segfault or an
 * abort is a result to assert on, not the end of the test run. `LIB` in the code is the URL of
 * lib/index.ts. Asynchronous, so vitest's worker keeps answering while it runs.
 */
export function runNodeChild(code: string, opts: { timeoutMs?: number; nodeArgs?: string[] } = {}): Promise<ChildResult> {
  const lib = new URL('../lib/index.ts', import.meta.url).href;
  const source = `const LIB = ${JSON.stringify(lib)};\n${code}`;
  const child = spawn(process.execPath, [...(opts.nodeArgs ?? []), '--import', 'tsx', '--input-type=module', '-e', source], {
    stdio: ['ignore', 'pipe', 'pipe'],
    cwd: new URL('..', import.meta.url).pathname,
  });
  return outcome(child, opts.timeoutMs ?? 180_000);
}

/**
 * Runs a JS file in a plain `node` (no tsx: what users run) from `cwd`, killed after
 * `timeoutMs`. Asynchronous, so vitest's worker keeps answering while it runs.
 */
export function runNodeFile(file: string, cwd: string, timeoutMs = 120_000): Promise<ChildResult> {
  return outcome(spawn(process.execPath, [file], { cwd, stdio: ['ignore', 'pipe', 'pipe'] }), timeoutMs);
}

/** The fixture form of a tensor: dtype, shape and base64 of its contiguous bytes. */
export function encode(t: Tensor): EncodedTensor {
  return { dtype: t.dtype, shape: t.shape, data: bytesOf(t).toString('base64') };
}

/** What a run of the `vgg-torch` command gave. */
export interface CliRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Starts the `vgg-torch` command (lib/cli/index.ts) in a child Node process; signals sent to `child` reach it directly. */
export function startCli(args: string[], env: Record<string, string> = {}): StartedCli {
  const cli = new URL('../lib/cli/index.ts', import.meta.url).pathname;
  return collect(
    spawn(process.execPath, ['--import', 'tsx', cli, ...args], {
      env: { ...process.env, ...env, FORCE_COLOR: '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    }),
  );
}

/** A started command: its process, its outcome, its output so far. */
export interface StartedCli {
  child: ChildProcess;
  done: Promise<CliRun>;
  output: () => string;
  errors: () => string;
}

/** Collects the output of `child` (started with piped stdout and stderr) until it and the processes sharing its pipes end. */
export function collect(child: ChildProcess): StartedCli {
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  // 'close': the pipes are closed too, also by the workers a launcher started.
  const done = new Promise<CliRun>((res, rej) => {
    child.on('error', rej);
    child.on('close', (code) => res({ code, stdout, stderr }));
  });
  return { child, done, output: () => stdout, errors: () => stderr };
}

/** Runs the `vgg-torch` command to its end. */
export const runCli = (args: string[], env?: Record<string, string>): Promise<CliRun> => startCli(args, env).done;

/** {@link trainFashionMnistNet}'s model and the data sets it was trained and is tested on. */
export interface FashionMnistNet {
  model: nn.Sequential;
  trainSet: FashionMNIST;
  testSet: FashionMNIST;
  /** The first 1,000 test images, 250 at a time: what agreement with float32 is measured on. */
  testBatches: () => DataLoader<any, [Tensor, Tensor]>;
  dispose: () => void;
}

/**
 * A small VGG (makeLayers [16, 'M', 32, 'M'] with batch norm, a 64-unit classifier with dropout)
 * trained for one epoch on the first `images` Fashion-MNIST training images (seed 0, Adam 1e-3,
 * batch 64): a real trained model in seconds on 2 cores, for the tests that measure how often
 * int8 or bfloat16 inference agrees with float32. Pauses between steps keep vitest's worker answering.
 */
export async function trainFashionMnistNet(images: number): Promise<FashionMnistNet> {
  manualSeed(0);
  const transform = new transforms.Compose([new transforms.ToTensor(), new transforms.Normalize([0.5], [0.5])]);
  const trainSet = new FashionMNIST({ train: true, transform });
  const testSet = new FashionMNIST({ train: false, transform });
  const model = new nn.Sequential(
    ...makeLayers([16, 'M', 32, 'M'], { batchNorm: true, inChannels: 1 }).children(),
    new nn.Flatten(),
    new nn.Linear(32 * 7 * 7, 64),
    new nn.ReLU(true),
    new nn.Dropout(),
    new nn.Linear(64, 10),
  );
  const opt = new optim.Adam(model.parameters(), { lr: 1e-3 });
  const loss = new nn.CrossEntropyLoss();
  const first = (n: number) => Array.from({ length: n }, (_, i) => i);
  for (const [x, y] of new DataLoader(new Subset(trainSet, first(images)), { batchSize: 64, shuffle: true })) {
    tidy(() => {
      opt.zeroGrad();
      loss(model(x), y).backward();
      opt.step();
    });
    x.dispose();
    y.dispose();
    await new Promise((r) => setImmediate(r));
  }
  opt.dispose();
  model.eval();
  return {
    model,
    trainSet,
    testSet,
    testBatches: () => new DataLoader(new Subset(testSet, first(1000)), { batchSize: 250 }),
    dispose: () => {
      model.dispose();
      trainSet.dispose?.();
      testSet.dispose?.();
    },
  };
}
