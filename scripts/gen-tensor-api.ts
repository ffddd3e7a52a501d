// Generates the typed Tensor API from libtorch's own operator schemas.
//
//   npx tsx scripts/gen-tensor-api.ts dump   writes scripts/fixtures/aten-schemas/<release>.jsonl from the
//                                            running addon's dispatcher registry (run once per libtorch release)
//   npx tsx scripts/gen-tensor-api.ts        emits lib/tensor/generated/{methods,functions}.ts and
//                                            docs/tensor-api-skipped.md from every committed release's schemas
//
// Which aten names are torch.Tensor methods and torch.* functions comes from
// scripts/fixtures/torch-names/<release>.json (scripts/gen-torch-names.py, on
// the oracle): schemas do not carry native_functions.yaml's `variants:`.
// test/tensor-api.test.ts checks that the committed files match the running
// libtorch and that this script reproduces them.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULTED, KWONLY, type Kind, type Overload, OPTIONAL, type Ret, type Schema, SIZED, fromSchema } from '../lib/tensor/dispatch.js';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const SCHEMAS = join(ROOT, 'scripts/fixtures/aten-schemas');
const NAMES = join(ROOT, 'scripts/fixtures/torch-names');
const OUT = join(ROOT, 'lib/tensor/generated');

/** The public aten schemas of the running libtorch, one JSON line each, sorted (the committed form). */
export async function dumpRunning(): Promise<{ release: string; text: string }> {
  const { native } = await import('../lib/native.js');
  const all = (native as unknown as { atenSchemas(): Schema[] }).atenSchemas();
  const lines = all
    .filter((s) => !s[0].startsWith('_'))
    .map((s) => JSON.stringify(s))
    .sort();
  return { release: native.torchVersion().split('.').slice(0, 2).join('.'), text: `${lines.join('\n')}\n` };
}

// Reserved words cannot name a parameter or a function declaration.
const RESERVED = new Set([
  'var',
  'new',
  'delete',
  'in',
  'default',
  'function',
  'class',
  'if',
  'do',
  'for',
  'while',
  'with',
  'import',
  'export',
  'return',
  'switch',
  'case',
  'void',
  'this',
  'typeof',
  'instanceof',
  'let',
  'const',
  'yield',
  'enum',
  'try',
  'catch',
  'finally',
  'throw',
  'super',
  'extends',
  'null',
  'true',
  'false',
  'else',
  'break',
  'continue',
  'debugger',
  'static',
  'await',
  'arguments',
  'eval',
]);
const ident = (s: string): string => (RESERVED.has(s) ? `${s}_` : s);
const camel = (s: string): string => s.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());
const cmpRelease = (a: string, b: string): number => {
  const [a1, a2] = a.split('.').map(Number);
  const [b1, b2] = b.split('.').map(Number);
  return a1 - b1 || a2 - b2;
};

