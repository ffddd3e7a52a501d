// load() against denial of service: work linear in the number of tensors, zip
// records that cannot inflate without bound (peak RSS measured in a child
// process), a bounded rebuild recursion, and options that are checked. The
// files are made here (no Python needed); where /usr/bin/python3 has torch, the
// same properties are checked on files PyTorch writes.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { constants, deflateRawSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { type Tensor, dispose, tensor } from '../lib/index.js';
import { load, loadSafetensors, save, saveSafetensors } from '../lib/serialization/index.js';
import { loadCounters } from '../lib/serialization/load.js';
import { OP, PickleWriter } from '../lib/serialization/pickle.js';
import { crc32 } from '../lib/serialization/zip.js';
import { writeZip } from './fuzz/inputs.js';
import { hasTorchPython, python, requireLiveOracle } from './helpers.js';

const live = hasTorchPython || requireLiveOracle;
const FIXTURES = new URL('./fixtures/pth/', import.meta.url);
const tmp = mkdtempSync(join(tmpdir(), 'vgg-torch-dos-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const LEGACY_HEADER = (() => {
  // magic, protocol version and sys_info pickles, as every legacy file starts
  const f = readFileSync(new URL('vgg_2017_v1.pth', FIXTURES));
  let at = 0;
  for (let i = 0; i < 3; i++) at = f.indexOf(0x2e, f.indexOf(0x80, at)) + 1; // each ends with STOP
  return f.subarray(0, at);
})();

function tuple(w: PickleWriter, xs: number[]): void {
  w.mark();
  for (const x of xs) w.int(x);
  w.op(OP.TUPLE);
}

function storagePid(w: PickleWriter, key: string, numel: number, legacy: boolean): void {
  w.mark();
  w.str('storage');
  w.global('torch', 'FloatStorage');
  w.str(key);
  w.str('cpu');
  w.int(numel);
  if (legacy) w.none(); // no pre-0.4 storage view
  w.op(OP.TUPLE);
  w.op(OP.BINPERSID);
}

/**
 * A legacy file as PyTorch 0.2/0.3 wrote state dicts: an OrderedDict of `n`
 * tensors, each `torch.FloatTensor()` + BUILD (storage, offset, size, stride).
 * Each tensor holds [i, i + 0.5, -i]: on a storage of its own, or (`shared`)
 * at offset 3i of one storage that the pickle memoizes, as views of one
 * parameter buffer were written.
 */
function buildStyleLegacy(n: number, shared = false): Buffer {
  const w = new PickleWriter();
  w.global('collections', 'OrderedDict');
  w.op(OP.EMPTY_TUPLE);
  w.op(OP.REDUCE);
  w.mark();
  let storageMemo = -1;
  for (let i = 0; i < n; i++) {
    w.str(`t${i}`);
    w.global('torch', 'FloatTensor');
    w.op(OP.EMPTY_TUPLE);
    w.op(OP.REDUCE);
    w.mark();
    if (!shared) storagePid(w, String(i), 3, true);
    else if (storageMemo >= 0) w.get(storageMemo);
    else {
      storagePid(w, '0', 3 * n, true);
      storageMemo = w.put();
    }
    w.int(shared ? 3 * i : 0);
    tuple(w, [3]);
    tuple(w, [1]);
    w.op(OP.TUPLE);
    w.op(OP.BUILD);
  }
  w.op(OP.SETITEMS);
  const keys = new PickleWriter();
  keys.op(OP.EMPTY_LIST);
  keys.mark();
  for (let i = 0; i < (shared ? 1 : n); i++) keys.str(String(i));
  keys.op(OP.APPENDS);
  const data = Buffer.alloc(shared ? 8 + 12 * n : 20 * n);
  for (let i = 0; i < n; i++) {
    const at = shared ? 8 + 12 * i : 20 * i + 8;
    if (!shared || i === 0) data.writeBigInt64LE(BigInt(shared ? 3 * n : 3), at - 8);
    data.writeFloatLE(i, at);
    data.writeFloatLE(i + 0.5, at + 4);
    data.writeFloatLE(-i, at + 8);
  }
  return Buffer.concat([LEGACY_HEADER, w.stop(), keys.stop(), data]);
}

