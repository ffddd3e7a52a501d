// nn.Module's one call path (torch/nn/modules/module.py: __call__ → _call_impl):
// a module is called as `model(x)`; hooks, the memory scope and the release of
// a Sequential's links all happen there, and `forward` is only what a subclass writes.
import { describe, expect, it } from 'vitest';
import * as vt from '../lib/index.js';
import { type Tensor, keep, memory, nn, noGrad, ones, randn, save, tidy, vggTutorial } from '../lib/index.js';

class Doubler extends nn.Module {
  forward(x: Tensor): Tensor {
    const y = x.mul(2);
    return y.add(0); // y is an intermediate of this call
  }
}

describe('Module call path', () => {
  it('a module is callable as in PyTorch; calling it equals forward, and it is still an object of its class', () => {
    const lin = new nn.Linear(3, 2);
    const x = randn(4, 3);
    tidy(() => expect(lin(x).equal(lin.forward(x))).toBe(true));
    expect(lin).toBeInstanceOf(nn.Linear);
    expect(lin).toBeInstanceOf(nn.Module);
    expect(Object.keys(lin)).toEqual(['training', 'inFeatures', 'outFeatures', 'weight', 'bias']);
    expect(new nn.Sequential(new nn.ReLU(), new nn.ReLU()).length).toBe(2); // not Function.length
    expect(String(lin)).toBe('Linear(in_features=3, out_features=2, bias=True)');
    // Errors name the class, not "a function".
    expect(() => new vt.optim.SGD(lin as never, { lr: 0.1 })).toThrow(/Linear/);
    expect(() => save(lin as never, '/tmp/never-written.pth')).toThrow(
      /cannot save a value of type Linear at the top level \(save module\.stateDict\(\) instead of the module\)/,
    );
    lin.dispose();
    x.dispose();
  });

  it('registering a hook leaves forward untouched; the call runs it, a direct forward does not (as in PyTorch)', () => {
    const lin = new nn.Linear(2, 2);
    const seen: string[] = [];
    const handle = lin.registerForwardHook(() => {
      seen.push('hook');
    });
    expect(Object.getOwnPropertyNames(lin)).not.toContain('forward');
    expect(lin.forward).toBe(nn.Linear.prototype.forward);
    const x = randn(1, 2);
    lin(x).dispose();
    expect(seen).toEqual(['hook']);
    lin.forward(x).dispose();
    expect(seen).toEqual(['hook']);
    handle.remove();
    lin(x).dispose();
    expect(seen).toEqual(['hook']);
    lin.dispose();
    x.dispose();
  });

  it('the outermost call frees what it created except the result, keep()-ed tensors and tensors stored on a module', () => {
    const x = randn(2, 3);
    const base = memory().tensors;
    const out = new Doubler()(x);
    expect(memory().tensors).toBe(base + 1);
    out.dispose();

    const kept: Tensor[] = [];
    class Stores extends nn.Module {
      last: Tensor | null = null;
      history: Tensor[] = [];
      forward(v: Tensor): Tensor {
        this.last = v.add(1);
        this.history.push(v.sub(1));
        kept.push(keep(v.mul(3)));
        v.div(2); // a temporary
        return v.neg();
      }
    }
    const stores = new Stores();
    const before = memory().tensors;
    const y = new nn.Sequential(new nn.ReLU(), stores, new nn.ReLU())(x);
    // y, stores.last, stores.history[0], kept[0]; both ReLUs' and the temporary's outputs are freed.
    expect(memory().tensors).toBe(before + 4);
    for (const t of [y, stores.last!, ...stores.history, ...kept]) expect(t.isDisposed).toBe(false);
    expect(x.isDisposed).toBe(false);
    for (const t of [y, stores.last!, ...stores.history, ...kept, x]) t.dispose();
  });

  it('an error inside a nested call frees what the outermost call created and leaves the input alone', () => {
    const x = randn(1, 3, 6, 6);
    const bad = new nn.Sequential(new nn.Conv2d(3, 4, 3), new nn.ReLU(), new nn.Linear(5, 2));
    const before = memory().tensors;
    expect(() => bad(x)).toThrow(/mat1 and mat2 shapes cannot be multiplied/);
    expect(memory().tensors).toBe(before);
    expect(x.isDisposed).toBe(false);
    bad.dispose();
    x.dispose();
  });

  it("a Sequential's links are freed as the next layer consumes them: a 40-layer no-grad pass holds two at a time", () => {
    const layers = Array.from({ length: 40 }, () => new nn.ReLU()); // not in place: a new tensor per layer
    const seq = new nn.Sequential(...layers);
    const live: number[] = [];
    for (const l of layers) l.registerForwardHook(() => void live.push(memory().tensors));
    const x = ones(8, 8);
    const base = memory().tensors;
    const out = noGrad(() => seq(x));
    // At each hook: the input, the previous link (its consumer has just run) and this output.
    expect(Math.max(...live) - base).toBeLessThanOrEqual(2);
    expect(memory().tensors).toBe(base + 1);
    out.dispose();
    x.dispose();
  });

  it('a tutorial VGG called 300 times without tidy holds no tensor beyond its outputs', async () => {
    const model = vggTutorial({ numClasses: 10 }).eval();
    const x = randn(2, 3, 32, 32);
    const base = memory().tensors;
    for (let i = 0; i < 300; i++) {
      const out = i % 2 ? noGrad(() => model(x)) : model(x);
      out.dispose();
      if (i % 50 === 0) await new Promise((r) => setImmediate(r));
    }
    expect(memory().tensors).toBe(base);
    model.dispose();
    x.dispose();
  });

  it('a subclass writes only forward, as in PyTorch; its submodules are called like functions', () => {
    class Residual extends nn.Module {
      body = new nn.Sequential(new nn.Linear(4, 4), new nn.ReLU());
      forward(x: Tensor): Tensor {
        return this.body(x).add(x);
      }
    }
    const m = new Residual();
    const x = randn(3, 4, { requiresGrad: true });
    const before = memory().tensors;
    const y = m(x);
    tidy(() => y.sum().backward());
    const grad = x.grad!;
    expect(grad.shape).toEqual([3, 4]);
    expect([...m.namedParameters()].map(([k]) => k)).toEqual(['body.0.weight', 'body.0.bias']);
    expect(memory().tensors - before).toBeLessThanOrEqual(8); // y, the sum, gradients of x and the two parameters
    vt.dispose(y, grad);
    m.dispose();
    x.dispose();
  });
});

