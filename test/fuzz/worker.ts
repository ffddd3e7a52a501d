// A fuzz worker: makes inputs start..end of a run itself (they depend only on
// the seed and their number) and loads them one after another. Before each load
// it writes "S <i>" to fd 3 with a blocking write, so when it dies (a signal, an
// abort) or hangs the parent knows which input did it; a finding it can see
// itself (a thrown non-Error, an internal JS error, a leaked tensor, peak RSS
// over the limit) is written as "F <i> <json>". "D" means it reached the end.
// Usage (by run.ts): node --import tsx worker.ts <seed> <start> <end> <deadline ms> <rss limit bytes>
import { writeSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { memory, tidy, zeros } from '../../lib/index.js';
import { load, loadSafetensors } from '../../lib/serialization/index.js';
import { FormatError } from '../../lib/serialization/source.js';
import { type InputKind, loadSeeds, makeInput } from './inputs.js';

export interface Verdict {
  kind: 'non-error' | 'unwrapped' | 'internal' | 'leak' | 'rss';
  detail: string;
}

/** What a failed load says about the loader: null when it is the clear Error every bad input must give. */
export function judge(e: unknown, kind: InputKind): Verdict | null {
  if (!(e instanceof Error)) return { kind: 'non-error', detail: `threw ${typeof e}: ${String(e).slice(0, 200)}` };
  const fn = kind === 'safetensors' ? 'loadSafetensors' : 'load';
  if (!e.message.startsWith(`${fn}(): `)) return { kind: 'unwrapped', detail: `${e.name}: ${e.message.slice(0, 300)}` };
  // The root cause: a FormatError or libtorch's own Error is a judgement on the
  // file; a TypeError, RangeError or ReferenceError is a bug of ours that happened
  // to be caught (an unchecked read, a runaway recursion, a bad assumption).
  let root: unknown = e;
  while (root instanceof Error && root.cause !== undefined) root = root.cause;
  if (root instanceof Error && !(root instanceof FormatError) && (root instanceof TypeError || root instanceof RangeError || root instanceof ReferenceError)) {
    return { kind: 'internal', detail: `${root.name}: ${root.message.slice(0, 300)}` };
  }
  return null;
}

/**
 * The harness's self-test: VGG_TORCH_FUZZ_INJECT="3:abort,5:hang" makes input 3
 * abort the process and input 5 hang instead of loading, and so on, so a test
 * can check that each kind of failure is caught, attributed and survived.
 */
const inject = new Map(
  (process.env.VGG_TORCH_FUZZ_INJECT ?? '')
    .split(',')
    .filter(Boolean)
    .map((x) => {
      const [i, what] = x.split(':');
      return [Number(i), what] as const;
    }),
);

function injectFault(what: string): void {
  if (what === 'abort') process.abort();
  if (what === 'segv') process.kill(process.pid, 'SIGSEGV');
  if (what === 'hang') for (;;);
  if (what === 'throw') throw 'a string'; // eslint-disable-line no-throw-literal
  if (what === 'leak') tensorLeak.push(zeros([1]));
  if (what === 'rss') rssHog.push(Buffer.alloc(Number(process.argv[6]) + 2 ** 20, 1));
}
const tensorLeak: unknown[] = [];
const rssHog: Buffer[] = [];

function main(): void {
  const [seed, start, end, deadline, rssLimit] = process.argv.slice(2).map(Number);
  const send = (line: string): void => {
    const b = Buffer.from(`${line}\n`);
    let done = 0;
    while (done < b.length) done += writeSync(3, b, done);
  };
  const seeds = loadSeeds();
  let live = memory().tensors;
  for (let i = start; i < end; i++) {
    if ((i & 15) === 0 && Date.now() > deadline) break;
    let input: ReturnType<typeof makeInput>;
    try {
      input = makeInput(seeds, seed, i);
    } catch (e) {
      send(`X ${i} ${JSON.stringify(String((e as Error)?.stack ?? e))}`); // a bug of the harness, not a finding
      process.exit(2);
    }
    send(`S ${i}`);
    let verdict: Verdict | null = null;
    try {
      const fault = inject.get(i);
      if (fault) injectFault(fault);
      tidy(() => {
        (input.kind === 'safetensors' ? loadSafetensors : load)(input.bytes);
      });
    } catch (e) {
      verdict = judge(e, input.kind);
    }
    const now = memory().tensors;
    if (now !== live && !verdict) verdict = { kind: 'leak', detail: `${now - live} tensor(s) left alive after the load` };
    live = now;
    const peak = process.resourceUsage().maxRSS * 1024;
    if (!verdict && peak > rssLimit) verdict = { kind: 'rss', detail: `peak RSS ${Math.round(peak / 2 ** 20)} MiB` };
    if (verdict) send(`F ${i} ${JSON.stringify(verdict)}`);
    if (peak > rssLimit) process.exit(3); // the peak is sticky: a fresh process measures the next inputs
  }
  send('D');
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
