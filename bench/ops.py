#!/usr/bin/python3
"""PyTorch side of bench/ops.ts: same cases, same libtorch. Prints JSON timings (ms)."""
import json, sys, time
import torch
import torch.nn.functional as F

def tiny_add(calls):
    a = torch.ones(1, 1); b = torch.ones(1, 1)
    for _ in range(1000): torch.add(a, b)
    t = time.perf_counter()
    for _ in range(calls): torch.add(a, b)
    return (time.perf_counter() - t) * 1e6 / calls  # µs per call

def conv(n, c, hw, reps):
    torch.manual_seed(0)
    x = torch.randn(n, c, hw, hw)
    w = torch.randn(c, c, 3, 3, requires_grad=True)
    b = torch.randn(c, requires_grad=True)
    def step():
        y = F.conv2d(x, w, b, padding=1)
        y.sum().backward()
        w.grad = None; b.grad = None
    step(); step()
    times = []
    for _ in range(reps):
        t = time.perf_counter(); step(); times.append((time.perf_counter() - t) * 1e3)
    times.sort()
    return times[len(times) // 2]

def main():
    spec = json.loads(sys.argv[1])
    torch.set_num_threads(spec['threads'])
    out = {'add_us': tiny_add(spec['calls'])}
    out['conv_ms'] = [conv(n, c, hw, spec['reps']) for (n, c, hw) in spec['convs']]
    print(json.dumps(out))

main()