/** Loads `file`, returns the state dict and how many view records BUILD's retargeting visited. */
function loadCounting(file: string | Buffer): { sd: Map<string, Tensor>; visits: number } {
  const before = loadCounters.viewVisits;
  const sd = load<Map<string, Tensor>>(file);
  return { sd, visits: loadCounters.viewVisits - before };
}

describe('load(): legacy files of many tensors take linear work', () => {
  it('retargets each BUILD tensor with one visit: 40,000 tensors, 40,000 visits (not 8e8), with or without a shared storage', () => {
    for (const [n, shared] of [
      [1000, false],
      [40_000, false],
      [40_000, true],
    ] as const) {
      const file = buildStyleLegacy(n, shared);
      const { sd, visits } = loadCounting(file);
      expect(sd.size).toBe(n);
      // Before, each BUILD scanned every view recorded so far: n(n+1)/2 visits.
      expect(visits).toBe(n);
      for (const i of [0, 1, n >> 1, n - 1]) expect([...sd.get(`t${i}`)!.toTypedArray()]).toEqual([i, i + 0.5, -i]);
      expect(sd.get('t1')!.sharesStorageWith(sd.get('t2')!)).toBe(shared);
      dispose(sd);
    }
  });

  it.skipIf(!live)('live: PyTorch-written legacy files of 40,000 tensors (the 2017 BUILD style and torch.save)', async () => {
    const build = join(tmp, 'many-build.pth');
    const v2 = join(tmp, 'many-v2.pth');
    const script = `
import sys, collections, torch
sys.path.insert(0, ${JSON.stringify(fileURLToPath(new URL('../scripts/fixtures/', import.meta.url)))})
import pth
sd = collections.OrderedDict(('t%d' % i, torch.tensor([i, i + 0.5, -i], dtype=torch.float32)) for i in range(40000))
pth.write_2017(sys.argv[1], sd, 'build')
torch.save(sd, sys.argv[2], _use_new_zipfile_serialization=False)
back = torch.load(sys.argv[1])
assert len(back) == 40000 and torch.equal(back['t39999'], sd['t39999'])
`;
    const r = await python(['-c', script, build, v2]);
    expect(r.status, r.stderr).toBe(0);
    for (const [file, visits] of [
      [build, 40_000],
      [v2, 0],
    ] as const) {
      const got = loadCounting(file);
      expect(got.sd.size).toBe(40_000);
      expect(got.visits).toBe(visits); // torch.save's _rebuild_tensor_v2 needs no retargeting at all
      for (const i of [1, 12_345, 39_999]) expect([...got.sd.get(`t${i}`)!.toTypedArray()]).toEqual([i, i + 0.5, -i]);
      dispose(got.sd);
    }
  });
});

// ---- zip bombs ------------------------------------------------------------------------

/** The pickle of {'w': float32 tensor of `numel` elements on storage '0'}, as torch.save writes it. */
function onePickle(numel: number): Buffer {
  const w = new PickleWriter();
  w.op(OP.EMPTY_DICT);
  w.str('w');
  w.global('torch._utils', '_rebuild_tensor_v2');
  w.mark();
  storagePid(w, '0', numel, false);
  w.int(0);
  tuple(w, [numel]);
  tuple(w, [1]);
  w.bool(false);
  w.global('collections', 'OrderedDict');
  w.op(OP.EMPTY_TUPLE);
  w.op(OP.REDUCE);
  w.op(OP.TUPLE);
  w.op(OP.REDUCE);
  w.op(0x73); // SETITEM
  return w.stop();
}

