#!/usr/bin/python3
"""PyTorch side of bench/load.ts: torch.load of one file in this fresh process.
Prints JSON: seconds, cpu_seconds, base_rss (bytes, after `import torch`), peak_rss (bytes)."""
import json, resource, sys, time
import torch

def rss():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * resource.getpagesize()

def main():
    path = sys.argv[1]
    base = rss()
    t = time.perf_counter()
    cpu = time.process_time()
    sd = torch.load(path)
    seconds = time.perf_counter() - t
    cpu_seconds = time.process_time() - cpu
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    assert len(sd) > 0
    print(json.dumps({'seconds': seconds, 'cpu_seconds': cpu_seconds, 'base_rss': base, 'peak_rss': peak}))

if __name__ == '__main__':
    main()
