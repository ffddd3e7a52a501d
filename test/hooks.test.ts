// Module and tensor hooks (torch/nn/modules/module.py, Tensor.register_hook) against the live oracle.
import { describe, expect, it } from 'vitest';
import { type Tensor, keep, memory, nn, noGrad, randn, tensor, tidy } from '../lib/index.js';
import { hasTorchPython, python, requireLiveOracle } from './helpers.js';

// A tiny MLP whose weights, input and every hook argument come from PyTorch as exact float32 values.
const ORACLE = String.raw`
import json, torch
torch.manual_seed(0)
l1, l2 = torch.nn.Linear(4, 3), torch.nn.Linear(3, 2)
model = torch.nn.Sequential(l1, torch.nn.ReLU(), l2)
x = torch.randn(2, 4, requires_grad=True)
out = {'w1': l1.weight.tolist(), 'b1': l1.bias.tolist(), 'w2': l2.weight.tolist(), 'b2': l2.bias.tolist(), 'x': x.tolist()}
seen = {}
def bw(m, gi, go):
    seen['gi'] = [None if g is None else g.tolist() for g in gi]
    seen['go'] = [g.tolist() for g in go]
    return (gi[0] * 3,)
h1 = l2.register_full_backward_hook(bw)
h2 = l1.register_forward_pre_hook(lambda m, inp: (inp[0] * 0.5,))
h3 = l1.register_forward_hook(lambda m, inp, o: o + 1)
y = model(x)
h = y.register_hook(lambda g: g * 2)
y.pow(2).sum().backward()
out.update(y=y.tolist(), xgrad=x.grad.tolist(), w1grad=l1.weight.grad.tolist(), seen=seen)
for hd in (h1, h2, h3, h): hd.remove()
x.grad = None; l1.weight.grad = None
model(x).pow(2).sum().backward()
out.update(xgrad_plain=x.grad.tolist(), w1grad_plain=l1.weight.grad.tolist())
# a module none of whose inputs require grad: the hook still sees grad_output, grad_input is (None,)
seen2 = {}
l1.register_full_backward_hook(lambda m, gi, go: seen2.update(gi=[g is None for g in gi], go=[g.tolist() for g in go]))
l1(x.detach()).sum().backward()
out['seen2'] = seen2
print(json.dumps(out))
`;

interface Oracle {
  w1: number[][];
  b1: number[];
  w2: number[][];
  b2: number[];
  x: number[][];
  y: number[][];
  xgrad: number[][];
  w1grad: number[][];
  xgrad_plain: number[][];
  w1grad_plain: number[][];
  seen: { gi: number[][][]; go: number[][][] };
  seen2: { gi: boolean[]; go: number[][][] };
}

function build(o: Oracle): { model: nn.Sequential; l1: nn.Linear; l2: nn.Linear; x: Tensor } {
  const l1 = new nn.Linear(4, 3);
  const l2 = new nn.Linear(3, 2);
  noGrad(() => {
    l1.weight.copy_(tensor(o.w1));
    l1.bias!.copy_(tensor(o.b1));
    l2.weight.copy_(tensor(o.w2));
    l2.bias!.copy_(tensor(o.b2));
  });
  return { model: new nn.Sequential(l1, new nn.ReLU(), l2), l1, l2, x: tensor(o.x, { requiresGrad: true }) };
}

