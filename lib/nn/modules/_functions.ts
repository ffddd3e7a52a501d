// torch/nn/modules/_functions.py: SyncBatchNorm's forward and backward, with its collectives.
//
// PyTorch's five kernels (batch_norm_stats, batch_norm_gather_stats_with_counts,
// batch_norm_elemt, batch_norm_backward_reduce, batch_norm_backward_elemt) are registered for
// CUDA only, in libtorch 1.13 and 2.x alike. On the CPU (vgg-torch's Gloo groups) each is the
// same per-channel formula as its CUDA kernel, composed of libtorch CPU ops (var_mean, sum, mul,
// …); on a CUDA tensor the forward's three run as they are. A CUDA backward cannot be had: libtorch
// runs it on worker threads, where the JS hook below cannot be called.
//
// The backward needs a collective, and vgg-torch has no torch.autograd.Function. Instead the
// output is routed through one autograd node that reaches input, weight and bias: z = cat of
// their flattened values, whose first part is overwritten (under noGrad) with the normalised
// output, and the result is a view of that part. A tensor hook on z receives dy (the gradient of
// z's first part), runs batch_norm_backward_reduce, the allReduce and batch_norm_backward_elemt,
// and returns [grad_input, grad_weight, grad_bias] in z's layout; CatBackward hands each part to
// its tensor, so autograd (and DDP's Reducer) sees ordinary gradients.
import { isGradEnabled, noGrad } from '../../autograd.js';
import { type ProcessGroup, allGather, allReduce } from '../../distributed/distributedC10d.js';
import { native, op } from '../../native.js';
import { full, tensor, zeros } from '../../tensor/creation.js';
import { keep, tidy } from '../../tensor/scope.js';
import { type Tensor, cat, stack, wrap } from '../../tensor/tensor.js';

/** Every dimension but the channels (1): what each kernel reduces over. */
const reduceDims = (x: Tensor): number[] => Array.from({ length: x.ndim }, (_, i) => i).filter((i) => i !== 1);
/** A per-channel vector viewed to broadcast against `x`: [1, C, 1, …]. */
const perChannel = (v: Tensor, x: Tensor): Tensor => v.view(x.shape.map((s, i) => (i === 1 ? s : 1)));
const call = (name: string, overload: string, ...args: unknown[]): Tensor => wrap(native.call(op(name, overload), ...args));
const handle = (t: Tensor | null): unknown => (t === null ? null : t._h);
const reciprocal = (t: Tensor): Tensor => call('aten::reciprocal', '', t._h);

/** `torch.batch_norm_stats`: per-channel mean and 1/sqrt(biased variance + eps). */
function batchNormStats(input: Tensor, eps: number): [Tensor, Tensor] {
  if (input.isCuda) {
    const [mean, invstd] = native.call(op('aten::batch_norm_stats'), input._h, eps);
    return [wrap(mean), wrap(invstd)];
  }
  const [v, mean] = native.call(op('aten::var_mean', 'correction'), input._h, reduceDims(input), 0, false);
  return [wrap(mean), call('aten::rsqrt', '', wrap(v).add(eps)._h)];
}

/**
 * `torch.batch_norm_gather_stats_with_counts`: the group's mean and invstd from each rank's
 * (mean, invstd, count) rows, updating the running statistics in place (variance unbiased).
 */
function batchNormGatherStatsWithCounts(
  input: Tensor,
  meanAll: Tensor,
  invstdAll: Tensor,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  momentum: number,
  eps: number,
  counts: Tensor,
): [Tensor, Tensor] {
  if (input.isCuda) {
    const [mean, invstd] = native.call(
      op('aten::batch_norm_gather_stats_with_counts'),
      input._h,
      meanAll._h,
      invstdAll._h,
      handle(runningMean),
      handle(runningVar),
      momentum,
      eps,
      counts._h,
    );
    return [wrap(mean), wrap(invstd)];
  }
  // The CUDA kernel's merge of (count, mean, M2) per rank, summed over ranks at once:
  // M2_j = count_j·((1/invstd_j)² − eps), M2 = Σ M2_j + count_j·(mean_j − mean)².
  const c = counts.to(meanAll.dtype).view([-1, 1]);
  const n = c.sum();
  const mean = meanAll.mul(c).sum(0).div(n);
  const std = reciprocal(invstdAll);
  const varJ = std.mul(std).sub(eps);
  const d = meanAll.sub(mean);
  const m2 = varJ.add(d.mul(d)).mul(c).sum(0);
  const invstd = call('aten::rsqrt', '', m2.div(n).add(eps)._h);
  if (runningMean) runningMean.mul_(1 - momentum).add_(mean.mul(momentum).to(runningMean.dtype));
  if (runningVar) runningVar.mul_(1 - momentum).add_(m2.div(n.sub(1)).mul(momentum).to(runningVar.dtype));
  return [mean, invstd];
}

