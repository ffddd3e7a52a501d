#!/usr/bin/python3
"""PyTorch side of bench/amp.ts: fp32 and bf16 autocast, training and inference,
on the same libtorch, run as a server so that rounds interleave with vgg-torch's.

Reads one JSON command per line on stdin, answers one JSON line on stdout:
  {"op": "threads", "n": k}
  {"op": "train", "batch": 128, "steps": n, "warmup": w, "seed": s, "amp": "off"|"bf16"}
      the tutorial VGG's training step (bench/train.py's model and init, SGD lr 0.005 momentum 0.9),
      with the forward pass and the loss under torch.autocast('cpu', dtype=torch.bfloat16) for "bf16"
      (backward outside, PyTorch's AMP recipe) -> images/s and the losses
  {"op": "load", "case": "vgg16-b1", "weights": path, "input": path, "onnx": path}
      torchvision's vgg16 with those weights, eval; systems:
        "optimized"  torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.script(m))), fp32
        "autocast"   m(x) under no_grad and torch.autocast('cpu', dtype=torch.bfloat16)
        "autocast-traced"  torch.jit.freeze(torch.jit.trace(m, x)) traced under autocast(cache_enabled=False),
                     the compiled bf16 form Intel's CPU guides recommend (absent if this torch cannot trace it)
      and writes the ONNX file (torch.onnx.export) that onnxruntime-node runs
  {"op": "time", "case": ..., "system": ..., "runs": n}  -> {"ms": [...]}
"""
import json, sys, time
import torch
import torchvision
sys.path.insert(0, __file__.rsplit('/', 1)[0])
from train import run  # noqa: E402

cases = {}
BF16 = dict(device_type='cpu', dtype=torch.bfloat16)


def train(cmd):
    r = run(cmd['batch'], cmd['steps'], cmd['warmup'], cmd['seed'], amp=cmd['amp'] == 'bf16')
    return {k: r[k] for k in ('images_per_s', 'first_loss', 'last_loss')}


def load(cmd):
    m = torchvision.models.vgg16()
    m.load_state_dict(torch.load(cmd['weights']))
    m.eval()
    x = torch.load(cmd['input'])
    systems = {}
    with torch.no_grad():
        systems['optimized'] = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.script(m)))

        def eager_autocast(x):
            with torch.autocast(**BF16):
                return m(x)
        systems['autocast'] = eager_autocast
        try:
            with torch.autocast(**BF16, cache_enabled=False):
                traced = torch.jit.freeze(torch.jit.trace(m, x))
                traced(x)
                traced(x)

            def traced_autocast(x):
                with torch.autocast(**BF16, cache_enabled=False):
                    return traced(x)
            systems['autocast-traced'] = traced_autocast
        except Exception as e:  # reported, not fatal: the other systems still compare
            print(f'bench/amp.py: tracing under autocast failed: {e!r}', file=sys.stderr)
        for f in systems.values():
            f(x)
        torch.onnx.export(m, x, cmd['onnx'], input_names=['input'], output_names=['logits'],
                          dynamic_axes={'input': {0: 'batch'}, 'logits': {0: 'batch'}}, opset_version=13)
        ref = m(x)
        bf = eager_autocast(x).float()
    cases[cmd['case']] = (systems, x)
    return {'systems': list(systems), 'top1_same': bool((ref.argmax(1) == bf.argmax(1)).all()),
            'max_rel': float(((bf - ref).abs().max() / ref.abs().max()))}


def timed(cmd):
    systems, x = cases[cmd['case']]
    f = systems[cmd['system']]
    ms = []
    with torch.no_grad():
        for _ in range(cmd['runs']):
            t = time.perf_counter()
            f(x)
            ms.append((time.perf_counter() - t) * 1000)
    return {'ms': ms}


for line in sys.stdin:
    cmd = json.loads(line)
    try:
        if cmd['op'] == 'train':
            r = train(cmd)
        elif cmd['op'] == 'load':
            r = load(cmd)
        elif cmd['op'] == 'time':
            r = timed(cmd)
        elif cmd['op'] == 'threads':
            torch.set_num_threads(cmd['n'])
            r = {'ok': True, 'torch': torch.__version__}
        else:
            r = {'error': 'unknown op'}
    except Exception as e:  # reported to the bench, which stops
        r = {'error': repr(e)}
    print(json.dumps(r), flush=True)
