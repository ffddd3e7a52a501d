// The Tensor API surface: properties, data out, views, storage sharing, memory, repr.
import { describe, expect, it } from 'vitest';
import {
  Tensor, arange, dispose, fromBuffer, keep, memory, ones, randn, tensor, tidy, zeros,
} from '../lib/index.js';

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
    const x = tensor([[1, 2], [3, 4]]);
    expect(x.dtype).toBe('int64');
    expect(x.toTypedArray()).toEqual(new BigInt64Array([1n, 2n, 3n, 4n]));
    expect(x.tolist()).toEqual([[1, 2], [3, 4]]);
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
    expect(v.tolist()).toEqual([[1, 2], [5, 6], [9, 10]]);
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
    expect(() => tidy(() => { ones(2); throw new Error('inside'); })).toThrow('inside');
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
      const x = tensor([[1, 2.5], [3, 4]], { requiresGrad: true });
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