/**
 * `nbytes` zero bytes deflated without ever holding them: 1 MiB blocks compressed
 * on their own (ending on a byte boundary, not final) follow each other, then an
 * empty final block. Returns the raw deflate stream and the CRC-32 of the zeros.
 */
function deflatedZeros(nbytes: number): { raw: Buffer; crc: number } {
  const block = 1 << 20;
  const zeros = Buffer.alloc(block);
  const part = deflateRawSync(zeros, { finishFlush: constants.Z_SYNC_FLUSH });
  const parts: Buffer[] = [];
  let crc = 0;
  for (let left = nbytes; left > 0; left -= block) {
    const n = Math.min(block, left);
    parts.push(n === block ? part : deflateRawSync(zeros.subarray(0, n), { finishFlush: constants.Z_SYNC_FLUSH }));
    crc = crc32(zeros.subarray(0, n), crc);
  }
  parts.push(Buffer.from([0x03, 0x00])); // BFINAL, fixed Huffman, end of block
  return { raw: Buffer.concat(parts), crc };
}

/** A torch.save zip of one float32 storage of `numel` zeros whose record is deflated. */
function zeroStorageZip(numel: number, opts: { recordSize?: number } = {}): Buffer {
  const { raw, crc } = deflatedZeros(numel * 4);
  return writeZip([
    { name: 'archive/data.pkl', data: onePickle(numel), deflate: false },
    { name: 'archive/data/0', data: Buffer.alloc(0), deflate: true, raw, lieSize: opts.recordSize ?? numel * 4, lieCrc: crc },
    { name: 'archive/version', data: Buffer.from('3\n'), deflate: false },
  ]);
}

interface ChildResult {
  error?: string;
  sum?: number;
  numel?: number;
  base: number;
  peak: number;
}

/** load(file, opts) in a fresh process: its peak RSS is the load's own. */
function loadInChild(file: string, opts: Record<string, unknown>): Promise<ChildResult> {
  const code = `
    const { load } = await import(${JSON.stringify(new URL('../lib/serialization/index.ts', import.meta.url).href)});
    const opts = ${JSON.stringify(opts).replace(/"__Infinity__"/g, 'Infinity')};
    const base = process.memoryUsage.rss();
    let out;
    try {
      const sd = load(${JSON.stringify(file)}, opts);
      const w = sd.get('w');
      out = { sum: w.sum().item(), numel: w.numel() };
    } catch (e) {
      out = { error: e.message };
    }
    out.base = base;
    out.peak = process.resourceUsage().maxRSS * 1024;
    process.stdout.write(JSON.stringify(out));
  `;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (status) => {
      if (status !== 0) reject(new Error(`child failed (${status}): ${stderr}`));
      else resolve(JSON.parse(stdout) as ChildResult);
    });
  });
}

const MiB = 2 ** 20;

