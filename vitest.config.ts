import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Tests of the built package need a current dist/.
    globalSetup: ['./test/global-setup.ts'],
    setupFiles: ['./test/setup.ts'],
    reporters: ['default', './test/summary-reporter.ts'],
    // Hang detectors, not speed requirements: sized for a busy 2-core machine, where
    // a test that trains may take several times what it takes on a quiet one.
    testTimeout: 300_000,
    hookTimeout: 300_000,
    // The addon is loaded once per worker; forks keep libtorch's threads out of vitest's own.
    pool: 'forks',
    // memory tests call gc() to check the FinalizationRegistry safety net.
    poolOptions: { forks: { execArgv: ['--expose-gc'] } },
  },
});
