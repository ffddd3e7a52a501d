// Builds dist/ (what users load) before the tests when it is missing or older than
// any source file, so the built-package tests never run against a stale build.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

export default function setup(): void {
  const built = ['dist/index.js', 'dist/index.cjs', 'dist/cli.js'];
  const sources = Math.max(newest('lib'), statSync('tsup.config.ts').mtimeMs, statSync('package.json').mtimeMs);
  if (built.every((f) => existsSync(f) && statSync(f).mtimeMs >= sources)) return;
  const r = spawnSync(process.execPath, ['node_modules/tsup/dist/cli-default.js'], { stdio: 'inherit' });
  if (r.status !== 0) throw new Error('global setup: building dist/ with tsup failed');
}
