// jit: trace a Module into a libtorch graph; the compiled forward against the eager one.
import { describe, expect, it } from 'vitest';
import { type Tensor, jit, manualSeed, nn, noGrad, randn, tidy, vgg11, vggTutorial } from '../lib/index.js';

const same = (a: Tensor, b: Tensor): boolean => a.shape.join() === b.shape.join() && a.equal(b);

describe('jit.trace', () => {
  it('vgg11 (seeded weights, 32×32): compiled forward equals eager, at the example batch and another', () => {
    manualSeed(0);
    const model = vgg11({ numClasses: 10 }).eval();
    const engine = jit.trace(model, randn(1, 3, 32, 32));
    try {
      tidy(() => {
        for (const n of [1, 3]) {
          const x = randn(n, 3, 32, 32);
          const eager = noGrad(() => model.forward(x));
          const compiled = engine.forward(x);
          expect(compiled.shape).toEqual([n, 10]);
          expect(same(compiled, eager)).toBe(true);
        }
      });
      // The model's parameters still train after tracing.
      expect([...model.parameters()].every((p) => p.requiresGrad)).toBe(true);
    } finally {
      engine.dispose();
      model.dispose();
    }
  });

  it('the tutorial VGG (BatchNorm) and a custom Sequential', () => {
    manualSeed(1);
    const tut = vggTutorial({ batchNorm: true }).eval();
    const seq = new nn.Sequential(
      new nn.Conv2d(3, 4, 3, { padding: 1 }), new nn.ReLU(), new nn.MaxPool2d(2),
      new nn.Flatten(), new nn.Linear(4 * 4 * 4, 5), new nn.Dropout(0.5),
    ).eval();
    for (const [model, shape] of [[tut, [2, 3, 32, 32]], [seq, [2, 3, 8, 8]]] as const) {
      const x = randn(...shape);
      const engine = jit.trace(model as nn.Module, x);
      tidy(() => {
        const x2 = randn(5, ...shape.slice(1));
        expect(same(engine.forward(x2), noGrad(() => (model as nn.Module).forward(x2)))).toBe(true);
      });
      engine.dispose();
    }
  });

  it('graphOf: the traced graph as plain JS, aten::conv2d and weights as Tensor constants', () => {
    manualSeed(2);
    const seq = new nn.Sequential(new nn.Conv2d(3, 4, 3), new nn.ReLU(true), new nn.Flatten(), new nn.Linear(4 * 6 * 6, 2)).eval();
    const engine = jit.trace(seq, randn(1, 3, 8, 8));
    tidy(() => {
      const g = jit.graphOf(engine);
      expect(g.inputs).toHaveLength(1);
      expect(g.outputs).toHaveLength(1);
      const kinds = g.nodes.map((n) => n.kind);
      expect(kinds).toContain('aten::conv2d');
      expect(kinds).not.toContain('aten::_convolution');
      expect(kinds).toContain('aten::relu_');
      expect(kinds).toContain('aten::flatten');
      expect(kinds).toContain('aten::linear');
      const conv = g.nodes.find((n) => n.kind === 'aten::conv2d')!;
      expect(conv.inputs[0]).toBe(g.inputs[0]);
      const byName = new Map(g.nodes.flatMap((n) => n.outputs.map((o) => [o, n] as const)));
      const weight = byName.get(conv.inputs[1])!;
      expect(weight.kind).toBe('prim::Constant');
      expect((weight.value as Tensor).equal((seq[0] as nn.Conv2d).weight)).toBe(true);
      const stride = byName.get(conv.inputs[3])!;
      expect(stride.kind).toBe('prim::Constant');
      expect(stride.value).toEqual([1, 1]);
      expect(byName.get(conv.inputs[6])!.value).toBe(1); // groups
      expect(g.outputs[0]).toBe(g.nodes.find((n) => n.kind === 'aten::linear')!.outputs[0]);
    });
    engine.dispose();
  });

  it('errors: wrong shape names the expected one; wrong dtype; disposed engine; untraceable forwards', () => {
    manualSeed(3);
    const seq = new nn.Sequential(new nn.Conv2d(3, 4, 3), new nn.ReLU()).eval();
    const engine = jit.trace(seq, randn(2, 3, 8, 8));
    expect(() => engine.forward(randn(1, 3, 9, 8))).toThrow(/expected an input of shape \[N, 3, 8, 8\].*got \[1, 3, 9, 8\]/);
    expect(() => engine.forward(randn(3, 8, 8))).toThrow(/\[N, 3, 8, 8\]/);
    expect(() => engine.forward(randn(1, 3, 8, 8).double())).toThrow(TypeError);
    expect(() => engine.forward('x' as unknown as Tensor)).toThrow(TypeError);
    engine.dispose();
    expect(() => engine.forward(randn(1, 3, 8, 8))).toThrow(/disposed/);
    // Reading a value is data-dependent control flow: refused while tracing.
    const branchy = (x: Tensor): Tensor => (Number(x.sum().item()) > 0 ? x.relu() : x.neg());
    expect(() => jit.trace(branchy, randn(1, 4))).toThrow(/reads tensor values \(item\)/);
    // Random ops replay differently: the trace check refuses them.
    const train = new nn.Sequential(new nn.Linear(4, 4), new nn.Dropout(0.5)); // training mode
    expect(() => jit.trace(train, randn(8, 4))).toThrow(/does not reproduce the eager forward.*eval\(\)/);
    expect(() => jit.trace(() => 3 as unknown as Tensor, randn(1, 4))).toThrow(/must return a Tensor/);
    expect(() => jit.trace((x: Tensor) => { throw new Error('boom'); }, randn(1, 4))).toThrow('boom');
    // Tracing still works after a failed trace (the tracer state was abandoned).
    const ok = jit.trace((x: Tensor) => x.relu(), randn(1, 4));
    ok.dispose();
  });
});
