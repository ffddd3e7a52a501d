import { defineConfig } from 'tsup';

export default defineConfig({
  // downloadMain: the child process behind downloadSync (pretrained weights, datasets); poolWorker: a DataLoader worker thread; cli: the vgg-torch bin.
  entry: { index: 'lib/index.ts', downloadMain: 'lib/utils/downloadMain.ts', poolWorker: 'lib/data/poolWorker.ts', cli: 'lib/cli/index.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  clean: true,
  shims: true,
  sourcemap: true,
  target: 'node20',
  // Class names are printed (print(model), optimizers, transforms) and checked by users, as in
  // PyTorch's __class__.__name__; without this esbuild renames self-referencing classes (_Sequential).
  keepNames: true,
});
