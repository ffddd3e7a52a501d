// A long training loop holds flat memory: 10,000 forward/backward steps of a
// small conv net inside tidy, with handle counts and RSS watched.
import { describe, expect, it } from 'vitest';
import { F, memory, manualSeed, noGrad, randint, randn, tidy } from '../lib/index.js';

describe('memory in a training loop', () => {
  it('10,000 steps: tensor count returns to the same value every step, RSS flat after warm-up', () => {
    manualSeed(0);
    const w1 = randn([8, 3, 3, 3]).mul(0.1).requiresGrad_();
    const b1 = randn([8]).mul(0.1).requiresGrad_();
    const w2 = randn([10, 8 * 4 * 4]).mul(0.05).requiresGrad_();
    const params = [w1, b1, w2];
    const baseline = memory().tensors;
    const STEPS = 10_000;
    const WARMUP = 1_000;
    let rssAfterWarmup = 0;
    let maxRss = 0;
    let firstLoss = 0;
    let lastLoss = 0;
    for (let step = 0; step < STEPS; step++) {
      const loss = tidy(() => {
        const x = randn(4, 3, 8, 8);
        const target = randint(0, 10, [4]);
        const h = F.maxPool2d(F.relu(F.conv2d(x, w1, b1, 1, 1)), 2);
        const out = F.linear(h.flatten(1), w2);
        const l = F.crossEntropy(out, target);
        l.backward();
        noGrad(() => {
          for (const p of params) {
            const g = p.grad!;
            p.sub_(g, 0.01);
            g.zero_();
          }
        });
        return l.item() as number;
      });
      if (step === 0) firstLoss = loss;
      lastLoss = loss;
      expect(memory().tensors).toBe(baseline);
      if (step === WARMUP) rssAfterWarmup = process.memoryUsage.rss();
      if (step > WARMUP && step % 100 === 0) maxRss = Math.max(maxRss, process.memoryUsage.rss());
    }
    expect(Number.isFinite(firstLoss) && Number.isFinite(lastLoss)).toBe(true);
    expect(maxRss / rssAfterWarmup).toBeLessThan(1.05);
    for (const p of params) p.dispose();
  });
});