/** `torch.batch_norm_elemt`: ((x − mean)·invstd)·weight + bias, per channel. */
function batchNormElemt(input: Tensor, weight: Tensor | null, bias: Tensor | null, mean: Tensor, invstd: Tensor, eps: number): Tensor {
  if (input.isCuda) return call('aten::batch_norm_elemt', '', input._h, handle(weight), handle(bias), mean._h, invstd._h, eps);
  let out = input.sub(perChannel(mean, input)).mul(perChannel(invstd, input));
  if (weight) out = out.mul(perChannel(weight, input));
  if (bias) out = out.add(perChannel(bias, input));
  return out;
}

/**
 * `torch.batch_norm_backward_reduce` (CPU): Σdy and Σdy·(x − mean) per channel (when the input needs a
 * gradient), and the weight and bias gradients (when they need one); null where not computed.
 */
function batchNormBackwardReduce(
  gradOut: Tensor,
  input: Tensor,
  mean: Tensor,
  invstd: Tensor,
  inputG: boolean,
  weightG: boolean,
  biasG: boolean,
): (Tensor | null)[] {
  const dims = reduceDims(input);
  const sumDy = gradOut.sum(dims);
  const sumDyXmu = gradOut.mul(input.sub(perChannel(mean, input))).sum(dims);
  return [inputG ? sumDy : null, inputG ? sumDyXmu : null, weightG ? sumDyXmu.mul(invstd) : null, biasG ? sumDy : null];
}

/** `torch.batch_norm_backward_elemt` (CPU): the input gradient from the group's Σdy and Σdy·(x − mean). */
function batchNormBackwardElemt(
  gradOut: Tensor,
  input: Tensor,
  mean: Tensor,
  invstd: Tensor,
  weight: Tensor | null,
  sumDy: Tensor,
  sumDyXmu: Tensor,
  count: Tensor,
): Tensor {
  // The CUDA kernel's factors: dy − Σdy/N − (x − mean)·invstd²·Σdy·(x − mean)/N, times invstd·weight.
  const norm = reciprocal(count.sum().to(sumDy.dtype));
  const meanDy = sumDy.mul(norm);
  const factor1 = invstd.mul(invstd).mul(sumDyXmu).mul(norm);
  const factor2 = weight ? invstd.mul(weight) : invstd;
  return gradOut
    .sub(perChannel(meanDy, input))
    .sub(input.sub(perChannel(mean, input)).mul(perChannel(factor1, input)))
    .mul(perChannel(factor2, gradOut));
}

/**
 * @internal `torch.nn.modules._functions.SyncBatchNorm.apply`: batch normalisation with the
 * statistics of every rank of `group` (training mode; a group of more than one rank). Updates the running
 * statistics in place; the backward all-reduces Σdy and Σdy·(x − mean) across the group.
 */