describe('load(): deflated zip records cannot inflate without bound', () => {
  it('refuses a 1 MB file that inflates to 1 GiB before inflating it, naming the record and the sizes', async () => {
    const file = join(tmp, 'bomb-1g.pt');
    writeFileSync(file, zeroStorageZip(2 ** 28));
    const size = readFileSync(file).length;
    expect(size).toBeLessThan(1.1e6);
    const r = await loadInChild(file, {});
    expect(r.error).toMatch(
      new RegExp(
        `storage '0' \\(record 'archive/data/0', \\d+ bytes deflated to 1073741824\\) needs 1073741824 bytes, .*more than maxBytes = ${Math.max(64 * MiB, 16 * size)} \\(the default: 16 × the file's ${size} bytes, at least 64 MiB\\)`,
      ),
    );
    // Nothing was inflated: the load grew the process by a few MB (the file, the pickle), not by a gigabyte.
    expect(r.peak - r.base).toBeLessThan(64 * MiB);
  });

  it('inflates an allowed deflated storage once, straight into its memory (peak ≈ 1× its size, not 3×)', async () => {
    const file = join(tmp, 'zeros-256m.pt');
    writeFileSync(file, zeroStorageZip(2 ** 26));
    const r = await loadInChild(file, { maxBytes: '__Infinity__' });
    expect(r.error).toBeUndefined();
    expect(r.numel).toBe(2 ** 26);
    expect(r.sum).toBe(0);
    // The 256 MiB storage, plus the runtime's own growth; inflating and then copying needed 2-3×.
    expect(r.peak - r.base).toBeLessThan(1.4 * 256 * MiB);
  });

  it('checks a deflated record against the size the pickle declares, and charges the pickle too', () => {
    // The header claims 8 bytes more than the storage: refused before inflating (it used to be inflated whole).
    const lying = zeroStorageZip(1024, { recordSize: 4096 + 8 });
    expect(() => load(lying)).toThrow(/storage '0' declares 4096 bytes but its record archive\/data\/0 holds 4104/);
    // A maxBytes smaller than the storage: refused, naming the option.
    expect(() => load(zeroStorageZip(1024), { maxBytes: 4000 })).toThrow(
      /storage '0' \(record 'archive\/data\/0', \d+ bytes deflated to 4096\) needs 4096 bytes.*more than maxBytes = 4000 \(the maxBytes option\)/,
    );
    const ok = load<Map<string, Tensor>>(zeroStorageZip(1024), { maxBytes: 4096 + 4096 });
    expect(ok.get('w')!.shape).toEqual([1024]);
    dispose(ok);
    // A deflated pickle is charged before it is inflated.
    const pkl = Buffer.concat([onePickle(0).subarray(0, -1), Buffer.from('N0'.repeat(4096)), Buffer.from('.')]);
    const big = writeZip([
      { name: 'archive/data.pkl', data: pkl, deflate: true },
      { name: 'archive/data/0', data: Buffer.alloc(0), deflate: false },
    ]);
    expect(() => load(big, { maxBytes: 1000 })).toThrow(
      /the pickle record 'archive\/data\.pkl' \(\d+ bytes deflated\) needs \d+ bytes.*more than maxBytes = 1000/,
    );
    // Stored records count too: maxBytes bounds every load.
    const stored = readFileSync(new URL('zip_nested.pt', FIXTURES));
    expect(() => load(stored, { maxBytes: 100 })).toThrow(/more than maxBytes = 100 \(the maxBytes option\)/);
  });

  it.skipIf(!live)("live: a checkpoint Python's zipfile deflated loads as torch.load reads it; a bomb PyTorch would inflate is refused", async () => {
    const file = join(tmp, 'deflated-live.pt');
    const script = `
import sys, zipfile, io, torch
g = torch.Generator().manual_seed(0)
sd = {'w': torch.randn(300, 200, generator=g), 'zeros': torch.zeros(100000), 'i': torch.arange(1000)}
buf = io.BytesIO(); torch.save(sd, buf)
with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as zin, zipfile.ZipFile(sys.argv[1], 'w', zipfile.ZIP_DEFLATED) as zout:
    for info in zin.infolist():
        zout.writestr(info.filename, zin.read(info.filename), compress_type=zipfile.ZIP_DEFLATED)
back = torch.load(sys.argv[1])
assert all(torch.equal(back[k], sd[k]) for k in sd)
print(float(back['w'].double().sum()), float(back['w'][17, 33]))
`;
    const r = await python(['-c', script, file]);
    expect(r.status, r.stderr).toBe(0);
    const [sum, w1733] = r.stdout.trim().split(' ').map(Number);
    const sd = load<Map<string, Tensor>>(file);
    expect(sd.get('w')!.double().sum().item()).toBeCloseTo(sum, 9);
    expect(sd.get('w')!.toTypedArray()[17 * 200 + 33]).toBe(Math.fround(w1733));
    expect(sd.get('zeros')!.sum().item()).toBe(0);
    expect([...sd.get('i')!.toTypedArray()].slice(0, 3)).toEqual([0n, 1n, 2n]);
    dispose(sd);
    // The bomb built here is a valid checkpoint to PyTorch: it loads 2^20 zeros from it.
    const bomb = join(tmp, 'bomb-live.pt');
    writeFileSync(bomb, zeroStorageZip(2 ** 20));
    const t = await python(['-c', 'import sys, torch; w = torch.load(sys.argv[1])["w"]; print(w.numel(), int(w.abs().sum()))', bomb]);
    expect(t.stdout.trim()).toBe(`${2 ** 20} 0`);
    expect(() => load(bomb, { maxBytes: 2 ** 21 })).toThrow(/needs 4194304 bytes.*more than maxBytes/);
  });
});

