// bench/load: load() against torch.load on a VGG16-sized checkpoint (528 MiB of
// float32), in the legacy format (like torchvision's vgg16-397923af.pth) and the
// zip format. Every measurement is a fresh process, so peak RSS is the load's
// own; rounds alternate between the two sides so machine drift hits both, and
// medians are reported.
// A second table loads 40,000 small tensors (legacy files: the 2017 FloatTensor +
// BUILD style and torch.save's _rebuild_tensor_v2), where the per-tensor work
// counts: it was quadratic once. CPU seconds are shown besides wall time, since
// a shared machine's wall time mostly measures the neighbours.
// Run: npx tsx bench/load.ts [--many-only]   (needs /usr/bin/python3 with torch; ~1.1 GB in $BENCH_DIR or the temp dir)
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { machine } from './machine.js';

const ROUNDS = Number(process.env.ROUNDS ?? 3);
const DIR = process.env.BENCH_DIR ?? join(tmpdir(), 'vgg-torch-bench-load');
// 'zip, no CRC' is load(file, { verifyChecksums: false }): what torch.load checks (nothing).
const CASES = [
  { name: 'legacy', file: 'legacy', verify: true },
  { name: 'zip', file: 'zip', verify: true },
  { name: 'zip, no CRC', file: 'zip', verify: false },
] as const;

interface Sample {
  seconds: number;
  cpu_seconds: number;
  base_rss: number;
  peak_rss: number;
}

/** Child mode: one load() in this process, reported as JSON. */
async function child(file: string, verifyChecksums: boolean): Promise<void> {
  const { load } = await import('../lib/serialization/index.js');
  const { dispose } = await import('../lib/index.js');
  const base = process.memoryUsage.rss();
  const t = process.hrtime.bigint();
  const cpu = process.cpuUsage();
  const sd = load(file, { verifyChecksums });
  const seconds = Number(process.hrtime.bigint() - t) / 1e9;
  const used = process.cpuUsage(cpu);
  const cpuSeconds = (used.user + used.system) / 1e6;
  const peak = process.resourceUsage().maxRSS * 1024;
  dispose(sd);
  process.stdout.write(JSON.stringify({ seconds, cpu_seconds: cpuSeconds, base_rss: base, peak_rss: peak } satisfies Sample));
}

function spawnJson(cmd: string, args: string[]): Sample {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed:\n${r.stderr}`);
  return JSON.parse(r.stdout) as Sample;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mib = (b: number): string => `${(b / 2 ** 20).toFixed(0)} MiB`;

interface Case {
  name: string;
  file: string;
  verify: boolean;
}

/** Alternating rounds of load() and torch.load on each case, each in a fresh process; prints the medians. */
function compare(title: string, cases: readonly Case[]): void {
  const self = fileURLToPath(import.meta.url);
  const py = fileURLToPath(new URL('./load.py', import.meta.url));
  const results: Record<string, { ts: Sample[]; torch: Sample[] }> = {};
  for (const c of cases) results[c.name] = { ts: [], torch: [] };
  for (let round = 0; round < ROUNDS; round++) {
    for (const c of cases) {
      const args = [...process.execArgv, self, '--child', c.file, ...(c.verify ? [] : ['--no-verify'])];
      results[c.name].ts.push(spawnJson(process.execPath, args));
      results[c.name].torch.push(spawnJson('/usr/bin/python3', [py, c.file]));
    }
  }
  console.log(machine());
  console.log(`\nload() vs torch.load (PyTorch on the same machine), ${title}, median of ${ROUNDS} fresh processes\n`);
  const rows: string[][] = [['format', 'side', 'load time', 'CPU time', 'peak RSS', 'peak - RSS before load']];
  const ratios: string[] = [];
  for (const { name: f } of cases) {
    const pick = (xs: Sample[]) => ({
      s: median(xs.map((x) => x.seconds)),
      cpu: median(xs.map((x) => x.cpu_seconds)),
      peak: median(xs.map((x) => x.peak_rss)),
      delta: median(xs.map((x) => x.peak_rss - x.base_rss)),
    });
    const ts = pick(results[f].ts);
    const pt = pick(results[f].torch);
    rows.push([f, 'vgg-torch', `${ts.s.toFixed(3)} s`, `${ts.cpu.toFixed(3)} s`, mib(ts.peak), mib(ts.delta)]);
    rows.push([f, 'torch.load', `${pt.s.toFixed(3)} s`, `${pt.cpu.toFixed(3)} s`, mib(pt.peak), mib(pt.delta)]);
    ratios.push(
      `${f}: time ×${(ts.s / pt.s).toFixed(2)}, CPU ×${(ts.cpu / pt.cpu).toFixed(2)}, peak RSS ×${(ts.peak / pt.peak).toFixed(2)}, RSS growth ×${(ts.delta / pt.delta).toFixed(2)}`,
    );
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) console.log(r.map((c, i) => c.padEnd(widths[i])).join('  '));
  console.log(`\nvgg-torch / PyTorch:\n  ${ratios.join('\n  ')}`);
}

function python(args: string[], what: string): void {
  const gen = spawnSync('/usr/bin/python3', args, { encoding: 'utf8', stdio: ['ignore', 'inherit', 'inherit'] });
  if (gen.status !== 0) throw new Error(`generating ${what} failed (is python3-torch installed?)`);
}

// 40,000 tensors of 3 floats: the 2017 style through scripts/fixtures/pth.py, and torch.save's legacy format.
const MANY = `
import sys, os, collections, torch
sys.path.insert(0, sys.argv[1])
import pth
sd = collections.OrderedDict(('t%d' % i, torch.tensor([i, i + 0.5, -i], dtype=torch.float32)) for i in range(40000))
pth.write_2017(os.path.join(sys.argv[2], 'many-build.pth'), sd, 'build')
torch.save(sd, os.path.join(sys.argv[2], 'many-v2.pth'), _use_new_zipfile_serialization=False)
`;

function main(): void {
  mkdirSync(DIR, { recursive: true });
  if (!process.argv.includes('--many-only')) {
    python([fileURLToPath(new URL('../scripts/fixtures/pth_large.py', import.meta.url)), DIR, '--no-hash'], 'the checkpoints');
    compare(
      'VGG16-sized state dict',
      CASES.map((c) => ({ ...c, file: join(DIR, `vgg16-${c.file}.pth`) })),
    );
  }
  python(['-c', MANY, fileURLToPath(new URL('../scripts/fixtures/', import.meta.url)), DIR], 'the 40,000-tensor files');
  compare('40,000 tensors of 3 floats (legacy)', [
    { name: 'legacy, 2017 BUILD', file: join(DIR, 'many-build.pth'), verify: true },
    { name: 'legacy, torch.save', file: join(DIR, 'many-v2.pth'), verify: true },
  ]);
}

const at = process.argv.indexOf('--child');
if (at >= 0) await child(process.argv[at + 1], !process.argv.includes('--no-verify'));
else main();
