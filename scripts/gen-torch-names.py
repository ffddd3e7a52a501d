"""Which aten names PyTorch exposes as torch.Tensor methods and as torch.* functions.

Operator schemas do not say it (that is native_functions.yaml's `variants:`), so the
live oracle answers, once per release: writes scripts/fixtures/torch-names/<major.minor>.json.
test/tensor-api.test.ts re-runs this and compares. Run: python3 scripts/gen-torch-names.py
"""
import json
import os
import sys

import torch

release = ".".join(torch.__version__.split(".")[:2])
public = lambda names: sorted(n for n in names if not n.startswith("_"))
out = {
    "torch": release,
    # Every public name of torch.Tensor (methods and properties): the coverage denominator.
    "tensor": public(dir(torch.Tensor)),
    # Public callables of torch.*: which aten ops have a function variant.
    "functions": public(n for n in dir(torch) if callable(getattr(torch, n, None))),
}
text = json.dumps(out, indent=0) + "\n"
if "--stdout" in sys.argv:
    sys.stdout.write(text)
else:
    path = os.path.join(os.path.dirname(__file__), "fixtures", "torch-names", release + ".json")
    with open(path, "w") as f:
        f.write(text)