const TS_TYPES: Record<Kind, string> = {
  T: 'Tensor',
  TL: 'Tensor[]',
  OTL: '(Tensor | null)[]',
  S: 'Scalar',
  i: 'number',
  I: 'number[]',
  f: 'number',
  F: 'number[]',
  b: 'boolean',
  B: 'boolean[]',
  s: 'string',
  d: 'DType',
  L: "'strided'",
  M: 'MemoryFormat',
  D: 'Device',
  G: 'GeneratorLike',
};
function tsType(kind: Kind, flags: number): string {
  let t = TS_TYPES[kind];
  if (flags & SIZED && (kind === 'I' || kind === 'F')) t = `number | ${t}`;
  return flags & OPTIONAL ? `${t} | null` : t;
}
function tsReturn(r: Ret, method: boolean): string {
  if (Array.isArray(r)) return `[${r.map((x) => tsReturn(x, method)).join(', ')}]`;
  return { T: 'Tensor', self: method ? 'this' : 'Tensor', TL: 'Tensor[]', x: 'any', n: 'void' }[r];
}
/** TypeScript signatures of an overload (two when its last positional list may be given as Python's *args). */
function tsSignatures(ov: Overload, method: boolean): string[] {
  const pos = ov.p.filter((p) => !(p[3] & KWONLY));
  const named = ov.p.filter((p) => p[3] & (KWONLY | DEFAULTED));
  const required = ov.p.some((p) => p[3] & KWONLY && !(p[3] & DEFAULTED));
  const opts = named.length
    ? [`options${required ? '' : '?'}: { ${named.map((p) => `${p[1]}${p[3] & DEFAULTED ? '?' : ''}: ${tsType(p[2], p[3])}`).join('; ')} }`]
    : [];
  // A defaulted positional may be left out only when every later positional may too.
  let lastRequired = -1;
  pos.forEach((p, i) => {
    if (!(p[3] & DEFAULTED)) lastRequired = i;
  });
  const params = pos.map((p, i) => `${ident(p[1])}${i > lastRequired ? '?' : ''}: ${tsType(p[2], p[3])}`);
  const ret = tsReturn(ov.r, method);
  const out = [`(${[...params, ...opts].join(', ')}): ${ret}`];
  const last = pos[pos.length - 1];
  if (last && (last[2] === 'I' || last[2] === 'TL') && !(last[3] & OPTIONAL)) {
    const head = params.slice(0, -1).map((p) => p.replace('?:', ':'));
    out.push(`(${[...head, `...${ident(last[1])}: ${last[2] === 'I' ? 'number' : 'Tensor'}[]`].join(', ')}): ${ret}`);
  }
  return out;
}

// torchgen's sort_overloads: a signature taking a Tensor where another takes a
// Scalar is tried first; otherwise the registry's order is kept.
function sortOverloads(list: Overload[]): Overload[] {
  const beats = (a: Overload, b: Overload) =>
    a.p.some((p, i) => p[2] === 'T' && b.p[i]?.[2] === 'S') && !b.p.some((p, i) => p[2] === 'T' && a.p[i]?.[2] === 'S');
  const out: Overload[] = [];
  for (const ov of list) {
    const at = out.findIndex((o) => beats(ov, o));
    if (at < 0) out.push(ov);
    else out.splice(at, 0, ov);
  }
  return out;
}

function docLink(name: string, method: boolean): string {
  return `https://pytorch.org/docs/stable/generated/torch.${method ? 'Tensor.' : ''}${name}.html`;
}

