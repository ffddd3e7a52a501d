// The fuzzing harness of load() and loadSafetensors(): mutated .pth (zip, legacy,
// tar) and safetensors inputs (see inputs.ts), loaded by a child process (see
// worker.ts) that is restarted after every crash. Any outcome other than a
// success or the clear JS Error that load() promises is a finding:
//   crash     the child died (a signal: SIGSEGV, SIGABRT, ...; or a nonzero exit)
//   hang      one input took longer than --hang-ms
//   rss       the child's peak RSS went over --rss-mb
//   non-error a thrown value that is not an Error; unwrapped: an Error load() did not name
//   internal  a TypeError/RangeError/ReferenceError of ours, caught by luck
//   leak      a tensor left alive after the load (its result disposed)
// Findings are saved, with the input, under --findings (one folder per run).
// Runs are deterministic: input i depends only on --seed and i.
//
//   npm run fuzz -- --minutes 10 [--seed 1] [--iterations N] [--findings fuzz-findings] [--hang-ms 10000] [--rss-mb 1024]
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadSeeds, makeInput } from './inputs.js';
import type { Verdict } from './worker.js';

export interface FuzzOptions {
  seed: number;
  /** Stop after this many inputs (default: no limit; then `minutes` must be given). */
  iterations?: number;
  /** Stop after this long. */
  minutes?: number;
  /** Where findings are written (default: none are written). */
  findingsDir?: string;
  /** One input may take this long (default 10 s: a slow machine under load is not a hang). */
  hangMs?: number;
  /** Peak RSS of a worker above this is a finding (default 1 GiB; a worker starts at ~250 MB). */
  rssMb?: number;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
  /** Self-test only: faults for the worker to inject (see worker.ts). */
  inject?: string;
}

export interface Finding extends Omit<Verdict, 'kind'> {
  kind: Verdict['kind'] | 'crash' | 'hang';
  index: number;
  seed: string;
  mutations: string[];
  file?: string;
}

export interface FuzzReport {
  seed: number;
  iterations: number;
  seconds: number;
  perSecond: number;
  restarts: number;
  findings: Finding[];
}

const WORKER = fileURLToPath(new URL('./worker.ts', import.meta.url));
const STARTUP_MS = 60_000;