export function syncBatchNorm(
  input: Tensor,
  weight: Tensor | null,
  bias: Tensor | null,
  runningMean: Tensor | null,
  runningVar: Tensor | null,
  eps: number,
  momentum: number,
  group: ProcessGroup,
): Tensor {
  const needs = isGradEnabled() ? [input.requiresGrad, weight?.requiresGrad ?? false, bias?.requiresGrad ?? false] : [false, false, false];
  if (input.isCuda && needs.some(Boolean)) {
    throw new Error(
      'SyncBatchNorm: training with gradients needs CPU tensors (its backward is a JS tensor hook, and libtorch runs a CUDA backward on worker threads, which cannot call JS); got a tensor on ' +
        input.device,
    );
  }
  const numChannels = input.shape[1];
  // The saved tensors are detached: holding them must not hold the caller's graph.
  const [x, w, mean, invstd, countInt, out] = noGrad(() => {
    const x = input.detach().contiguous();
    const w = weight?.detach().contiguous() ?? null;
    let combined: Tensor;
    if (x.numel() > 0) {
      const [m, s] = batchNormStats(x, eps);
      const count = full([1], x.numel() / numChannels, { dtype: m.dtype, device: m.device });
      combined = cat([m, s, count]);
    } else {
      // An empty rank still joins the allGather, with a count of 0 that the mask drops.
      combined = zeros([2 * numChannels + 1], { dtype: x.dtype, device: x.device });
    }
    // allGather, not allReduce: the ranks' counts may differ.
    const gathered = stack(allGather(combined, { group }));
    const rows = Array.from(
      gathered
        .select(1, 2 * numChannels)
        .cpu()
        .toTypedArray() as Float32Array | Float64Array,
    )
      .map((c, i) => (c >= 1 ? i : -1))
      .filter((i) => i >= 0);
    const kept = call('aten::index_select', '', gathered._h, 0, tensor(rows, { dtype: 'int64', device: gathered.device })._h);
    const meanAll = kept.narrow(1, 0, numChannels);
    const invstdAll = kept.narrow(1, numChannels, numChannels);
    let counts = kept.select(1, 2 * numChannels);
    if (runningMean && counts.dtype !== runningMean.dtype) counts = counts.to(runningMean.dtype);
    const [mean, invstd] = batchNormGatherStatsWithCounts(x, meanAll, invstdAll, runningMean, runningVar, momentum, eps, counts);
    const out = x.numel() > 0 ? batchNormElemt(x, w, bias?.detach() ?? null, mean, invstd, eps) : x.clone();
    return [x, w, mean, invstd, kept.select(1, 2 * numChannels).to('int32'), out];
  });
  if (!needs.some(Boolean)) return out;

  const n = x.numel();
  // z's layout: [input, weight, bias] flattened (the ones that exist); the hook may run after the
  // caller freed its handles, so it reads only what is captured here.
  const parts = [input, weight, bias].map((t, i) => (t === null ? null : { index: i, size: t.numel() }));
  const present = parts.filter((p): p is { index: number; size: number } => p !== null);
  const dtype = input.dtype;
  const z = cat([input, weight, bias].filter((t): t is Tensor => t !== null).map((t) => t.reshape(-1).to(dtype)));
  noGrad(() => z.narrow(0, 0, n).copy_(out.reshape(-1)));
  const saved = [x, w, mean, invstd, countInt].filter((t): t is Tensor => t !== null);
  for (const t of saved) keep(t);
  z.registerHook((gz) => {
    if (x.isDisposed) {
      throw new Error('SyncBatchNorm: backward through the graph a second time; its saved statistics were freed after the first backward');
    }
    try {
      return tidy(() => {
        let offset = 0;
        const slots = present.map((p) => {
          const s = gz.narrow(0, offset, p.size);
          offset += p.size;
          return s;
        });
        if (n === 0) {
          // This rank had no data, but its peers' allReduce must still be met.
          if (needs[0]) allReduce(zeros([2 * numChannels], { dtype: x.dtype, device: x.device }), { group });
          return cat(slots.map((s) => s.mul(0)));
        }
        const dy = slots[0].view(x.shape);
        const [sumDy, sumDyXmu, gradWeight, gradBias] = batchNormBackwardReduce(dy, x, mean, invstd, needs[0], needs[1], needs[2]);
        const grads: (Tensor | null)[] = [null, gradWeight, gradBias];
        if (needs[0] && sumDy && sumDyXmu) {
          const combined = cat([sumDy, sumDyXmu]);
          allReduce(combined, { group });
          const sums = [combined.narrow(0, 0, numChannels), combined.narrow(0, numChannels, numChannels)];
          grads[0] = batchNormBackwardElemt(dy, x, mean, invstd, w, sums[0], sums[1], countInt).reshape(-1);
        }
        // A part that needs no gradient keeps what arrived (CatBackward does not pass it on).
        return cat(present.map((p, i) => (grads[p.index] ?? slots[i]).to(dtype)));
      });
    } finally {
      for (const t of saved) t.dispose();
    }
  });
  return z.narrow(0, 0, n).view(x.shape);
}