describe('every kind of model is called the same way', () => {
  it('a ScriptModule (traced, frozen, optimized, int8) is called like its module; tracing or exporting one is a clear error', () => {
    const model = new nn.Sequential(new nn.Conv2d(3, 4, 3, { padding: 1 }), new nn.ReLU(), new nn.Flatten(), new nn.Linear(4 * 8 * 8, 3)).eval();
    const x = randn(2, 3, 8, 8);
    const traced = vt.jit.trace(model, x);
    const frozen = vt.jit.freeze(traced);
    const int8 = vt.quantization.quantize(model, [x]);
    const int8Traced = vt.jit.trace(int8.eval(), x);
    for (const script of [traced, frozen, int8Traced]) {
      expect(script).toBeInstanceOf(vt.jit.ScriptModule);
      tidy(() => expect((script(x) as Tensor).equal(script.forward(x) as Tensor)).toBe(true));
    }
    tidy(() => expect((traced(x) as Tensor).equal(noGrad(() => model(x)))).toBe(true));
    tidy(() => expect((int8Traced(x) as Tensor).equal(int8(x))).toBe(true));
    expect(String(traced)).toBe('ScriptModule(traced on [2, 3, 8, 8])');
    expect(() => vt.jit.trace(traced as never, x)).toThrow(/jit\.trace: the module is a ScriptModule, compiled already; trace the nn\.Module it came from/);
    expect(() => vt.onnx.export(traced as never, x, '/tmp/never-written.onnx')).toThrow(
      /onnx\.export\(\): argument 'model' must be an nn\.Module, got a ScriptModule/,
    );
    for (const m of [traced, frozen, int8Traced, int8, model]) m.dispose();
    x.dispose();
  });
});

describe('one public name for each thing', () => {
  it('no top-level export repeats one from a namespace, and the removed aliases are gone', () => {
    const { nn, F, functional, optim, amp, jit, onnx, train, distributed, quantization, hub, transforms } = vt;
    const namespaces: Record<string, object> = { nn, F, functional, optim, amp, jit, onnx, train, distributed, quantization, hub, transforms };
    const inNamespaces = new Map<unknown, string>();
    for (const [ns, members] of Object.entries(namespaces)) {
      for (const [k, v] of Object.entries(members)) if (typeof v === 'function') inNamespaces.set(v, `${ns}.${k}`);
    }
    const repeated = Object.entries(vt)
      .filter(([k, v]) => !(k in namespaces) && inNamespaces.has(v))
      .map(([k, v]) => `${k} = ${inNamespaces.get(v)}`);
    expect(repeated).toEqual([]);
    for (const gone of ['summary', 'fit', 'evaluate', 'saveCheckpoint', 'loadCheckpoint', 'exportOnnx', 'accuracy', 'confusionMatrix']) {
      expect(vt, gone).not.toHaveProperty(gone);
    }
    expect(vt.nn).not.toHaveProperty('releaseIntermediate');
    expect(vt.F).toBe(vt.functional); // PyTorch's two spellings of one namespace
  });
});
