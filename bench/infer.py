#!/usr/bin/python3
"""PyTorch side of bench/infer.ts: inference of the same models with the same
weights, run as a server so that rounds interleave with vgg-torch's.

Reads one JSON command per line on stdin, answers one JSON line on stdout:
  {"op": "load", "case": "vgg16-b1", "arch": "vgg16"|"tutorial", "weights": path, "batch": 8, "size": 224}
      builds the eval model, the eager one, torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.script(m))),
      and FX int8 (prepare_fx/convert_fx, the x86 default qconfig mapping, engine onednn), calibrated on 8 seeded batches;
      optionally writes the ONNX file (torch.onnx.export, dynamic batch) to "onnx"
  {"op": "time", "case": ..., "system": "eager"|"optimized"|"int8", "runs": n}  -> {"ms": [...]} per-run milliseconds
  {"op": "threads", "n": k}
"""
import json, sys, time
import torch
import torchvision
sys.path.insert(0, __file__.rsplit('/', 1)[0])
from train import VGG as TutorialVGG, make_layers, CFG  # noqa: E402

cases = {}


def build(arch):
    return TutorialVGG(make_layers(CFG)) if arch == 'tutorial' else getattr(torchvision.models, arch)()


def load(cmd):
    m = build(cmd['arch'])
    m.load_state_dict(torch.load(cmd['weights']))
    m.eval()
    x = torch.load(cmd['input'])
    with torch.no_grad():
        opt = torch.jit.optimize_for_inference(torch.jit.freeze(torch.jit.script(m)))
        for _ in range(2):
            opt(x)
    systems = {'eager': m, 'optimized': opt}
    if cmd.get('int8'):
        from torch.ao.quantization import get_default_qconfig_mapping
        from torch.ao.quantization.quantize_fx import prepare_fx, convert_fx
        torch.backends.quantized.engine = 'onednn' if 'onednn' in torch.backends.quantized.supported_engines else 'fbgemm'
        import copy
        prepared = prepare_fx(copy.deepcopy(m), get_default_qconfig_mapping(torch.backends.quantized.engine), (x,))
        g = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for _ in range(8):
                prepared(torch.randn(x.shape, generator=g))
        systems['int8'] = convert_fx(prepared)
    if cmd.get('onnx'):
        torch.onnx.export(m, x, cmd['onnx'], input_names=['input'], output_names=['logits'],
                          dynamic_axes={'input': {0: 'batch'}, 'logits': {0: 'batch'}}, opset_version=13)
    cases[cmd['case']] = (systems, x)
    with torch.no_grad():
        out = m(x)
    return {'ok': True, 'checksum': float(out.double().sum())}


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
        if cmd['op'] == 'load':
            r = load(cmd)
        elif cmd['op'] == 'time':
            r = timed(cmd)
        elif cmd['op'] == 'threads':
            torch.set_num_threads(cmd['n'])
            r = {'ok': True}
        else:
            r = {'error': 'unknown op'}
    except Exception as e:  # reported to the bench, which stops
        r = {'error': repr(e)}
    print(json.dumps(r), flush=True)
