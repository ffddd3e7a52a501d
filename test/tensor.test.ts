// The Tensor API surface: properties, data out, views, storage sharing, memory, repr.
import { describe, expect, it } from 'vitest';
import { type Tensor, arange, dispose, fromBuffer, keep, memory, ones, randn, tensor, tidy, zeros } from '../lib/index.js';
import { hasTorchPython, python, runNodeChild } from './helpers.js';

describe('tensor properties and data', () => {
  it('reports shape, dtype, device, ndim, numel, strides, contiguity', () => {
    tidy(() => {
      const x = zeros([2, 3, 4], { dtype: 'float64' });
      expect(x.shape).toEqual([2, 3, 4]);
      expect(x.size(-1)).toBe(4);
      expect(x.dtype).toBe('float64');
      expect(x.device).toBe('cpu');
      expect(x.ndim).toBe(3);
      expect(x.numel()).toBe(24);
      expect(x.stride()).toEqual([12, 4, 1]);
      expect(x.isContiguous()).toBe(true);
      expect(x.transpose(0, 2).isContiguous()).toBe(false);
    });
  });

  it('converts out: item, tolist, toTypedArray by dtype, async data()', async () => {
    const x = tensor([
      [1, 2],
      [3, 4],
    ]);
    expect(x.dtype).toBe('int64');
    expect(x.toTypedArray()).toEqual(new BigInt64Array([1n, 2n, 3n, 4n]));
    expect(x.tolist()).toEqual([
      [1, 2],
      [3, 4],
    ]);
    expect(x.sum().item()).toBe(10);
    const b = tensor([true, false]);
    expect(b.tolist()).toEqual([true, false]);
    expect(b.toTypedArray()).toBeInstanceOf(Uint8Array);
    const h = tensor([0.5, 1.5], { dtype: 'float16' });
    expect(h.toTypedArray()).toEqual(new Float32Array([0.5, 1.5]));
    const f = arange(6).float().view(2, 3).t();
    expect(await f.data()).toEqual(new Float32Array([0, 3, 1, 4, 2, 5]));
    dispose(x, b, h, f);
  });

  it('lays typed arrays out with shape, and converts dtype on request', () => {
    tidy(() => {
      const t = tensor(new Float32Array([1, 2, 3, 4, 5, 6]), { shape: [2, 3] });
      expect(t.shape).toEqual([2, 3]);
      expect(tensor(new Float64Array([1.5])).dtype).toBe('float64');
      expect(tensor(new Uint8Array([1, 2]), { dtype: 'float32' }).tolist()).toEqual([1, 2]);
      expect(tensor(3.5).shape).toEqual([]);
      expect(tensor([]).shape).toEqual([0]);
    });
  });

  it('fromBuffer shares memory with the buffer and keeps it alive', () => {
    tidy(() => {
      const buf = new Float32Array([1, 2, 3, 4]);
      const t = fromBuffer(buf, { dtype: 'float32', shape: [2, 2] });
      buf[0] = 42;
      expect(t.index(0, 0).item()).toBe(42);
      t.index(1).fill_(7);
      expect(Array.from(buf)).toEqual([42, 2, 7, 7]);
    });
  });

  it('views share storage, and disposing one handle never frees another', () => {
    const base = arange(12).float();
    const v = base.view(3, 4).index(':', '1:3');
    expect(v.sharesStorageWith(base)).toBe(true);
    base.dispose();
    expect(base.isDisposed).toBe(true);
    expect(v.tolist()).toEqual([
      [1, 2],
      [5, 6],
      [9, 10],
    ]);
    v.dispose();
  });

  it('memory() counts handles and distinct storages exactly', () => {
    const before = memory();
    const a = zeros([1000]); // 4000 bytes
    const view = a.view(10, 100); // same storage: bytes unchanged
    const b = zeros([10], { dtype: 'float64' }); // 80 bytes
    const during = memory();
    expect(during.tensors - before.tensors).toBe(3);
    expect(during.bytes - before.bytes).toBe(4080);
    a.dispose();
    expect(memory().bytes - before.bytes).toBe(4080); // the view still holds the storage
    view.dispose();
    b.dispose();
    expect(memory()).toEqual(before);
  });

  it('tidy frees what is not returned, nests, keeps, and works with async functions', async () => {
    const before = memory().tensors;
    let kept: Tensor | undefined;
    const out = tidy(() => {
      const a = ones(3);
      const inner = tidy(() => {
        const tmp = a.mul(2);
        return { result: tmp.add(1) };
      });
      kept = keep(a.mul(5));
      return [inner.result, a.sub(1)];
    });
    expect(memory().tensors - before).toBe(3);
    expect(out[0].tolist()).toEqual([3, 3, 3]);
    dispose(out, kept);
    expect(memory().tensors).toBe(before);

    const asyncOut = await tidy(async () => {
      const a = ones(2);
      await new Promise((r) => setTimeout(r, 1));
      const b = a.add(1);
      await new Promise((r) => setTimeout(r, 1));
      return b.mul(2);
    });
    expect(memory().tensors - before).toBe(1);
    expect(asyncOut.tolist()).toEqual([4, 4]);
    asyncOut.dispose();
    expect(() =>
      tidy(() => {
        ones(2);
        throw new Error('inside');
      }),
    ).toThrow('inside');
    expect(memory().tensors).toBe(before);
  });

  it('the GC safety net frees tensors that were never disposed', async () => {
    const gc = (globalThis as { gc?: () => void }).gc;
    expect(gc, 'tests run with --expose-gc').toBeDefined();
    const collect = async () => {
      for (let i = 0; i < 5; i++) {
        gc!();
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    await collect(); // earlier tests may have left garbage of their own
    const before = memory();
    (() => {
      for (let i = 0; i < 100; i++) zeros(1000);
    })();
    expect(memory().tensors - before.tensors).toBe(100);
    await collect();
    expect(memory()).toEqual(before);
  });

  it('prints like PyTorch, also through util.inspect', async () => {
    const { inspect } = await import('node:util');
    tidy(() => {
      const x = tensor(
        [
          [1, 2.5],
          [3, 4],
        ],
        { requiresGrad: true },
      );
      expect(x.toString()).toBe('tensor([[1.0000, 2.5000],\n        [3.0000, 4.0000]], requires_grad=True)');
      expect(inspect(x.sum())).toBe('tensor(10.5000, grad_fn=<SumBackward0>)');
      expect(String(tensor([1, 2], { dtype: 'int32' }))).toBe('tensor([1, 2], dtype=torch.int32)');
    });
  });

  it('split, chunk and the conversions return fresh tensors', () => {
    tidy(() => {
      const x = randn(6, 2);
      expect(x.split(4).map((t) => t.shape[0])).toEqual([4, 2]);
      expect(x.chunk(3).length).toBe(3);
      expect(x.to({ dtype: 'float64' }).dtype).toBe('float64');
      expect(x.long().dtype).toBe('int64');
      expect(x.clone().sharesStorageWith(x)).toBe(false);
    });
  });
});

// Each reproduction runs in its own process: before the fix the first one died of SIGSEGV and
// the second read another allocation's bytes.
describe('fromBuffer is memory-safe', () => {
  it('refuses a resizable ArrayBuffer, which could shrink under the tensor', async () => {
    const r = await runNodeChild(`
      const { fromBuffer } = await import(LIB);
      const ab = new ArrayBuffer(64 << 20, { maxByteLength: 64 << 20 });
      try {
        const t = fromBuffer(ab, { dtype: 'float32' });
        ab.resize(4096);
        console.log('sum', t.sum().item());
      } catch (e) {
        console.log('error', e.constructor.name, e.message);
      }
      // A resizable buffer may still be copied.
      const small = new ArrayBuffer(8, { maxByteLength: 16 });
      new Float32Array(small).set([1.5, 2.5]);
      const { tensor } = await import(LIB);
      console.log('copy', JSON.stringify(tensor(new Float32Array(small)).tolist()));
    `);
    expect(r.signal, r.stderr).toBeNull();
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(
      /^error TypeError fromBuffer\(\): argument 'buffer' is a resizable ArrayBuffer \(maxByteLength 67108864\); a tensor cannot share memory that can shrink under it/m,
    );
    expect(r.stdout).toMatch(/^copy \[1\.5,2\.5\]$/m);
  });

  it('keeps its bytes when the buffer is transferred, and still shares them', async () => {
    const r = await runNodeChild(
      `
      const { fromBuffer } = await import(LIB);
      const { MessageChannel } = await import('node:worker_threads');
      let ab = new ArrayBuffer(16 << 20);
      const view = new Float32Array(ab);
      view.fill(1);
      const t = fromBuffer(ab, { dtype: 'float32' });
      let moved = structuredClone(ab, { transfer: [ab] });
      const { port1, port2 } = new MessageChannel();
      port1.postMessage(ab, [ab]);
      port1.close(); port2.close();
      moved = undefined;
      for (let i = 0; i < 5; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 20)); }
      const junk = [];
      for (let i = 0; i < 8; i++) junk.push(new Float32Array(4 << 20).fill(7));
      view[0] = 5; // still shared with the tensor
      console.log('result', ab.byteLength, t.sum().item(), t.numel() + 4);
    `,
      { nodeArgs: ['--expose-gc'] },
    );
    expect(r.signal, r.stderr).toBeNull();
    expect(r.status, r.stderr).toBe(0);
    const [, byteLength, sum, want] = /^result (\d+) (\S+) (\d+)$/m.exec(r.stdout) ?? [];
    expect(Number(byteLength)).toBe(16 << 20); // not detached: the transfer copied it
    expect(Number(sum)).toBe(Number(want));
  });

  it('gives a clear error for a detached buffer, or a view of one', async () => {
    const r = await runNodeChild(`
      const { fromBuffer } = await import(LIB);
      const ab = new ArrayBuffer(16);
      const view = new Float32Array(ab);
      structuredClone(ab, { transfer: [ab] });
      for (const b of [ab, view]) {
        try { fromBuffer(b, { dtype: 'float32' }); console.log('no error'); } catch (e) { console.log('error', e.constructor.name, e.message); }
      }
    `);
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines).toHaveLength(2);
    for (const line of lines) {
      expect(line).toMatch(/^error TypeError fromBuffer\(\): argument 'buffer' is a detached ArrayBuffer \(it was transferred/);
    }
  });
});

describe('tensor() never silently changes values', () => {
  it('disposed tensors throw from every accessor, cached or not', () => {
    const t = zeros([2, 3]);
    expect(t.shape).toEqual([2, 3]); // caches the metadata
    t.dispose();
    const disposed = /is a Tensor that has been disposed/;
    for (const get of [
      () => t.shape,
      () => t.numel(),
      () => t.dtype,
      () => t.device,
      () => t.ndim,
      () => t.dim(),
      () => t.size(0),
      () => t.isCuda,
      () => t.requiresGrad,
      () => t.grad,
      () => t.stride(),
      () => t.tolist(),
    ]) {
      expect(get).toThrow(disposed);
    }
  });

  // PyTorch 1.13's torch.tensor(values, dtype=...): checked by live Python where available.
  const INT_CASES: [string, number[]][] = [
    ['uint8', [300, -1, Infinity, 255, 256, -255, -256, -128, 2.7, -0.5, 255.5, NaN]],
    ['int8', [127, 128, -128, -129, 255, -1, 2.7, -2.7, -0.5, NaN, -Infinity]],
    ['int16', [32767, 32768, -32768, -32769, 1.5, NaN, Infinity]],
    ['int32', [2147483647, 2147483648, -2147483648, -2147483649, -2.7, NaN]],
    ['int64', [2 ** 53, -(2 ** 62), 2 ** 63, -(2 ** 63), 1e19, -1e19, 1e10 + 0.5, NaN, Infinity]],
    ['bool', [0, 2, -1, NaN, Infinity, 0.5]],
  ];
  // What PyTorch 1.13 gives (checked with python3 -c "import torch; torch.tensor([v], dtype=...)"):
  // a number, or null for "value cannot be converted to type … without overflow".
  const FACTS: Record<string, (number | boolean | null)[]> = {
    uint8: [null, 255, null, 255, null, 1, null, 128, 2, null, null, null],
    int8: [127, null, -128, null, null, -1, 2, -2, 0, null, null],
    int16: [32767, null, -32768, null, 1, null, null],
    int32: [2147483647, null, -2147483648, null, -2, null],
    int64: [2 ** 53, -(2 ** 62), null, -(2 ** 63), null, null, 1e10, null, null],
    bool: [false, true, true, true, true, true],
  };

  function ours(dtype: string, v: number): number | boolean | null {
    try {
      const t = tensor([v], { dtype: dtype as never });
      const out = (t.tolist() as (number | boolean)[])[0];
      t.dispose();
      return out;
    } catch (e) {
      expect((e as Error).message).toMatch(new RegExp(`^tensor\\(\\): value \\S+ at \\[0\\] cannot be converted to type ${dtype} without overflow$`));
      return null;
    }
  }

  it('follows PyTorch 1.13 for every integer dtype and bool (recorded facts)', () => {
    for (const [dtype, values] of INT_CASES) {
      expect(
        values.map((v) => ours(dtype, v)),
        dtype,
      ).toEqual(FACTS[dtype]);
    }
    expect(() =>
      tensor(
        [
          [1, 2],
          [3, 300],
        ],
        { dtype: 'uint8' },
      ),
    ).toThrow(/^tensor\(\): value 300 at \[1, 1\] cannot be converted to type uint8 without overflow$/);
    expect(() => tensor([2n ** 63n], { dtype: 'int64' })).toThrow(/value 9223372036854775808n at \[0\] cannot be converted to type int64/);
    const t = tensor([300, -1, Infinity], { dtype: 'float32' });
    expect(t.tolist()).toEqual([300, -1, Infinity]);
    t.dispose();
  });

  it.skipIf(!hasTorchPython)('follows PyTorch 1.13 for every integer dtype and bool (live oracle)', async () => {
    const script = `
import json, math, sys, torch
cases = json.loads(sys.argv[1])
out = {}
for dtype, values in cases:
    row = []
    for v in values:
        v = float(v) if isinstance(v, str) else v
        try:
            r = torch.tensor([v], dtype=getattr(torch, dtype)).tolist()[0]
            row.append(r)
        except Exception as e:
            assert 'without overflow' in str(e) or 'Overflow when unpacking long' in str(e), str(e)
            row.append(None)
    out[dtype] = row
print(json.dumps(out))
`;
    // JSON has no NaN/Infinity; integral values go as Python ints (as tensor() treats them).
    const encoded = INT_CASES.map(([d, vs]) => [d, vs.map((v) => (Number.isFinite(v) ? (Number.isInteger(v) ? BigInt(v).toString() : v) : String(v)))]);
    const json = JSON.stringify(encoded).replace(/"(-?\d+)"/g, '$1');
    const r = await python(['-c', script, json]);
    expect(r.status, r.stderr).toBe(0);
    const theirs = JSON.parse(r.stdout) as Record<string, (number | boolean | null)[]>;
    for (const [dtype, values] of INT_CASES) {
      expect(
        values.map((v) => ours(dtype, v)),
        dtype,
      ).toEqual(theirs[dtype]);
    }
  });
});
