// Bad calls across the public API: each must throw an Error whose message names the argument,
// the value and what was expected. Every call runs in its own process, so that an abort or a
// segfault is a failure of that call and not the end of the run.
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { CASES, PRELUDE } from './bad-calls.cases.js';

const root = fileURLToPath(new URL('..', import.meta.url));
// The built package (test/global-setup.ts keeps dist/ current): what users call, and a child
// starts in about a third of the time the TypeScript loader would take.
const bundle = `${root}dist/index.js`;
const child = fileURLToPath(new URL('./bad-calls.child.mjs', import.meta.url));
const CONCURRENCY = 2;

interface Outcome {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function runOne(code: string): Promise<Outcome> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [child, `${PRELUDE}\nreturn await (${code});`], {
      cwd: root,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, BAD_CALLS_BUNDLE: bundle },
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d) => (stdout += d));
    p.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => p.kill('SIGKILL'), 60_000);
    p.on('error', reject);
    p.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, stdout, stderr });
    });
  });
}

// Runs every call up front with limited concurrency; each `it` then checks its own outcome.
const outcomes = new Map<string, Promise<Outcome>>();
beforeAll(() => {
  const queue = [...CASES];
  const settle = new Map<string, (o: Promise<Outcome>) => void>();
  for (const [name] of CASES) outcomes.set(name, new Promise((r) => settle.set(name, (o) => void o.then(r, r))));
  const worker = async (): Promise<void> => {
    for (let c = queue.shift(); c; c = queue.shift()) {
      const run = runOne(c[1]);
      settle.get(c[0])!(run);
      await run.catch(() => undefined);
    }
  };
  void Promise.all(Array.from({ length: CONCURRENCY }, worker));
});

describe('bad calls give clear errors, in a process of their own', () => {
  it('covers at least 200 calls, each named once', () => {
    expect(CASES.length).toBeGreaterThanOrEqual(200);
    expect(new Set(CASES.map((c) => c[0])).size).toBe(CASES.length);
  });

  for (const [name, code, message] of CASES) {
    it(name, async () => {
      const o = await outcomes.get(name)!;
      const line = /^RESULT (.*)$/m.exec(o.stdout)?.[1];
      expect(o.signal, `killed by ${o.signal}: ${o.stderr.slice(-2000)}`).toBeNull();
      expect(o.status, o.stderr.slice(-2000)).toBe(0);
      expect(line, `no result line; stderr: ${o.stderr.slice(-2000)}`).toBeDefined();
      const r = JSON.parse(line!) as { threw: boolean; isError?: boolean; name?: string; message?: string; value?: string };
      expect(r.threw, `${code} returned ${r.value} instead of throwing`).toBe(true);
      expect(r.isError, `${code} threw a non-Error ${r.name}`).toBe(true);
      expect(r.message).toMatch(message);
      // A message is for users: never libtorch's C++ backtrace.
      expect(r.message).not.toMatch(/Exception raised from|frame #\d/);
    }, 600_000);
  }
});