// ---- rebuild recursion --------------------------------------------------------------------

describe('load(): _rebuild_from_type_v2 cannot recurse without bound', () => {
  it('refuses arguments that contain themselves, with a clear error rather than a stack overflow', () => {
    // L = [_rebuild_from_type_v2, torch.Tensor, L, {}]; then _rebuild_from_type_v2(*L).
    const w = new PickleWriter();
    w.global('torch._tensor', '_rebuild_from_type_v2'); // memo 0
    w.op(OP.EMPTY_LIST);
    const list = w.put();
    w.mark();
    w.get(0);
    w.global('torch', 'Tensor');
    w.get(list);
    w.op(OP.EMPTY_DICT);
    w.op(OP.APPENDS);
    w.op(OP.REDUCE);
    const pkl = w.stop();
    const keys = new PickleWriter();
    keys.op(OP.EMPTY_LIST);
    for (const file of [Buffer.concat([LEGACY_HEADER, pkl, keys.stop()]), writeZip([{ name: 'archive/data.pkl', data: pkl, deflate: false }])]) {
      let err: Error | undefined;
      try {
        load(file);
      } catch (e) {
        err = e as Error;
      }
      expect(err?.message).toMatch(/torch\._tensor\._rebuild_from_type_v2: its function is torch\._tensor\._rebuild_from_type_v2 again/);
      expect(err?.cause).not.toBeInstanceOf(RangeError);
    }
  });
});

// ---- options ---------------------------------------------------------------------------

describe('load()/save() options', () => {
  it('refuse unknown keys and bad values, naming the function, the key and the allowed keys', () => {
    const zip = readFileSync(new URL('zip_nested.pt', FIXTURES));
    expect(() => load(zip, { maplocation: 'cpu' } as never)).toThrow(
      /^load\(\): unknown option 'maplocation' \(did you mean 'mapLocation'\?\); allowed: 'mapLocation', 'verifyChecksums', 'maxBytes'$/,
    );
    expect(() => load(zip, null as never)).toThrow(
      /^load\(\): argument 'options' must be an object with keys 'mapLocation', 'verifyChecksums', 'maxBytes', got null$/,
    );
    expect(() => load(zip, { maxBytes: -1 })).toThrow(/^load\(\): maxBytes must be a non-negative integer or Infinity, got -1$/);
    expect(() => load(zip, { maxBytes: '10' as never })).toThrow(/maxBytes must be .* got "10"/);
    const t = tensor([1, 2]);
    expect(() => save({ t }, join(tmp, 'x.pt'), { zip64: true } as never)).toThrow(/^save\(\): unknown option 'zip64'; allowed: 'forceZip64'$/);
    expect(() => saveSafetensors({ t }, join(tmp, 'x.safetensors'), { meta: {} } as never)).toThrow(
      /^saveSafetensors\(\): unknown option 'meta'; allowed: 'metadata'$/,
    );
    expect(() => loadSafetensors(new URL('tensors.safetensors', FIXTURES), { device: 'cpu' } as never)).toThrow(
      /^loadSafetensors\(\): unknown option 'device'; allowed: 'mapLocation'$/,
    );
    t.dispose();
  });
});
