#!/usr/bin/python3
"""torchvision's side of bench/data.ts: the CIFAR-10 tutorial's training input
pipeline (torchvision.datasets.CIFAR10 + RandomCrop(32, padding=4) +
RandomHorizontalFlip + ToTensor + Normalize, DataLoader(batch_size=512,
shuffle=True, num_workers=0)) on the synthetic CIFAR-10-format files that
bench/data.ts wrote, one intra-op thread. Prints one JSON line.

Usage: /usr/bin/python3 bench/data.py ROOT EPOCHS
  ROOT holds cifar-10-batches-bin/test_batch.bin (the binary layout).
"""
import json, os, pickle, sys, time
import numpy as np
import torch
import torchvision
import torchvision.transforms as T

root, epochs = sys.argv[1], int(sys.argv[2])
torch.set_num_threads(1)

# torchvision's CIFAR10 reads the Python version of the files: write it from the binary one.
raw = np.fromfile(os.path.join(root, 'cifar-10-batches-bin', 'test_batch.bin'), dtype=np.uint8).reshape(-1, 3073)
py = os.path.join(root, 'cifar-10-batches-py')
os.makedirs(py, exist_ok=True)
with open(os.path.join(py, 'test_batch'), 'wb') as f:
    pickle.dump({'data': raw[:, 1:].copy(), 'labels': raw[:, 0].astype(int).tolist()}, f)


class SyntheticCIFAR10(torchvision.datasets.CIFAR10):
    """torchvision's CIFAR10 unchanged, except that the synthetic files have no official MD5."""
    def _check_integrity(self):
        return True

    def _load_meta(self):
        self.classes = ['plane', 'car', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck']
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}


transform = T.Compose([
    T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(),
    T.Normalize((0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)),
])
ds = SyntheticCIFAR10(root, train=False, transform=transform)
loader = torch.utils.data.DataLoader(ds, batch_size=512, shuffle=True, num_workers=0)
torch.manual_seed(0)
for i, (x, y) in enumerate(loader):  # warm-up
    if i == 1:
        break
best = float('inf')
for _ in range(epochs):
    t = time.perf_counter()
    n = 0
    for x, y in loader:
        n += x.shape[0]
    best = min(best, time.perf_counter() - t)
print(json.dumps({'images': n, 'seconds': best, 'imagesPerSecond': n / best, 'torch': torch.__version__,
                  'torchvision': torchvision.__version__, 'shape': list(x.shape), 'dtype': str(x.dtype)}))
