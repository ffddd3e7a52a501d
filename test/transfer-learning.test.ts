// Transfer-learning ergonomics (docs/features.md, "VGG as a feature network"): a frozen backbone,
// a replaced head, parameter groups with their own learning rates.
import { describe, expect, it } from 'vitest';
import { F, VGG, makeLayers, manualSeed, nn, optim, randint, randn, tidy } from '../lib/index.js';

describe('transfer learning', () => {
  it('fine-tuning only the new head leaves the frozen features bit for bit unchanged', () => {
    manualSeed(0);
    const model = new VGG(makeLayers([8, 'M', 16, 'M']), { avgpool: false, inputSize: [8, 8], numClasses: 10 });
    try {
      model.features.requiresGrad_(false); // freeze the backbone
      const head = new nn.Linear(4096, 3); // replace the last layer: 3 classes instead of 10
      model.classifier[6] = head;
      expect([...model.namedParameters()].map(([k]) => k)).toContain('classifier.6.weight');
      expect(head.weight.shape).toEqual([3, 4096]);
      const frozen = new Map([...model.features.namedParameters()].map(([k, p]) => [k, p.clone()]));
      const hidden = model.classifier[0] as nn.Linear;
      const hiddenBefore = hidden.weight.clone();
      const headBefore = head.weight.clone();
      // Two groups: the rest of the classifier gently, the new head faster; the frozen features are left out.
      const headParams = new Set<unknown>(head.parameters());
      const opt = new optim.SGD(
        [
          { params: [...model.classifier.parameters()].filter((p) => !headParams.has(p)), lr: 1e-4 },
          { params: [...head.parameters()], lr: 1e-2 },
        ],
        { lr: 0.1, momentum: 0.9 },
      );
      expect(opt.paramGroups.map((g) => g.lr)).toEqual([1e-4, 1e-2]);
      for (let step = 0; step < 3; step++) {
        tidy(() => {
          opt.zeroGrad();
          const loss = F.crossEntropy(model(randn([4, 3, 8, 8])), randint(0, 3, [4]));
          loss.backward();
          opt.step();
        });
      }
      for (const [k, p] of model.features.namedParameters()) {
        expect(p.grad, k).toBeNull();
        expect(p.equal(frozen.get(k)!), k).toBe(true);
      }
      expect(head.weight.equal(headBefore)).toBe(false);
      expect(hidden.weight.equal(hiddenBefore)).toBe(false);
      for (const t of [...frozen.values(), hiddenBefore, headBefore]) t.dispose();
      opt.dispose();
    } finally {
      model.dispose();
    }
  });
});
