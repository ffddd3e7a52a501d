#!/usr/bin/python3
"""PyTorch side of bench/ddp.ts: one rank (or the single process) of the same
measurement in PyTorch on the same libtorch: the tutorial's VGG (bench/train.py),
DistributedDataParallel over gloo when WORLD_SIZE > 1 (env://, as torchrun sets
it), the same synthetic in-memory batches, WARMUP untimed steps, then STEPS timed
ones between barriers, and the median of three allreduces of one float32 tensor
as large as the model's parameters.

Env (set by bench/ddp.ts): RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT,
BENCH_THREADS, BATCH (global), STEPS, WARMUP; on the shaped link also HOOK
(allreduce, fp16, bf16, powersgd), POWERSGD_RANK and GLOO_SOCKET_IFNAME, whose
sent bytes over the timed steps are reported. Prints one JSON line.
"""
import json, os, sys, time
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.optim as optim

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from train import CFG, VGG, make_layers  # noqa: E402


def tx_bytes():
    """Bytes this host has sent on its interface (in its network namespace), or None off the shaped link."""
    iface = os.environ.get('GLOO_SOCKET_IFNAME')
    if not iface:
        return None
    with open(f'/sys/class/net/{iface}/statistics/tx_bytes') as f:
        return int(f.read())


def register_hook(model, hook):
    """The comm hook bench/ddp.ts registers on its side, PyTorch's own."""
    if hook == 'allreduce' or not isinstance(model, nn.parallel.DistributedDataParallel):
        return
    from torch.distributed.algorithms.ddp_comm_hooks import default_hooks as dh, powerSGD_hook as ps
    if hook == 'fp16':
        model.register_comm_hook(None, dh.fp16_compress_hook)
    elif hook == 'bf16':
        # PyTorch's DDP refuses bf16_compress_hook by its name without CUDA and NCCL; the same function under another name.
        model.register_comm_hook(None, lambda state, bucket: dh.bf16_compress_hook(state, bucket))
    elif hook == 'powersgd':
        state = ps.PowerSGDState(process_group=None, matrix_approximation_rank=int(os.environ['POWERSGD_RANK']),
                                 start_powerSGD_iter=2)
        def waited(state, bucket):
            # powerSGD_hook itself, waited for: its chained allreduces, issued from future callbacks,
            # can reach Gloo in another order on each rank (a size mismatch abort); vgg-torch's waits too.
            fut = ps.powerSGD_hook(state, bucket)
            fut.wait()
            return fut
        model.register_comm_hook(state, waited)
    else:
        raise ValueError(f'unknown HOOK {hook}')


def main():
    rank, world = int(os.environ.get('RANK', 0)), int(os.environ.get('WORLD_SIZE', 1))
    batch, steps, warmup = int(os.environ['BATCH']) // world, int(os.environ['STEPS']), int(os.environ['WARMUP'])
    torch.set_num_threads(int(os.environ['BENCH_THREADS']))
    if world > 1:
        dist.init_process_group('gloo', init_method='env://')
    torch.manual_seed(777)
    net = VGG(make_layers(CFG))
    params = sum(p.numel() for p in net.parameters())
    model = nn.parallel.DistributedDataParallel(net) if world > 1 else net
    register_hook(model, os.environ.get('HOOK', 'allreduce'))
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.SGD(model.parameters(), lr=0.005, momentum=0.9)
    torch.manual_seed(1000 + rank)
    data = [(torch.randn(batch, 3, 32, 32), torch.randint(0, 10, (batch,))) for _ in range(warmup + steps)]

    def step(x, y):
        optimizer.zero_grad(set_to_none=True)
        loss = criterion(model(x), y)
        loss.backward()
        optimizer.step()
        loss.item()

    for i in range(warmup):
        step(*data[i])
    if world > 1:
        dist.barrier()
    sent = tx_bytes()
    t = time.perf_counter()
    step_ms = []
    for i in range(warmup, warmup + steps):
        a = time.perf_counter()
        step(*data[i])
        step_ms.append((time.perf_counter() - a) * 1000)
    if world > 1:
        dist.barrier()
    seconds = time.perf_counter() - t
    sent = tx_bytes() - sent if sent is not None else None
    allreduce_ms = None
    if world > 1:
        flat, times = torch.zeros(params), []
        for _ in range(3):
            dist.barrier()
            a = time.perf_counter()
            dist.all_reduce(flat)
            times.append((time.perf_counter() - a) * 1000)
        allreduce_ms = sorted(times)[1]
    print(json.dumps({'rank': rank, 'seconds': seconds, 'images': batch * steps, 'allreduceMs': allreduce_ms, 'params': params,
                      'stepMs': step_ms, 'txBytes': sent}), flush=True)
    # Not destroy_process_group() and a normal exit: PyTorch 1.13 can deadlock in
    # ~Reducer -> ~ProcessGroupGloo at interpreter exit (seen here: one rank spinning forever).
    os._exit(0)


if __name__ == '__main__':
    main()