function rssOf(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

export async function runFuzz(opts: FuzzOptions): Promise<FuzzReport> {
  const { seed } = opts;
  const end = opts.iterations ?? Number.MAX_SAFE_INTEGER;
  if (opts.iterations === undefined && opts.minutes === undefined) throw new Error('runFuzz: give iterations or minutes');
  const hangMs = opts.hangMs ?? 10_000;
  const rssLimit = (opts.rssMb ?? 1024) * 2 ** 20;
  const t0 = Date.now();
  const deadline = opts.minutes === undefined ? Number.MAX_SAFE_INTEGER : t0 + opts.minutes * 60_000;
  const seeds = loadSeeds();
  const findings: Finding[] = [];
  const saved = new Map<string, number>();
  const dir = opts.findingsDir ? resolve(opts.findingsDir, `seed-${seed}-${new Date(t0).toISOString().replace(/[:.]/g, '-')}`) : undefined;

  const record = (index: number, v: Verdict | { kind: 'crash' | 'hang'; detail: string }): void => {
    const input = makeInput(seeds, seed, index);
    const f: Finding = { ...v, index, seed: input.seed, mutations: input.mutations };
    // Same kind and message but for the numbers in it: keep the first few inputs.
    const signature = `${v.kind}:${v.detail.replace(/\d+/g, 'N')}`;
    const n = saved.get(signature) ?? 0;
    saved.set(signature, n + 1);
    if (dir && n < 3) {
      mkdirSync(dir, { recursive: true });
      const base = join(dir, `${v.kind}-${index}`);
      f.file = `${base}.${input.kind === 'safetensors' ? 'safetensors' : 'pt'}`;
      writeFileSync(f.file, input.bytes);
      writeFileSync(`${base}.json`, `${JSON.stringify({ ...f, runSeed: seed }, null, 2)}\n`);
    }
    findings.push(f);
    opts.log?.(`finding: ${v.kind} at input ${index} (${input.seed}; ${input.mutations.join(', ')}): ${v.detail}`);
  };

  let next = 0;
  let restarts = -1;
  let lastLog = t0;
  while (next < end && Date.now() < deadline) {
    restarts++;
    const from = next;
    const outcome = await new Promise<{ current: number; finished: boolean; reported: boolean }>((done, fail) => {
      const child = spawn(process.execPath, ['--import', 'tsx', WORKER, String(seed), String(from), String(end), String(deadline), String(rssLimit)], {
        stdio: ['ignore', 'ignore', 'pipe', 'pipe'],
        env: opts.inject ? { ...process.env, VGG_TORCH_FUZZ_INJECT: opts.inject } : process.env,
      });
      let current = -1;
      let startedAt = Date.now();
      let finished = false;
      let reported = false; // a finding was already recorded for `current`
      let stderr = '';
      let pending = '';
      child.stderr!.on('data', (d: Buffer) => {
        stderr = (stderr + d.toString()).slice(-4000);
      });
      (child.stdio[3] as NodeJS.ReadableStream).on('data', (d: Buffer) => {
        pending += d.toString();
        for (let nl = pending.indexOf('\n'); nl >= 0; nl = pending.indexOf('\n')) {
          const line = pending.slice(0, nl);
          pending = pending.slice(nl + 1);
          if (line[0] === 'S') {
            current = Number(line.slice(2));
            startedAt = Date.now();
            reported = false;
            next = current + 1;
          } else if (line[0] === 'F') {
            const sp = line.indexOf(' ', 2);
            record(Number(line.slice(2, sp)), JSON.parse(line.slice(sp + 1)) as Verdict);
            reported = true;
          } else if (line[0] === 'X') {
            harness = `fuzz: making input ${line.slice(2)} failed (a bug of the harness)`;
          } else if (line === 'D') {
            finished = true;
          }
        }
        const now = Date.now();
        if (opts.log && now - lastLog > 10_000) {
          lastLog = now;
          const s = (now - t0) / 1000;
          opts.log(`${next} inputs in ${s.toFixed(0)} s (${(next / s).toFixed(0)}/s), ${findings.length} finding(s), ${restarts} restart(s)`);
        }
      });
      let killedFor: 'hang' | 'rss' | null = null;
      let harness: string | null = null;
      const watch = setInterval(() => {
        const limit = current < 0 ? STARTUP_MS : hangMs;
        if (Date.now() - startedAt > limit) killedFor = 'hang';
        else if (child.pid && rssOf(child.pid) > 2 * rssLimit) killedFor = 'rss';
        if (killedFor) {
          clearInterval(watch);
          child.kill('SIGKILL');
        }
      }, 100);
      child.on('error', fail);
      child.on('close', (code, signal) => {
        clearInterval(watch);
        if (harness) {
          fail(new Error(harness));
          return;
        }
        if (current < 0 && !finished) {
          fail(new Error(`fuzz worker failed before its first input (code ${code}, signal ${signal}):\n${stderr}`));
          return;
        }
        if (killedFor === 'hang' && current >= 0 && !reported) record(current, { kind: 'hang', detail: `no answer after ${hangMs} ms` });
        else if (killedFor === 'rss' && !reported) record(current, { kind: 'rss', detail: `RSS over ${(2 * rssLimit) / 2 ** 20} MiB: killed` });
        else if (!finished && code !== 3 && !reported) {
          record(current, {
            kind: 'crash',
            detail: `worker died: ${signal ? `signal ${signal}` : `exit code ${code}`}; ${stderr.trim().split('\n').slice(-3).join(' | ')}`,
          });
        }
        done({ current, finished, reported });
      });
    });
    if (outcome.finished) break;
    next = outcome.current + 1;
  }
  const seconds = (Date.now() - t0) / 1000;
  return { seed, iterations: next, seconds, perSecond: next / seconds, restarts, findings };
}

function arg(args: string[], name: string): string | undefined {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : undefined;
}

async function cli(): Promise<void> {
  const args = process.argv.slice(2);
  const num = (name: string): number | undefined => {
    const v = arg(args, name);
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isFinite(n) || n < 0) throw new Error(`fuzz: ${name} must be a non-negative number, got '${v}'`);
    return n;
  };
  const minutes = num('--minutes');
  const iterations = num('--iterations');
  if (minutes === undefined && iterations === undefined) {
    console.error('usage: npm run fuzz -- --minutes N [--seed S] [--iterations N] [--findings DIR] [--hang-ms MS] [--rss-mb MB]');
    process.exit(2);
  }
  const seed = num('--seed') ?? Date.now() & 0x7fffffff;
  const findingsDir = arg(args, '--findings') ?? 'fuzz-findings';
  console.log(
    `fuzz: seed ${seed}${minutes !== undefined ? `, ${minutes} min` : ''}${iterations !== undefined ? `, ${iterations} inputs` : ''}, findings under ${findingsDir}/`,
  );
  const r = await runFuzz({ seed, minutes, iterations, findingsDir, hangMs: num('--hang-ms'), rssMb: num('--rss-mb'), log: (l) => console.log(l) });
  const byKind = new Map<string, number>();
  for (const f of r.findings) byKind.set(f.kind, (byKind.get(f.kind) ?? 0) + 1);
  console.log(
    `fuzz: seed ${r.seed}: ${r.iterations} inputs in ${r.seconds.toFixed(0)} s (${r.perSecond.toFixed(0)}/s), ${r.restarts} restart(s), ` +
      `${r.findings.length} finding(s)${byKind.size ? `: ${[...byKind].map(([k, n]) => `${k} ${n}`).join(', ')}` : ''}`,
  );
  process.exit(r.findings.length ? 1 : 0);
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  cli().catch((e) => {
    console.error(e);
    process.exit(2);
  });
}