export function generate(): Record<string, string> {
  const releases = readdirSync(SCHEMAS)
    .filter((f) => f.endsWith('.jsonl'))
    .map((f) => f.replace(/\.jsonl$/, ''))
    .sort(cmpRelease);
  const newest = releases[releases.length - 1];
  const byRelease = new Map<string, Map<string, Schema>>();
  for (const r of releases) {
    const m = new Map<string, Schema>();
    for (const line of readFileSync(join(SCHEMAS, `${r}.jsonl`), 'utf8').split('\n')) {
      if (!line) continue;
      const s = JSON.parse(line) as Schema;
      m.set(`${s[0]}.${s[1]}`, s);
    }
    byRelease.set(r, m);
  }
  const tensorNames = new Set<string>();
  const functionNames = new Set<string>();
  for (const f of readdirSync(NAMES)) {
    const n = JSON.parse(readFileSync(join(NAMES, f), 'utf8')) as { tensor: string[]; functions: string[] };
    for (const x of n.tensor) tensorNames.add(x);
    for (const x of n.functions) functionNames.add(x);
  }
  // Hand-written surface, read from the sources: generated names must not duplicate it.
  const tensorSrc = readFileSync(join(ROOT, 'lib/tensor/tensor.ts'), 'utf8');
  const classBody = tensorSrc.slice(tensorSrc.indexOf('export class Tensor'));
  const handMethods = new Set([...classBody.matchAll(/^ {2}(?:static |get |set |async )?([A-Za-z_][A-Za-z0-9_]*)\s*[(<=:]/gm)].map((m) => m[1]));
  const indexSrc = readFileSync(join(ROOT, 'lib/index.ts'), 'utf8').replace(/export \* from '.\/tensor\/generated\/functions.js';/, '');
  const topLevel = new Set<string>();
  for (const m of indexSrc.matchAll(/export (?:type )?\{([^}]*)\}/g))
    for (const n of m[1].split(','))
      if (n.trim())
        topLevel.add(
          n
            .trim()
            .split(/\s+as\s+/)
            .pop() as string,
        );
  for (const m of indexSrc.matchAll(/export \* as (\w+)/g)) topLevel.add(m[1]);

  // Every overload of the union of releases, newest schema first.
  const keys = new Set<string>();
  for (const m of byRelease.values()) for (const k of m.keys()) keys.add(k);
  const skipped: [string, string][] = [];
  const methods = new Map<string, Overload[]>();
  const functions = new Map<string, Overload[]>();
  for (const key of [...keys].sort()) {
    const present = releases.filter((r) => byRelease.get(r)?.has(key));
    const s = byRelease.get(present[present.length - 1])?.get(key) as Schema;
    const name = s[0];
    const skip = (why: string) => skipped.push([`aten::${key.replace(/\.$/, '')}`, why]);
    const asMethod = fromSchema(s, true);
    const asFunction = fromSchema(s, false);
    if (typeof asFunction === 'string') {
      skip(asFunction);
      continue;
    }
    const since = present[0] !== releases[0] ? present[0] : undefined;
    let alt: Record<string, string[]> | undefined;
    for (const r of present) {
      const names = ((byRelease.get(r) as Map<string, Schema>).get(key) as Schema)[2].map((a) => a[0]);
      if (names.join() !== s[2].map((a) => a[0]).join()) {
        alt ??= {};
        alt[r] = names;
      }
    }
    const extra = { ...(since ? { since } : {}), ...(alt ? { alt } : {}) };
    let used = false;
    // self need not come first: Tensor.polygamma(n) is aten::polygamma(int n, Tensor self).
    const isMethod = tensorNames.has(name) && typeof asMethod !== 'string';
    const jsName = camel(name.replace(/_$/, '')) + (name.endsWith('_') ? '_' : '');
    if (isMethod) {
      if (handMethods.has(jsName)) skip(`method: hand-written Tensor.${jsName} (lib/tensor/tensor.ts)`);
      else {
        const list = methods.get(jsName) ?? [];
        list.push({ ...(asMethod as Overload), ...extra });
        methods.set(jsName, list);
        used = true;
      }
    }
    if (functionNames.has(name)) {
      if (topLevel.has(jsName)) skip(`function: the package's top level already exports ${jsName}`);
      else {
        const list = functions.get(jsName) ?? [];
        list.push({ ...asFunction, ...extra });
        functions.set(jsName, list);
        used = true;
      }
    }
    if (!used && !isMethod && !functionNames.has(name)) skip('not public: neither torch.Tensor nor torch has this name');
  }

  const emitTable = (m: Map<string, Overload[]>) => {
    const names = [...m.keys()].sort();
    return { names, table: names.map((n) => sortOverloads(m.get(n) as Overload[])) };
  };
  const header = `// GENERATED by scripts/gen-tensor-api.ts from the aten schemas of libtorch ${releases.join(', ')}: do not edit.\n`;
  const M = emitTable(methods);
  let mts = `${header}// Tensor's methods for every public aten op with a torch.Tensor variant that lib/tensor/tensor.ts
// does not write by hand. Tensor extends this class; each method resolves its overload in dispatch.ts.
/* eslint-disable */
import type { Tensor, Scalar, Device } from '../tensor.js';
import type { DType } from '../dtype.js';
import type { GeneratorLike, MemoryFormat } from '../dispatch.js';
import { invoke, type Overload } from '../dispatch.js';

/** @internal the overloads of each method, in the order of the class (for tests). */
export const O: Overload[][] = JSON.parse(${JSON.stringify(JSON.stringify(M.table))});

/** The generated half of {@link Tensor}: one method per aten op (see docs/tensor-api.md). */
export class TensorMethods {
`;
  M.names.forEach((n, i) => {
    const ovs = M.table[i];
    const py = ovs[0].o;
    const sigs = [...new Set(ovs.flatMap((o) => tsSignatures(o, true)))];
    mts += `  /**\n   * \`torch.Tensor.${py}\` (${ovs.map((o) => `aten::${o.o}${o.v ? `.${o.v}` : ''}`).join(', ')}).${ovs.some((o) => o.since) ? ` Needs libtorch ≥ ${ovs.find((o) => o.since)?.since} for some overloads.` : ''}\n   * @see ${docLink(py, true)}\n   */\n`;
    for (const sig of sigs) mts += `  ${n}${sig};\n`;
    mts += `  ${n}(...a: any[]): any {\n    return invoke('${n}', O[${i}], this as never, a);\n  }\n`;
  });
  mts += '}\n';

  const F = emitTable(functions);
  let fts = `${header}// torch.* functions for every public aten op with a torch variant that the package does not
// already export by hand; lib/index.ts re-exports them at the top level (the package is \`torch\`).
import type { Tensor, Scalar, Device } from '../tensor.js';
import type { DType } from '../dtype.js';
import type { GeneratorLike, MemoryFormat } from '../dispatch.js';
import { invoke, type Overload } from '../dispatch.js';

/** @internal the overloads of each method, in the order of the class (for tests). */
export const O: Overload[][] = JSON.parse(${JSON.stringify(JSON.stringify(F.table))});
`;
  F.names.forEach((n, i) => {
    const ovs = F.table[i];
    const py = ovs[0].o;
    const sigs = [...new Set(ovs.flatMap((o) => tsSignatures(o, false)))];
    fts += `\n/**\n * \`torch.${py}\` (${ovs.map((o) => `aten::${o.o}${o.v ? `.${o.v}` : ''}`).join(', ')}).${ovs.some((o) => o.since) ? ` Needs libtorch ≥ ${ovs.find((o) => o.since)?.since} for some overloads.` : ''}\n * @see ${docLink(py, false)}\n */\n`;
    const id = ident(n);
    for (const sig of sigs) fts += `${id === n ? 'export ' : ''}function ${id}${sig};\n`;
    fts += `${id === n ? 'export ' : ''}function ${id}(...a: any[]): any {\n  return invoke('${n}', O[${i}], undefined, a);\n}\n`;
    if (id !== n) fts += `export { ${id} as ${n} };\n`;
  });

  let md = `# Skipped aten operators\n\nGenerated by \`scripts/gen-tensor-api.ts\` from the schemas of libtorch ${releases.join(', ')}; see [tensor-api.md](tensor-api.md).\nPrivate operators (names starting with \`_\`) are left out of the schema files altogether.\n\n| operator | reason |\n|---|---|\n`;
  for (const [k, why] of skipped) md += `| \`${k}\` | ${why} |\n`;
  return {
    [join(OUT, 'methods.ts')]: mts,
    [join(OUT, 'functions.ts')]: fts,
    [join(ROOT, 'docs/tensor-api-skipped.md')]: md,
    newest,
  };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  if (process.argv[2] === 'dump') {
    const { release, text } = await dumpRunning();
    writeFileSync(join(SCHEMAS, `${release}.jsonl`), text);
    console.log(`wrote scripts/fixtures/aten-schemas/${release}.jsonl`);
  } else {
    const files = generate();
    for (const [path, text] of Object.entries(files)) if (path !== 'newest') writeFileSync(path, text);
    console.log(`wrote ${Object.keys(files).length - 1} files`);
  }
}
