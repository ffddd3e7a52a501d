// Autograd behaviour beyond the per-op gradients of ops.test.ts.
import { describe, expect, it } from 'vitest';
import { enableGrad, inferenceMode, isGradEnabled, isInferenceModeEnabled, noGrad, ones, randn, setGradEnabled, tensor, tidy } from '../lib/index.js';

describe('autograd', () => {
  it('backward with an explicit gradient on a non-scalar output', () => {
    tidy(() => {
      const x = tensor([1, 2, 3], { dtype: 'float32', requiresGrad: true });
      const y = x.mul(x);
      y.backward(tensor([1, 0.5, 0.25]));
      expect(x.grad!.tolist()).toEqual([2, 2, 1.5]);
    });
  });

  it('accumulates across backward calls, retains the graph on request, and can be reset', () => {
    tidy(() => {
      const x = tensor([2], { dtype: 'float32', requiresGrad: true });
      const y = x.pow(3).sum();
      y.backward(undefined, { retainGraph: true });
      y.backward();
      expect(x.grad!.item()).toBe(24); // 2 × 3x² at x = 2
      expect(() => y.backward()).toThrow(/Trying to backward through the graph a second time/);
      x.grad = null;
      expect(x.grad).toBeNull();
    });
  });

  it('retainGrad keeps the gradient of a non-leaf; leaves and grad_fn are reported', () => {
    tidy(() => {
      const x = randn([3], { requiresGrad: true });
      const h = x.mul(2);
      h.retainGrad();
      h.sum().backward();
      expect(h.grad!.tolist()).toEqual([1, 1, 1]);
      expect(x.isLeaf).toBe(true);
      expect(h.isLeaf).toBe(false);
      expect(h.gradFn).toBe('MulBackward0');
      expect(x.gradFn).toBeNull();
    });
  });

  it('createGraph gives differentiable gradients (second derivative)', () => {
    tidy(() => {
      const x = tensor([3], { dtype: 'float64', requiresGrad: true });
      const y = x.pow(3).sum();
      y.backward(undefined, { createGraph: true });
      const g = x.grad!;
      expect(g.item()).toBe(27);
      expect(g.requiresGrad).toBe(true);
      x.grad = null;
      g.sum().backward();
      expect(x.grad!.item()).toBe(18); // 6x
    });
  });

  it('noGrad, enableGrad and setGradEnabled switch recording, and restore it', () => {
    tidy(() => {
      const x = randn([2], { requiresGrad: true });
      expect(isGradEnabled()).toBe(true);
      const y = noGrad(() => {
        expect(isGradEnabled()).toBe(false);
        const inner = enableGrad(() => x.mul(2));
        expect(inner.requiresGrad).toBe(true);
        return x.mul(2);
      });
      expect(y.requiresGrad).toBe(false);
      expect(isGradEnabled()).toBe(true);
      expect(() =>
        noGrad(() => {
          throw new Error('boom');
        }),
      ).toThrow('boom');
      expect(isGradEnabled()).toBe(true);
      setGradEnabled(false);
      expect(x.add(1).requiresGrad).toBe(false);
      setGradEnabled(true);
    });
  });

  it('noGrad around an async function holds until it settles', async () => {
    const x = randn([2], { requiresGrad: true });
    const y = await noGrad(async () => {
      await new Promise((r) => setTimeout(r, 5));
      return x.mul(3);
    });
    expect(y.requiresGrad).toBe(false);
    expect(isGradEnabled()).toBe(true);
    x.dispose();
    y.dispose();
  });

  it('inferenceMode makes inference tensors and nests', () => {
    tidy(() => {
      const w = randn([2], { requiresGrad: true });
      const out = inferenceMode(() => {
        expect(isInferenceModeEnabled()).toBe(true);
        return w.mul(2);
      });
      expect(isInferenceModeEnabled()).toBe(false);
      expect(out.requiresGrad).toBe(false);
      // Inference tensors cannot be saved for backward, as in PyTorch.
      expect(() => w.mul(out).sum().backward()).toThrow(/Inference tensors cannot be saved for backward/);
    });
  });

  it('detach shares storage and cuts the graph; requiresGrad_ on a leaf', () => {
    tidy(() => {
      const x = ones([3]).requiresGrad_();
      const d = x.detach();
      expect(d.requiresGrad).toBe(false);
      expect(d.sharesStorageWith(x)).toBe(true);
      x.requiresGrad = false;
      expect(x.requiresGrad).toBe(false);
    });
  });
});
