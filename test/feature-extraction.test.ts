// createFeatureExtractor / getGraphNodeNames against torchvision.models.feature_extraction (live oracle).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { type Tensor, load, nn, noGrad, randn, tidy, vgg11, vggTutorial } from '../lib/index.js';
import { createFeatureExtractor, getGraphNodeNames } from '../lib/models/featureExtraction.js';
import { type EncodedTensor, bitwiseDiff, decode, hasTorchPython, python, requireLiveOracle } from './helpers.js';

const ORACLE = String.raw`
import base64, json, sys, torch, torchvision
from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names
enc = lambda t: {'dtype': 'float32', 'shape': list(t.shape), 'data': base64.b64encode(t.contiguous().numpy().tobytes()).decode()}
torch.manual_seed(0)
m = torchvision.models.vgg11()
torch.save(m.features.state_dict(), sys.argv[1])
x = torch.randn(1, 3, 32, 32)
train, ev = get_graph_node_names(m)
fx = create_feature_extractor(m, return_nodes={'features.0': 'conv1', 'features.4': 'relu2', 'features.10': 'r3'})
with torch.no_grad():
    out = fx(x)
print(json.dumps({'train': train, 'eval': ev, 'x': enc(x), 'out': {k: enc(v) for k, v in out.items()}, 'keys': list(fx.state_dict().keys())}))
`;

interface Oracle {
  train: string[];
  eval: string[];
  x: EncodedTensor;
  out: Record<string, EncodedTensor>;
  keys: string[];
}

describe.skipIf(!hasTorchPython && !requireLiveOracle)('feature extraction against torchvision (live oracle)', () => {
  it("vgg11: node names, outputs (bit for bit) and state-dict keys are torchvision's", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vgg-fx-'));
    try {
      const file = join(dir, 'features.pth');
      const r = await python(['-c', ORACLE, file]);
      expect(r.status, r.stderr).toBe(0); // Python's warnings on stderr are not failures
      const o = JSON.parse(r.stdout) as Oracle;
      tidy(() => {
        const model = vgg11();
        expect(getGraphNodeNames(model)).toEqual(o.train);
        expect(o.eval).toEqual(o.train);
        model.features.loadStateDict(load<Map<string, Tensor>>(file));
        const fx = createFeatureExtractor(model, { returnNodes: { 'features.0': 'conv1', 'features.4': 'relu2', 'features.10': 'r3' } });
        const out = noGrad(() => fx(decode(o.x)));
        expect([...out.keys()]).toEqual(Object.keys(o.out));
        for (const [k, v] of out) expect(bitwiseDiff(v, o.out[k]), k).toBeNull();
        expect([...fx.stateDict().keys()]).toEqual(o.keys);
        model.dispose();
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('feature extraction', () => {
  it('runs nothing after the last requested node; the classifier end equals forward()', () => {
    tidy(() => {
      const model = vggTutorial({ numClasses: 10, inputSize: [32, 32] }).eval();
      const names = getGraphNodeNames(model);
      expect(names.slice(0, 2)).toEqual(['x', 'features.0']);
      expect(names).toContain('flatten');
      expect(names.at(-1)).toBe('classifier.6');
      const fired: string[] = [];
      for (const [name, m] of model.namedModules())
        if (name)
          m.registerForwardHook(() => {
            fired.push(name);
          });
      const x = randn([2, 3, 32, 32]);
      const fx = createFeatureExtractor(model, { returnNodes: ['features.2', 'features'] });
      const out = fx(x);
      expect([...out.keys()]).toEqual(['features.2', 'features']);
      expect(fired).toEqual(names.slice(1).filter((n) => n.startsWith('features.')));
      expect(fired.every((n) => n.startsWith('features.'))).toBe(true);
      const all = createFeatureExtractor(model, { returnNodes: { flatten: 'flat', 'classifier.6': 'logits', x: 'input' } })(x);
      expect(all.get('input')).toBe(x);
      expect(all.get('flat')!.shape[1]).toBe(all.get('flat')!.numel() / 2);
      expect(all.get('logits')!.equal(model(x))).toBe(true);
      model.dispose();
    });
  });

  it('an unknown name is an error listing the close ones; other bad options are clear errors', () => {
    tidy(() => {
      const model = vggTutorial({ numClasses: 10, inputSize: [32, 32] });
      expect(() => createFeatureExtractor(model, { returnNodes: ['features.99'] })).toThrow(
        /node: 'features.99' is not present in model. Close names: 'features.9'/,
      );
      expect(() => createFeatureExtractor(model, { returnNodes: ['avgpol'] })).toThrow(/not present/);
      expect(() => createFeatureExtractor(model, { returnNodes: [] })).toThrow(/returnNodes is empty/);
      expect(() => createFeatureExtractor(model, { returnNodes: 'features.1' as never })).toThrow(TypeError);
      expect(() => createFeatureExtractor(model, { returnNodes: { 'features.1': 'a', 'features.2': 'a' } })).toThrow(/given twice/);
      expect(() => getGraphNodeNames(new nn.ReLU())).toThrow(/not known/);
      model.dispose();
    });
  });
});
