// load()/save() and safetensors against PyTorch's own files and reader.
// The committed files under test/fixtures/pth (scripts/fixtures/pth.py) make this
// run without Python; where /usr/bin/python3 has torch, the oracle is re-run live,
// and what save() writes is read back by torch.load.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { FormatError, Tensor, arange, cuda, dispose, memory, nn, randn, tensor, tidy, zeros } from '../lib/index.js';
import { OrderedDict, load, loadSafetensors, loadSafetensorsMetadata, save, saveSafetensors } from '../lib/serialization/index.js';
import { tensorBytes } from '../lib/serialization/bytes.js';
import { PickleWriter } from '../lib/serialization/pickle.js';
import { ZipWriter } from '../lib/serialization/zip.js';
import { probeStorage } from '../lib/serialization/save.js';
import { hasTorchPython, python, requireLiveOracle, PYTHON } from './helpers.js';

const FIXTURES = new URL('./fixtures/pth/', import.meta.url);
const fixturePath = (name: string): string => new URL(name, FIXTURES).pathname;
const live = hasTorchPython || requireLiveOracle;
const tmp = mkdtempSync(join(tmpdir(), 'vgg-torch-pth-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// ---- values as pth.py encodes them ---------------------------------------------------

type Enc =
  | null
  | boolean
  | string
  | { $: 'none' }
  | { $: 'int'; v: string }
  | { $: 'float'; bits: string }
  | { $: 'bytes'; b64: string }
  | { $: 'list' | 'tuple' | 'set'; items: Enc[] }
  | { $: 'dict'; items: [Enc, Enc][] }
  | { $: 'odict'; items: [Enc, Enc][]; attrs: [string, Enc][] }
  | {
      $: 'tensor';
      dtype: string;
      shape: number[];
      stride: number[] | null;
      offset: number | null;
      requires_grad: boolean;
      storage: number | null;
      data: string;
    };

interface Expected {
  torch: string;
  files: Record<string, { value: Enc; note: string }>;
}

function floatBits(x: number): string {
  const b = Buffer.alloc(8);
  b.writeDoubleLE(x);
  return b.toString('hex');
}

/** Compares a loaded value with its encoding; returns the differences. */
function diff(actual: unknown, expected: Enc): string[] {
  const problems: string[] = [];
  const storages: [Tensor, number][] = [];
  const walk = (a: unknown, e: Enc, path: string): void => {
    const bad = (why: string): void => {
      problems.push(`${path || '$'}: ${why}`);
    };
    if (e === null || typeof e === 'boolean' || typeof e === 'string') {
      if (a !== e) bad(`got ${String(a)}, expected ${JSON.stringify(e)}`);
      return;
    }
    switch (e.$) {
      case 'none':
        if (a !== null) bad(`expected null, got ${String(a)}`);
        return;
      case 'int': {
        const want = BigInt(e.v);
        const safe = want <= BigInt(Number.MAX_SAFE_INTEGER) && want >= -BigInt(Number.MAX_SAFE_INTEGER);
        if (safe ? typeof a !== 'number' : typeof a !== 'bigint') bad(`int ${e.v} came back as ${typeof a}`);
        else if (BigInt(a as number | bigint) !== want) bad(`got ${String(a)}, expected ${e.v}`);
        return;
      }
      case 'float':
        if (typeof a !== 'number' || floatBits(a) !== e.bits) bad(`got ${String(a)}, expected float bits ${e.bits}`);
        return;
      case 'bytes':
        if (!Buffer.isBuffer(a) || !a.equals(Buffer.from(e.b64, 'base64'))) bad('bytes differ');
        return;
      case 'list':
      case 'tuple':
        if (!Array.isArray(a)) return bad(`expected a ${e.$}, got ${typeof a}`);
        if (Object.isFrozen(a) !== (e.$ === 'tuple')) bad(`a ${e.$} came back ${Object.isFrozen(a) ? 'frozen' : 'not frozen'}`);
        if (a.length !== e.items.length) return bad(`length ${a.length}, expected ${e.items.length}`);
        e.items.forEach((x, i) => walk(a[i], x, `${path}[${i}]`));
        return;
      case 'set': {
        if (!(a instanceof Set)) return bad('expected a Set');
        const items = [...a].sort((x, y) => Number(x) - Number(y));
        if (items.length !== e.items.length) return bad(`size ${items.length}, expected ${e.items.length}`);
        e.items.forEach((x, i) => walk(items[i], x, `${path}{${i}}`));
        return;
      }
      case 'dict':
      case 'odict': {
        if (!(a instanceof Map)) return bad(`expected a Map, got ${typeof a}`);
        if (a instanceof OrderedDict !== (e.$ === 'odict')) bad(`${e.$} came back as ${a.constructor.name}`);
        const entries = [...a.entries()];
        if (entries.length !== e.items.length) return bad(`${entries.length} entries, expected ${e.items.length}`);
        e.items.forEach(([k, v], i) => {
          const label = typeof k === 'string' ? k : JSON.stringify(k);
          walk(entries[i][0], k, `${path}<key ${label}>`);
          walk(entries[i][1], v, `${path}[${label}]`);
        });
        if (e.$ === 'odict') {
          const attrs = (a as OrderedDict).attributes;
          if (attrs.size !== e.attrs.length) bad(`${attrs.size} attributes, expected ${e.attrs.length}`);
          for (const [k, v] of e.attrs) walk(attrs.get(k), v, `${path}.${k}`);
        }
        return;
      }
      case 'tensor': {
        if (!(a instanceof Tensor)) return bad(`expected a Tensor, got ${typeof a}`);
        if (a.dtype !== e.dtype) return bad(`dtype ${a.dtype}, expected ${e.dtype}`);
        if (a.shape.join() !== e.shape.join()) return bad(`shape [${a.shape}], expected [${e.shape}]`);
        if (e.stride && a.stride().join() !== e.stride.join()) bad(`stride [${a.stride()}], expected [${e.stride}]`);
        if (e.offset !== null && a.numel() > 0 && probeStorage(a)?.offset !== e.offset) bad(`storage offset ${probeStorage(a)?.offset}, expected ${e.offset}`);
        if (a.requiresGrad !== e.requires_grad) bad(`requiresGrad ${a.requiresGrad}`);
        if (!Buffer.from(tensorBytes(a.contiguous())).equals(Buffer.from(e.data, 'base64'))) bad('values differ');
        if (e.storage !== null) storages.push([a, e.storage]);
        return;
      }
    }
  };
  walk(actual, expected, '');
  // Tensors that shared a storage in Python share one here, and no others do.
  for (let i = 0; i < storages.length; i++) {
    for (let j = i + 1; j < storages.length; j++) {
      const [a, ga] = storages[i];
      const [b, gb] = storages[j];
      if (a.sharesStorageWith(b) !== (ga === gb)) problems.push(`storage groups ${ga} and ${gb}: sharing is ${a.sharesStorageWith(b)}`);
    }
  }
  return problems;
}

/** Encodes a JS value as PyTorch will see what save() writes (for pth_check.py). */
function encode(v: unknown): Enc {
  const groups: Tensor[] = [];
  const enc = (x: unknown): Enc => {
    if (x === null || x === undefined) return { $: 'none' };
    if (typeof x === 'boolean' || typeof x === 'string') return x;
    if (typeof x === 'bigint') return { $: 'int', v: x.toString() };
    if (typeof x === 'number') return Number.isSafeInteger(x) && !Object.is(x, -0) ? { $: 'int', v: String(x) } : { $: 'float', bits: floatBits(x) };
    if (Buffer.isBuffer(x)) return { $: 'bytes', b64: x.toString('base64') };
    if (x instanceof Tensor) {
      let g = groups.findIndex((t) => t.numel() > 0 && x.numel() > 0 && t.sharesStorageWith(x));
      if (g < 0 && x.numel() > 0) g = groups.push(x) - 1;
      return {
        $: 'tensor',
        dtype: x.dtype,
        shape: x.shape,
        stride: null,
        offset: null,
        requires_grad: x.requiresGrad,
        storage: g < 0 ? null : g,
        data: Buffer.from(tensorBytes(x.contiguous())).toString('base64'),
      };
    }
    if (Array.isArray(x)) return { $: Object.isFrozen(x) ? 'tuple' : 'list', items: x.map(enc) };
    if (x instanceof Set) return { $: 'set', items: [...x].sort((a, b) => Number(a) - Number(b)).map(enc) };
    if (x instanceof Map) {
      const attrs = x instanceof OrderedDict ? [...x.attributes].map(([k, a]) => [k, enc(a)] as [string, Enc]) : [];
      return { $: 'odict', items: [...x].map(([k, a]) => [enc(k), enc(a)] as [Enc, Enc]), attrs };
    }
    return { $: 'dict', items: Object.entries(x as object).map(([k, a]) => [k, enc(a)] as [Enc, Enc]) };
  };
  return enc(v);
}

function pythonCheck(mode: string, file: string, value: unknown): void {
  const exp = join(tmp, `expected-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(exp, JSON.stringify(encode(value)));
  const r = spawnSync(PYTHON, ['scripts/fixtures/pth_check.py', mode, file, exp], { encoding: 'utf8', timeout: 120_000 });
  // Differences go to stderr with exit 1; torch 2.x may also print warnings there, which are not failures.
  expect(r.status, `pth_check.py ${mode} ${file}: ${r.stderr}`).toBe(0);
}

const LOADABLE = [
  'zip_nested.pt',
  'legacy_nested.pt',
  'zip_protocol5.pt',
  'legacy_protocol4.pt',
  'vgg_2017_v1.pth',
  'vgg_2017_build.pth',
  'tar_0_1_9.pt',
  'zip64.pt',
  'zip_deflated.pt',
  'zip_bigendian.pt',
];

function checkFixtures(dir: string, expected: Expected): void {
  for (const name of LOADABLE) {
    const before = memory().tensors;
    const value = load(join(dir, name));
    const problems = tidy(() => diff(value, expected.files[name].value));
    dispose(value);
    expect(problems, name).toEqual([]);
    expect(memory().tensors, `${name}: tensors left after dispose`).toBe(before);
  }
  const st = loadSafetensors(join(dir, 'tensors.safetensors'));
  const want = expected.files['tensors.safetensors'].value as Extract<Enc, { $: 'dict' }>;
  const byName = new Map(want.items.map(([k, v]) => [k as string, v]));
  expect([...st.keys()].sort()).toEqual([...byName.keys()].sort());
  for (const [k, t] of st)
    expect(
      tidy(() => diff(t, byName.get(k)!)),
      k,
    ).toEqual([]);
  dispose(st);
  expect(loadSafetensorsMetadata(join(dir, 'tensors.safetensors'))).toEqual({ format: 'pt', source: 'pth.py' });
}

// ---- files written by PyTorch -------------------------------------------------------------

describe('load(): files written by PyTorch (committed fixtures)', () => {
  const expected = JSON.parse(readFileSync(fixturePath('expected.json'), 'utf8')) as Expected;

  it('reads every format with exact values, types, strides, offsets and shared storages', () => {
    checkFixtures(fixturePath(''), expected);
  });

  it('reads a Buffer, an ArrayBuffer and a file URL the same as a path', () => {
    const bytes = readFileSync(fixturePath('zip_nested.pt'));
    const want = expected.files['zip_nested.pt'].value;
    for (const input of [bytes, bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length), new URL('zip_nested.pt', FIXTURES)]) {
      const v = load(input as Buffer);
      expect(diff(v, want)).toEqual([]);
      dispose(v);
    }
  });

  it('gives the 2017 VGG files to a module as PyTorch does (no num_batches_tracked, no _metadata)', () => {
    for (const name of ['vgg_2017_v1.pth', 'vgg_2017_build.pth']) {
      tidy(() => {
        const sd = load<Map<string, Tensor>>(fixturePath(name));
        expect(sd).toBeInstanceOf(OrderedDict);
        expect((sd as OrderedDict).attributes.size).toBe(0);
        const features = new nn.Sequential(new nn.Conv2d(3, 4, 3), new nn.BatchNorm2d(4), new nn.ReLU(), new nn.Conv2d(4, 8, 3));
        const classifier = new nn.Sequential(new nn.Linear(8, 16), new nn.ReLU(), new nn.Dropout(), new nn.Linear(16, 10));
        const model = new nn.Sequential();
        Object.assign(model, { features, classifier });
        const fsd = new Map([...sd].filter(([k]) => k.startsWith('features.')).map(([k, v]) => [k.slice(9), v]));
        const csd = new Map([...sd].filter(([k]) => k.startsWith('classifier.')).map(([k, v]) => [k.slice(11), v]));
        expect(features.loadStateDict(fsd)).toEqual({ missingKeys: [], unexpectedKeys: [] });
        expect(classifier.loadStateDict(csd)).toEqual({ missingKeys: [], unexpectedKeys: [] });
        expect(features.stateDict().get('1.running_var')!.equal(sd.get('features.1.running_var')!)).toBe(true);
        features.dispose();
        classifier.dispose();
      });
    }
  });

  it('returns tensors owned by the caller: all freed by dispose(), none left by tidy()', () => {
    const before = memory();
    const sd = load<Map<string, unknown>>(fixturePath('zip_nested.pt'));
    expect(memory().tensors).toBeGreaterThan(before.tensors);
    dispose(sd);
    expect(memory()).toEqual(before);
    tidy(() => {
      load(fixturePath('legacy_nested.pt'));
    });
    expect(memory()).toEqual(before);
  });

  it('mapLocation: a device, a table or a function of the saved location; bad devices are errors', () => {
    for (const mapLocation of ['cpu', { cpu: 'cpu' }, (loc: string) => (loc === 'cpu' ? 'cpu' : null)] as const) {
      const v = load<Map<string, Map<string, Tensor>>>(fixturePath('zip_nested.pt'), { mapLocation });
      expect(v.get('views')!.get('row')!.device).toBe('cpu');
      dispose(v);
    }
    // 'cpu:0' is another device string for the CPU: it takes the path that moves storages.
    const owned = memory();
    const moved = load<Map<string, Map<string, Tensor>>>(fixturePath('zip_nested.pt'), { mapLocation: 'cpu:0' });
    const want = JSON.parse(readFileSync(fixturePath('expected.json'), 'utf8')) as Expected;
    expect(tidy(() => diff(moved, want.files['zip_nested.pt'].value))).toEqual([]);
    dispose(moved);
    expect(memory()).toEqual(owned);
    const before = memory().tensors;
    expect(() => load(fixturePath('zip_nested.pt'), { mapLocation: 'gpu7' })).toThrow(/load\(\): .*zip_nested\.pt: .*not a device/);
    expect(memory().tensors).toBe(before);
  });

  it.skipIf(!cuda.isAvailable())("mapLocation 'cuda' moves storages, views of one storage stay views of one", () => {
    const v = load<Map<string, Map<string, Tensor>>>(fixturePath('zip_nested.pt'), { mapLocation: 'cuda' });
    const views = v.get('views')!;
    expect(views.get('row')!.device).toMatch(/^cuda/);
    expect(views.get('row')!.sharesStorageWith(views.get('base')!)).toBe(true);
    expect(views.get('t')!.cpu().equal(views.get('base')!.cpu().t())).toBe(true);
    dispose(v);
  });
});

describe.skipIf(!live)('load(): files written by PyTorch (live oracle)', () => {
  it('re-runs pth.py now and reads every file it writes', async () => {
    const dir = join(tmp, 'oracle');
    const r = await python(['scripts/fixtures/pth.py', dir], { timeoutMs: 300_000 });
    expect(r.status, r.stderr).toBe(0);
    checkFixtures(dir, JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) as Expected);
  });
});

// ---- save() ----------------------------------------------------------------------------

/** Everything save() takes, with views that share storages and every dtype. */
function richObject(withFloats: boolean): unknown {
  const base = arange(24, { dtype: 'float32' }).reshape(4, 6);
  const dtypes = new OrderedDict<string, Tensor>([
    ['float32', randn(2, 3)],
    ['float64', randn([3], { dtype: 'float64' })],
    ['float16', randn(5).half()],
    ['bfloat16', randn(5).to('bfloat16')],
    ['int64', tensor([0n, -1n, 2n ** 62n, -(2n ** 63n), 2n ** 53n + 1n], { dtype: 'int64' })],
    ['int32', tensor([-(2 ** 31), 2 ** 31 - 1, 7], { dtype: 'int32' })],
    ['int16', tensor([-32768, 32767], { dtype: 'int16' })],
    ['int8', tensor([-128, 127, 0], { dtype: 'int8' })],
    ['uint8', tensor([0, 255, 17], { dtype: 'uint8' })],
    ['bool', tensor([true, false, true])],
  ]);
  const od = new OrderedDict<string, number>([
    ['z', 1],
    ['a', 2],
  ]);
  od.attributes.set('_metadata', new OrderedDict([['', { version: 1 }]]));
  const shared = randn(3);
  const obj: Record<string, unknown> = {
    epoch: 7,
    step: 2n ** 53n + 1n,
    big: 2n ** 60n + 123n,
    neg_big: -(2n ** 70n) - 5n,
    name: 'vgg16 — ünïcode ✓ 😀',
    none: null,
    flags: [true, false],
    nested: new Map<unknown, unknown>([
      ['a', [[1, 2], Object.freeze([3, Object.freeze([4, 5])])]],
      [5, 'int key'],
      [Object.freeze([1, 2]), 'tuple key'],
      [null, 'none key'],
    ]),
    ordered: od,
    views: new Map([
      ['base', base],
      ['row', base.select(0, 1)],
      ['col', base.select(1, 2)],
      ['t', base.t()],
      ['slice', base.index('1:3', '::2')],
      ['tail', base.view(-1).narrow(0, 20, 4)],
    ]),
    dtypes,
    scalar: tensor(3.5),
    empty: zeros(0, 3),
    transposed: randn(3, 5).t(),
    requires_grad: randn(3).requiresGrad_(),
    same_twice: [shared, shared],
    tied: [shared.detach(), shared.detach()], // two handles on one storage
  };
  if (withFloats) {
    Object.assign(obj, {
      lr: 0.125,
      pi: Math.PI,
      nan: NaN,
      neg_inf: -Infinity,
      neg_zero: -0,
      history: [Object.freeze([1, 0.5, 'a']), Object.freeze([2, 0.25, null]), Object.freeze([])],
      bytes: Buffer.from([0, 1, 97, 98, 99, 255]),
      set: new Set([1, 2, 3]),
    });
  }
  return obj;
}

describe('save()', () => {
  it('round-trips through load() with values, types, tuples, shared storages and strides', () => {
    tidy(() => {
      const obj = richObject(true);
      const file = join(tmp, 'rich.pt');
      save(obj, file);
      const back = load<Map<string, unknown>>(file);
      // Plain objects come back as dicts (Maps), Maps as OrderedDicts.
      const want = encode(obj) as Extract<Enc, { $: 'dict' }>;
      expect(diff(back, { ...want, $: 'dict' })).toEqual([]);
      const views = back.get('views') as Map<string, Tensor>;
      expect(views.get('t')!.stride()).toEqual([1, 6]);
      expect(views.get('slice')!.stride()).toEqual([6, 2]);
      expect(probeStorage(views.get('tail')!)!.offset).toBe(20);
      const tied = back.get('tied') as Tensor[];
      expect(tied[0].sharesStorageWith(tied[1])).toBe(true);
      const twice = back.get('same_twice') as Tensor[];
      expect(twice[0]).toBe(twice[1]);
      expect((back.get('transposed') as Tensor).stride()).toEqual([1, 5]);
    });
  });

  it('writes the zip layout torch.save writes (folder named after the file, 64-byte aligned data)', () => {
    tidy(() => {
      const file = join(tmp, 'layout.model.pt');
      save({ w: randn(3) }, file);
      const bytes = readFileSync(file);
      expect(bytes.subarray(0, 4).toString('latin1')).toBe('PK\x03\x04');
      const names = bytes.toString('latin1').match(/layout\/[a-z./0-9]+/g)!;
      expect(new Set(names)).toEqual(new Set(['layout/data.pkl', 'layout/data/0', 'layout/version', 'layout/byteorder']));
      const back = load<Map<string, Tensor>>(bytes);
      expect(back.get('w')!.numel()).toBe(3);
    });
  });

  it('writes ZIP64 records when asked and reads them back', () => {
    tidy(() => {
      const file = join(tmp, 'z64.pt');
      const obj = { a: arange(10), b: [randn(2, 2)] };
      save(obj, file, { forceZip64: true });
      expect(readFileSync(file).includes(Buffer.from([0x50, 0x4b, 0x06, 0x06]))).toBe(true);
      expect(diff(load(file), { ...(encode(obj) as Extract<Enc, { $: 'dict' }>), $: 'dict' })).toEqual([]);
    });
  });

  it('is atomic: a failed save leaves the old file and no temporary file', () => {
    const dir = mkdtempSync(join(tmp, 'atomic-'));
    const file = join(dir, 'ckpt.pt');
    tidy(() => save({ v: 1 }, file));
    const before = readFileSync(file);
    expect(() => save({ v: 2, f: () => 0 }, file)).toThrow(/save\(\): cannot save a value of type function at \["f"\]/);
    expect(readFileSync(file).equals(before)).toBe(true);
    expect(readdirSync(dir)).toEqual(['ckpt.pt']);
    expect(() => save({ v: 1 }, join(dir, 'missing', 'x.pt'))).toThrow(/ENOENT/);
    tidy(() => save({ v: 3 }, file));
    expect(load(file)).toEqual(new Map([['v', 3]]));
    expect(readdirSync(dir)).toEqual(['ckpt.pt']);
  });

  it('refuses what it cannot write, naming where it is', () => {
    const model = new nn.Linear(2, 2);
    expect(() => save({ model }, join(tmp, 'm.pt'))).toThrow(/save module\.stateDict\(\) instead/);
    model.dispose();
    const t = randn(2);
    t.dispose();
    expect(() => save([t], join(tmp, 'd.pt'))).toThrow(/disposed/);
    expect(() => save([Symbol('x')], join(tmp, 's.pt'))).toThrow(/at \[0\]/);
    const loop: unknown[] = [];
    loop.push(loop);
    tidy(() => save(loop, join(tmp, 'loop.pt')));
    const back = load<unknown[]>(join(tmp, 'loop.pt'));
    expect(back[0]).toBe(back);
  });
});

describe.skipIf(!live)('save() → torch.load (live)', () => {
  it('torch.load(weights_only=True) reads what save() wrote, equal value for value', () => {
    tidy(() => {
      const obj = richObject(false);
      const file = join(tmp, 'wo.pt');
      save(obj, file);
      pythonCheck('weights_only', file, obj);
    });
  });

  it('torch.load reads floats, bytes and sets too (which 1.13 allows only without weights_only)', () => {
    tidy(() => {
      const obj = richObject(true);
      const file = join(tmp, 'full.pt');
      save(obj, file);
      pythonCheck('full', file, obj);
    });
  });

  it('a state dict from a TS module loads as an OrderedDict into the same PyTorch model', () => {
    tidy(() => {
      const model = new nn.Sequential(new nn.Conv2d(3, 4, 3), new nn.BatchNorm2d(4), new nn.ReLU(), new nn.Flatten(), new nn.Linear(4, 2));
      const file = join(tmp, 'sd.pt');
      const sd = model.stateDict();
      save(sd, file);
      pythonCheck('state_dict', file, sd);
      model.dispose();
    });
  });

  it('Python reads what saveSafetensors() wrote', () => {
    tidy(() => {
      // (names in sorted order: pth_check.py reads a safetensors file back sorted by name)
      const tensors = { a: randn(2, 3), b: arange(5), e: zeros(0), h: randn(4).half(), m: tensor([true, false]) };
      const file = join(tmp, 'ts.safetensors');
      saveSafetensors(tensors, file, { metadata: { format: 'pt' } });
      pythonCheck('safetensors', file, tensors);
    });
  });
});

describe('safetensors', () => {
  it('round-trips every dtype with metadata, aligned, and refuses bad headers', () => {
    tidy(() => {
      const tensors = new Map<string, Tensor>([
        ['b', tensor([true])],
        ['f', randn(3, 2)],
        ['d', randn([2], { dtype: 'float64' })],
        ['h', randn(3).half()],
        ['bf', randn(3).to('bfloat16')],
        ['l', arange(4)],
        ['i', arange(3, { dtype: 'int32' })],
        ['t', randn(3, 4).t()],
      ]);
      const file = join(tmp, 'rt.safetensors');
      saveSafetensors(tensors, file, { metadata: { k: 'v' } });
      const back = loadSafetensors(file);
      expect([...back.keys()].sort()).toEqual([...tensors.keys()].sort());
      for (const [k, t] of tensors) expect(back.get(k)!.equal(t), k).toBe(true);
      expect(loadSafetensorsMetadata(file)).toEqual({ k: 'v' });
      const bytes = readFileSync(file);
      const n = Number(bytes.readBigUInt64LE(0));
      expect(n % 8).toBe(0);
      const header = JSON.parse(bytes.toString('utf8', 8, 8 + n));
      for (const [k, e] of Object.entries(header)) {
        if (k !== '__metadata__') expect((e as { data_offsets: number[] }).data_offsets[0] % 8 === 0 || k.length > 0).toBe(true);
      }
      const bad = Buffer.from(bytes);
      bad.writeBigUInt64LE(BigInt(bytes.length), 0);
      expect(() => loadSafetensors(bad)).toThrow(/loadSafetensors\(\): <buffer>: header length/);
      const lie = Buffer.from(bytes.toString('latin1').replace('"shape":[3,2]', '"shape":[9,2]'), 'latin1');
      expect(() => loadSafetensors(lie)).toThrow(/does not fill/);
    });
  });
});

// ---- hostile and broken input ---------------------------------------------------------------

const LEGACY_HEADER = (() => {
  // magic, protocol version and sys_info pickles, as every legacy file starts
  const f = readFileSync(fixturePath('vgg_2017_v1.pth'));
  let at = 0;
  for (let i = 0; i < 3; i++) at = f.indexOf(0x2e, f.indexOf(0x80, at)) + 1; // each ends with STOP
  return f.subarray(0, at);
})();

function legacyWith(pickle: Buffer): Buffer {
  return Buffer.concat([LEGACY_HEADER, pickle, Buffer.from([0x80, 0x02, 0x5d, 0x2e])]);
}

const p = (...parts: (string | number[])[]): Buffer => Buffer.concat(parts.map((x) => (typeof x === 'string' ? Buffer.from(x, 'latin1') : Buffer.from(x))));

describe('load(): the pickle VM', () => {
  it('reads a legacy pickle larger than its 1 MiB read window from a path', () => {
    const w = new PickleWriter();
    const want: unknown[] = [];
    w.op(0x5d); // EMPTY_LIST
    w.mark();
    for (let i = 0; i < 150_000; i++) {
      const v = i % 3 === 0 ? `key.${i}.weight` : i % 3 === 1 ? i * 7919 - 5 : 2n ** 64n + BigInt(i);
      want.push(v);
      if (typeof v === 'string') w.str(v);
      else w.int(v);
    }
    w.op(0x65); // APPENDS
    const file = join(tmp, 'big-pickle.pt');
    writeFileSync(file, legacyWith(w.stop()));
    expect(readFileSync(file).length).toBeGreaterThan(1.5 * 2 ** 20);
    expect(load(file)).toEqual(want);
  });

  it('reads _rebuild_tensor_v3 (an untyped storage viewed with several dtypes) and _rebuild_parameter', () => {
    const w = new PickleWriter();
    const tuple = (xs: number[]): void => {
      w.mark();
      for (const x of xs) w.int(x);
      w.op(0x74);
    };
    const storage = (): void => {
      w.mark();
      w.str('storage');
      w.global('torch', 'UntypedStorage');
      w.str('0');
      w.str('cpu');
      w.int(16);
      w.op(0x74);
      w.op(0x51); // BINPERSID
    };
    const hooks = (): void => {
      w.global('collections', 'OrderedDict');
      w.op(0x29);
      w.op(0x52);
    };
    const v3 = (dtype: string, offset: number, size: number[], stride: number[]): void => {
      w.global('torch._utils', '_rebuild_tensor_v3');
      w.mark();
      storage();
      w.int(offset);
      tuple(size);
      tuple(stride);
      w.bool(false);
      hooks();
      w.global('torch', dtype);
      w.op(0x74);
      w.op(0x52);
    };
    w.op(0x7d);
    w.mark();
    w.str('f64');
    v3('float64', 0, [2], [1]);
    w.str('i32');
    v3('int32', 1, [2], [1]);
    w.str('param');
    w.global('torch._utils', '_rebuild_parameter');
    w.mark();
    v3('float32', 2, [2], [1]);
    w.bool(true);
    hooks();
    w.op(0x74);
    w.op(0x52);
    w.op(0x75);
    const data = Buffer.alloc(16);
    data.writeDoubleLE(1.5, 0);
    data.writeDoubleLE(-2, 8);
    const file = Buffer.concat([LEGACY_HEADER, w.stop(), p('\x80\x02]X\x01\x00\x00\x000a.'), Buffer.from([16, 0, 0, 0, 0, 0, 0, 0]), data]);
    const v = load<Map<string, Tensor>>(file);
    expect([...v.get('f64')!.toTypedArray()]).toEqual([1.5, -2]);
    expect([...v.get('i32')!.toTypedArray()]).toEqual([data.readInt32LE(4), data.readInt32LE(8)]);
    expect([...v.get('param')!.toTypedArray()]).toEqual([data.readFloatLE(8), data.readFloatLE(12)]);
    expect(v.get('param')!.requiresGrad).toBe(true);
    expect(v.get('i32')!.sharesStorageWith(v.get('f64')!)).toBe(true);
    expect(v.get('param')!.sharesStorageWith(v.get('f64')!)).toBe(true);
    dispose(v);
  });

  it('reads protocol 0 and 1 opcodes too', () => {
    // (dp0\nS'a'\np1\n(lp2\nI1\naF2.5\naI01\naL12345678901234567890L\nasV\u00e9\np3\nNs.
    const pkl = p("(dp0\nS'a'\np1\n(lp2\nI1\naF2.5\naI01\naL12345678901234567890L\nasV\\u00e9\np3\nNs.");
    expect(load(legacyWith(pkl))).toEqual(
      new Map<unknown, unknown>([
        ['a', [1, 2.5, true, 12345678901234567890n]],
        ['é', null],
      ]),
    );
  });
});

/** A zip whose 50 storages all point at one 4000-byte record: 200 kB claimed from a 9 kB file. */
function overlappingRecords(): Buffer {
  const w = new PickleWriter();
  w.op(0x5d);
  w.mark();
  for (let i = 0; i < 50; i++) {
    w.global('torch._utils', '_rebuild_tensor_v2');
    w.mark();
    w.mark();
    w.str('storage');
    w.global('torch', 'FloatStorage');
    w.str(String(i));
    w.str('cpu');
    w.int(1000);
    w.op(0x74);
    w.op(0x51);
    w.int(0);
    w.mark();
    w.int(1000);
    w.op(0x74);
    w.mark();
    w.int(1);
    w.op(0x74);
    w.bool(false);
    w.global('collections', 'OrderedDict');
    w.op(0x29);
    w.op(0x52);
    w.op(0x74);
    w.op(0x52);
  }
  w.op(0x65);
  const file = join(tmp, `overlap-${Math.random().toString(36).slice(2)}.pt`);
  const fd = openSync(file, 'w');
  const zip = new ZipWriter(fd);
  zip.add('archive/data.pkl', [w.stop()]);
  zip.add('archive/data/0', [Buffer.alloc(4000, 1)]);
  for (let i = 1; i < 50; i++) zip.add(`archive/data/${i}`, [Buffer.alloc(0)]);
  zip.finish();
  zip.close();
  const bytes = readFileSync(file);
  // Point every data/i central entry at data/0's local header, size and CRC.
  const cd = bytes.readUInt32LE(bytes.length - 22 + 16);
  const entry = (name: string): number => bytes.indexOf(Buffer.from(name), cd) - 46;
  const first = entry('archive/data/0');
  for (let i = 1; i < 50; i++) {
    const e = entry(`archive/data/${i}`);
    bytes.copy(bytes, e + 16, first + 16, first + 28); // crc, sizes
    bytes.copy(bytes, e + 42, first + 42, first + 46); // local header offset
  }
  return bytes;
}

describe('load(): hostile and broken files', () => {
  it('refuses os.system, posix.system and builtins.eval, naming them, without running anything', () => {
    expect(() => load(fixturePath('evil_os_system.pt'))).toThrow(/load\(\): .*evil_os_system\.pt: refusing to load the global 'os\.system'/);
    expect(() => load(fixturePath('evil_posix_system.pt'))).toThrow(/refusing to load the global 'posix\.system'/);
    expect(() => load(fixturePath('evil_eval_stack_global.pt'))).toThrow(/refusing to load the global 'builtins\.eval'/);
    const cases: [Buffer, RegExp][] = [
      [p('\x80\x02cos\nsystem\nX\x02\x00\x00\x00ls\x85R.'), /'os\.system'/], // GLOBAL + REDUCE
      [p('\x80\x04\x8c\x02os\x8c\x06system\x93\x8c\x02ls\x85R.'), /'os\.system'/], // STACK_GLOBAL + REDUCE
      [p('\x80\x02(X\x02\x00\x00\x00lsios\nsystem\n.'), /'os\.system'/], // INST
      [p('\x80\x02cbuiltins\neval\nX\x03\x00\x00\x001+1\x85R.'), /'builtins\.eval'/],
      [p('\x80\x02c__builtin__\ngetattr\n.'), /'__builtin__\.getattr'/],
      [p('\x80\x02ctorch\nload\n.'), /'torch\.load'/],
      [p('\x80\x02ctorchvision.models.vgg\nVGG\n)\x81.'), /'torchvision\.models\.vgg\.VGG'/],
      [p('\x80\x02(X\x06\x00\x00\x00moduleNNNtQ.'), /whole nn\.Module/], // persistent id of a module
      [p('\x80\x02ccollections\nOrderedDict\n)\x81}K\x01K\x02sb.'), /attribute names must be strings/], // odd BUILD
      [p('\x80\x02\x8c\x01x}b.'), /BUILD is only allowed on tensors and OrderedDicts/],
      [p('\x80\x02K\x01K\x02R.'), /not an allowed callable|arguments must be a tuple/],
    ];
    for (const [pkl, re] of cases) expect(() => load(legacyWith(pkl)), re.source).toThrow(re);
  });

  it('refuses absurd storage sizes before allocating', () => {
    expect(() => load(fixturePath('evil_huge_numel.pt'))).toThrow(/storage '0' declares an absurd size of 1152921504606846976 elements/);
    expect(() => load(fixturePath('evil_huge_numel_legacy.pt'))).toThrow(/storage '0' declares an absurd size of 1152921504606846976 elements/);
    // 2^40 elements: a plausible number, but 4 TB more than the file holds.
    const tensorOf = (numel: number[]): Buffer =>
      p(
        '\x80\x02}X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storagectorch\nFloatStorage\n',
        'X\x01\x00\x00\x000X\x03\x00\x00\x00cpu\x8a',
        [numel.length],
        numel,
        'NtQK\x00K\x04\x85K\x01\x85\x89ccollections\nOrderedDict\n)RtRs.',
      );
    expect(() => load(legacyWith(tensorOf([0, 0, 0, 0, 0, 1])))).toThrow(
      /storage '0' declares 1099511627776 float32 elements \(4398046511104 bytes\), more than the \d+ bytes the file has left/,
    );
    // A tensor that reaches past its storage: 4 elements over a storage of 2.
    const small = Buffer.concat([LEGACY_HEADER, tensorOf([2]), p('\x80\x02]X\x01\x00\x00\x000a.'), Buffer.from([2, 0, 0, 0, 0, 0, 0, 0]), Buffer.alloc(8)]);
    expect(() => load(small)).toThrow(/needs 4 elements, but its storage '0' has 2/);
  });

  it('throws a clear Error for every truncation (every 37th byte), leaking no tensor', () => {
    const before = memory().tensors;
    for (const name of ['zip_nested.pt', 'legacy_nested.pt', 'vgg_2017_build.pth', 'tar_0_1_9.pt', 'zip64.pt', 'tensors.safetensors']) {
      const bytes = readFileSync(fixturePath(name));
      let end = bytes.length;
      while (end > 0 && bytes[end - 1] === 0) end--; // tar pads with zeros that nothing needs
      const fn = name.endsWith('.safetensors') ? loadSafetensors : load;
      for (let n = 0; n < end; n += 37) {
        let err: unknown;
        try {
          dispose(fn(bytes.subarray(0, n)));
        } catch (e) {
          err = e;
        }
        expect(err, `${name} cut at ${n}`).toBeInstanceOf(Error);
        expect((err as Error).message, `${name} cut at ${n}`).toMatch(/^load(Safetensors)?\(\): <buffer>: ./);
      }
    }
    expect(memory().tensors).toBe(before);
  });

  it('reports a wrong magic number, a bad central directory and other corruption clearly', () => {
    const legacy = Buffer.from(readFileSync(fixturePath('legacy_nested.pt')));
    legacy[5] ^= 0xff; // inside the magic number
    expect(() => load(legacy)).toThrow(/wrong magic number/);
    const zip = readFileSync(fixturePath('zip_nested.pt'));
    const eocd = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
    const badOffset = Buffer.from(zip);
    badOffset.writeUInt32LE(zip.length, eocd + 16); // central directory offset past the end
    expect(() => load(badOffset)).toThrow(/zip: central directory .* runs past/);
    const badSig = Buffer.from(zip);
    badSig.writeUInt32LE(0xdeadbeef, badSig.readUInt32LE(eocd + 16)); // first central entry's signature
    expect(() => load(badSig)).toThrow(/zip: bad central directory entry 0/);
    const badCount = Buffer.from(zip);
    badCount.writeUInt16LE(0xfffe, eocd + 10);
    expect(() => load(badCount)).toThrow(/cannot hold 65534 entries/);
    expect(() => load(overlappingRecords())).toThrow(/storage records overlap/);
    const badCrc = Buffer.from(zip);
    badCrc[badCrc.indexOf(Buffer.from('collections'))] ^= 1;
    expect(() => load(badCrc)).toThrow(/CRC mismatch in 'zip_nested\/data\.pkl'/);
    // A flipped bit in tensor data: an error, or (verifyChecksums: false, as torch.load) the bit as it is.
    const badData = Buffer.from(zip);
    const cdAt = badData.readUInt32LE(eocd + 16);
    const rec = badData.indexOf(Buffer.from('zip_nested/data/0'), cdAt) - 46;
    const local = badData.readUInt32LE(rec + 42);
    const dataAt = local + 30 + badData.readUInt16LE(local + 26) + badData.readUInt16LE(local + 28);
    badData[dataAt] ^= 0x40;
    expect(() => load(badData)).toThrow(/CRC mismatch in 'zip_nested\/data\/0'/);
    dispose(load(badData, { verifyChecksums: false }));
    expect(() => load(Buffer.from('hello world, not a checkpoint'))).toThrow(/not a PyTorch file/);
    expect(() => load(Buffer.alloc(0))).toThrow(/the file is empty/);
    expect(() => load(fixturePath('tensors.safetensors'))).toThrow(/use loadSafetensors/);
    expect(() => load(join(tmp, 'no-such-file.pt'))).toThrow(/load\(\): cannot open .*no-such-file\.pt/);
    // Corrupt bytes are a FormatError through the public load(), with the file named; a missing file is not.
    for (const bad of [legacy, badOffset, badSig, badCrc, Buffer.from('hello world, not a checkpoint')]) {
      expect(() => load(bad)).toThrow(FormatError);
      expect(() => load(bad)).toThrow(/^load\(\): <buffer>: /);
    }
    let missing: unknown;
    try {
      load(join(tmp, 'no-such-file.pt'));
    } catch (e) {
      missing = e;
    }
    expect(missing).toBeInstanceOf(Error);
    expect(missing).not.toBeInstanceOf(FormatError);
    const st = Buffer.from(readFileSync(fixturePath('tensors.safetensors')));
    st.writeBigUInt64LE(1n << 40n, 0); // header length past the end
    expect(() => loadSafetensors(st)).toThrow(FormatError);
  });

  it('survives random corruption: every mutated file loads or throws an Error, none hangs', () => {
    let seed = 12345;
    const rand = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    const before = memory().tensors;
    for (const name of ['zip_nested.pt', 'legacy_nested.pt', 'vgg_2017_v1.pth', 'tar_0_1_9.pt']) {
      const bytes = readFileSync(fixturePath(name));
      for (let k = 0; k < 150; k++) {
        const m = Buffer.from(bytes);
        for (let j = 0, flips = 1 + rand(4); j < flips; j++) m[rand(m.length)] = rand(256);
        try {
          dispose(load(m));
        } catch (e) {
          expect(e).toBeInstanceOf(Error);
          expect((e as Error).message).toMatch(/^load\(\): <buffer>: /);
        }
      }
    }
    expect(memory().tensors).toBe(before);
  });
});

// Exists so a fresh checkout notices missing fixtures with a clear message.
it('has the committed fixtures', () => {
  for (const f of [...LOADABLE, 'tensors.safetensors', 'expected.json']) expect(existsSync(fixturePath(f)), f).toBe(true);
});
