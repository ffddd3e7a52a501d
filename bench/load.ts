// bench/load: load() against torch.load on a VGG16-sized checkpoint (528 MiB of
// float32), in the legacy format (like torchvision's vgg16-397923af.pth) and the
// zip format. Every measurement is a fresh process, so peak RSS is the load's
// own; rounds alternate between the two sides so machine drift hits both, and
// medians are reported.
// Run: npx tsx bench/load.ts   (needs /usr/bin/python3 with torch; ~1.1 GB in $BENCH_DIR or the temp dir)
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';

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
  base_rss: number;
  peak_rss: number;
}

/** Child mode: one load() in this process, reported as JSON. */
async function child(file: string, verifyChecksums: boolean): Promise<void> {
  const { load } = await import('../lib/serialization/index.js');
  const { dispose } = await import('../lib/index.js');
  const base = process.memoryUsage.rss();
  const t = process.hrtime.bigint();
  const sd = load(file, { verifyChecksums });
  const seconds = Number(process.hrtime.bigint() - t) / 1e9;
  const peak = process.resourceUsage().maxRSS * 1024;
  dispose(sd);
  process.stdout.write(JSON.stringify({ seconds, base_rss: base, peak_rss: peak } satisfies Sample));
}

function spawnJson(cmd: string, args: string[]): Sample {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed:\n${r.stderr}`);
  return JSON.parse(r.stdout) as Sample;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const mib = (b: number): string => `${(b / 2 ** 20).toFixed(0)} MiB`;

function main(): void {
  const gen = spawnSync('/usr/bin/python3', [fileURLToPath(new URL('../scripts/fixtures/pth_large.py', import.meta.url)), DIR, '--no-hash'], {
    encoding: 'utf8', stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (gen.status !== 0) throw new Error('generating the checkpoints failed (is python3-torch installed?)');
  const self = fileURLToPath(import.meta.url);
  const py = fileURLToPath(new URL('./load.py', import.meta.url));
  const results: Record<string, { ts: Sample[]; torch: Sample[] }> = {};
  for (const c of CASES) results[c.name] = { ts: [], torch: [] };
  for (let round = 0; round < ROUNDS; round++) {
    for (const c of CASES) {
      const file = join(DIR, `vgg16-${c.file}.pth`);
      const args = [...process.execArgv, self, '--child', file, ...(c.verify ? [] : ['--no-verify'])];
      results[c.name].ts.push(spawnJson(process.execPath, args));
      results[c.name].torch.push(spawnJson('/usr/bin/python3', [py, file]));
    }
  }
  console.log(`load() vs torch.load (PyTorch on the same machine), VGG16-sized state dict, median of ${ROUNDS} fresh processes\n`);
  const rows: string[][] = [['format', 'side', 'load time', 'peak RSS', 'peak - RSS before load']];
  const ratios: string[] = [];
  for (const { name: f } of CASES) {
    const pick = (xs: Sample[]) => ({
      s: median(xs.map((x) => x.seconds)), peak: median(xs.map((x) => x.peak_rss)), delta: median(xs.map((x) => x.peak_rss - x.base_rss)),
    });
    const ts = pick(results[f].ts);
    const pt = pick(results[f].torch);
    rows.push([f, 'vgg-torch', `${ts.s.toFixed(3)} s`, mib(ts.peak), mib(ts.delta)]);
    rows.push([f, 'torch.load', `${pt.s.toFixed(3)} s`, mib(pt.peak), mib(pt.delta)]);
    ratios.push(`${f}: time ×${(ts.s / pt.s).toFixed(2)}, peak RSS ×${(ts.peak / pt.peak).toFixed(2)}, RSS growth ×${(ts.delta / pt.delta).toFixed(2)}`);
  }
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows) console.log(r.map((c, i) => c.padEnd(widths[i])).join('  '));
  console.log(`\nvgg-torch / PyTorch:\n  ${ratios.join('\n  ')}`);
}

const at = process.argv.indexOf('--child');
if (at >= 0) await child(process.argv[at + 1], !process.argv.includes('--no-verify'));
else main();
