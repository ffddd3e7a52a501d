// The import graph of lib/ goes straight down (ARCHITECTURE.md): every room (a
// folder, or a top-level file) imports only from rooms on a lower level, so there
// is no circle and no arrow back up.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const LIB = resolve(dirname(fileURLToPath(import.meta.url)), '../lib');

/** The levels of ARCHITECTURE.md's table. */
const LEVELS: Record<string, number> = {
  native: 0,
  utils: 0,
  tensor: 1,
  autograd: 2,
  runtime: 2,
  generator: 2,
  distributed: 2,
  amp: 4,
  nn: 3,
  optim: 3,
  io: 3,
  serialization: 4,
  transforms: 4,
  jit: 4,
  hub: 5,
  onnx: 5,
  data: 6,
  models: 6,
  train: 7,
  ao: 7,
  serve: 7,
  index: 8,
  cli: 8,
};

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  );
}

const roomOf = (file: string): string => relative(LIB, file).split('/')[0].replace(/\.ts$/, '');

/** [from room, to room, from file, import specifier] for every relative import between rooms. */
function arrows(): [string, string, string, string][] {
  const out: [string, string, string, string][] = [];
  for (const file of sources(LIB)) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(/(?:\bfrom|\bimport)\s*\(?\s*['"](\.{1,2}\/[^'"]+)['"]/g)) {
      const target = resolve(dirname(file), m[1]);
      const [from, to] = [roomOf(file), roomOf(target)];
      if (from !== to) out.push([from, to, relative(LIB, file), m[1]]);
    }
  }
  return out;
}

describe('the import graph of lib/', () => {
  const all = arrows();

  it('names every room in the layer table', () => {
    const rooms = new Set(sources(LIB).map(roomOf));
    expect([...rooms].filter((r) => !(r in LEVELS))).toEqual([]);
    expect(all.length).toBeGreaterThan(50);
  });

  it('has no arrow back up (and so no circle)', () => {
    const up = all
      .filter(([from, to]) => LEVELS[to] >= LEVELS[from])
      .map(([from, to, file, spec]) => `${file} → ${spec} (${from} ${LEVELS[from]} → ${to} ${LEVELS[to]})`);
    expect(up).toEqual([]);
  });
});