describe.skipIf(!hasTorchPython && !requireLiveOracle)('hooks against PyTorch (live oracle)', () => {
  it('forward pre/forward/full backward/tensor hooks see and replace what PyTorch does, bit for bit; remove() undoes them', async () => {
    const r = await python(['-c', ORACLE]);
    expect(r.status, r.stderr).toBe(0); // Python's warnings on stderr are not failures
    const o = JSON.parse(r.stdout) as Oracle;
    tidy(() => {
      const { model, l1, l2, x } = build(o);
      const seen: { gi?: (number[][] | null)[]; go?: number[][][] } = {};
      const h1 = l2.registerFullBackwardHook((m, gi, go) => {
        expect(m).toBe(l2);
        seen.gi = gi.map((g) => (g ? (g.tolist() as number[][]) : null));
        seen.go = go.map((g) => g!.tolist() as number[][]);
        return [gi[0]!.mul(3)];
      });
      const h2 = l1.registerForwardPreHook((_m, inp) => [inp[0].mul(0.5)]);
      const h3 = l1.registerForwardHook((_m, _inp, out) => out.add(1));
      const y = model(x);
      const h = y.registerHook((g) => g.mul(2));
      y.pow(2).sum().backward();
      expect(y.tolist()).toEqual(o.y);
      expect(seen).toEqual(o.seen);
      expect(x.grad!.tolist()).toEqual(o.xgrad);
      expect(l1.weight.grad!.tolist()).toEqual(o.w1grad);
      for (const hd of [h1, h2, h3, h]) hd.remove();
      h1.remove(); // twice is harmless
      x.grad = null;
      l1.weight.grad = null;
      model(x).pow(2).sum().backward();
      expect(x.grad!.tolist()).toEqual(o.xgrad_plain);
      expect(l1.weight.grad!.tolist()).toEqual(o.w1grad_plain);

      const seen2: { gi?: boolean[]; go?: number[][][] } = {};
      l1.registerFullBackwardHook((_m, gi, go) => {
        seen2.gi = gi.map((g) => g === null);
        seen2.go = go.map((g) => g!.tolist() as number[][]);
      });
      l1(x.detach()).sum().backward();
      expect(seen2).toEqual(o.seen2);
      model.dispose();
    });
  });
});

describe('hooks', () => {
  it('a forward hook that keeps an activation inside Sequential can read it after forward', () => {
    tidy(() => {
      const relu = new nn.ReLU();
      const model = new nn.Sequential(new nn.Linear(2, 2), relu, new nn.Linear(2, 1));
      let act: Tensor | null = null;
      const h = relu.registerForwardHook((_m, _i, out) => {
        act = keep(out);
      });
      model(tensor([[1, -1]], { dtype: 'float32' }));
      expect(act!.isDisposed).toBe(false);
      expect(act!.shape).toEqual([1, 2]);
      h.remove();
      act = null;
      model(tensor([[1, -1]], { dtype: 'float32' }));
      expect(act).toBeNull();
      // hooks are not state: no state-dict keys, same repr
      expect([...model.stateDict().keys()]).toEqual(['0.weight', '0.bias', '2.weight', '2.bias']);
      expect(Object.keys(relu)).not.toContain('forward');
      model.dispose();
    });
  });

  it('a JS exception in a tensor hook is the error backward() throws, and autograd works afterwards', () => {
    tidy(() => {
      const x = tensor([1, 2], { dtype: 'float32', requiresGrad: true });
      const y = x.mul(3);
      const h = y.registerHook(() => {
        throw new RangeError('hook says no');
      });
      expect(() => y.sum().backward()).toThrow(RangeError);
      expect(() => x.mul(3).sum().backward()).not.toThrow();
      expect(x.grad!.tolist()).toEqual([3, 3]);
      h.remove();
      const bad = x.mul(2);
      bad.registerHook(() => tensor([1, 2, 3], { dtype: 'float32' }));
      expect(() => bad.sum().backward()).toThrow(/hook '0' has changed the size of value/);
      const bad2 = x.mul(2);
      bad2.registerHook(() => 5 as unknown as Tensor);
      expect(() => bad2.sum().backward()).toThrow(/must return a Tensor or undefined, got 5/);
    });
  });

  it('hooks leak no tensors: 20 backward passes through hooked modules without tidy leave the count flat', () => {
    const model = new nn.Sequential(new nn.Linear(4, 4), new nn.ReLU(), new nn.Linear(4, 1));
    const l2 = model[2] as nn.Linear;
    l2.registerFullBackwardHook(() => undefined);
    l2.registerForwardHook(() => undefined);
    const run = (): void => {
      const x = randn([3, 4], { requiresGrad: true });
      const y = model(x);
      const h = y.registerHook(() => undefined);
      const loss = y.sum();
      loss.backward();
      h.remove();
      for (const t of [x, y, loss, x.grad!]) t.dispose();
      model.zeroGrad({ setToNone: true });
    };
    run();
    const before = memory().tensors;
    for (let i = 0; i < 20; i++) run();
    expect(memory().tensors).toBe(before);
    model.dispose();
  });

  it('bad registrations are clear errors', () => {
    tidy(() => {
      expect(() => tensor([1]).registerHook((g) => g)).toThrow(/cannot register a hook on a tensor that doesn't require gradient/);
      expect(() => tensor([1], { dtype: 'float32', requiresGrad: true }).registerHook(3 as never)).toThrow(TypeError);
      expect(() => new nn.ReLU().registerForwardHook(null as never)).toThrow(TypeError);
    });
  });
});
