// torch/distributed/algorithms/ddp_comm_hooks/default_hooks.py. Each hook is a token for a
// C++ hook (native/distributed.cc): the Reducer runs hooks inside libtorch's autograd, on
// threads where no JS can run, so a hook cannot be a JS function.

/** Which native hook a {@link CommHook} stands for. */
export type CommHookKind = 'allreduce' | 'fp16' | 'bf16' | 'powerSGD';

/**
 * A DDP communication hook for `DistributedDataParallel.registerCommHook(state, hook)`: one of
 * {@link allreduceHook}, {@link fp16CompressHook}, {@link bf16CompressHook}, whose state is the
 * process group to communicate over (`null`: the world), as PyTorch's default hooks take; or
 * `powerSGD.powerSGDHook`, whose state is a `powerSGD.PowerSGDState`.
 */
export class CommHook {
  /** @internal */
  constructor(
    /** PyTorch's name of the hook (`hook.__qualname__`), e.g. `'fp16_compress_hook'`. */
    readonly name: string,
    /** @internal */
    readonly _kind: CommHookKind,
  ) {
    Object.freeze(this);
  }
}

/**
 * `allreduce_hook`: divides each gradient bucket by the group size and sums it over the group,
 * which is DDP's default averaging made explicit. On DDP's own group this is c10d's built-in
 * ALLREDUCE hook.
 */
export const allreduceHook = new CommHook('allreduce_hook', 'allreduce');

/**
 * `fp16_compress_hook`: casts each bucket to float16, divides it by the group size (before the
 * sum, so it cannot overflow), sums it over the group and copies the result back into the
 * float32 bucket: half the bytes on the wire, gradients rounded to float16. On DDP's own group
 * this is c10d's built-in FP16_COMPRESS hook.
 */
export const fp16CompressHook = new CommHook('fp16_compress_hook', 'fp16');

/**
 * `bf16_compress_hook`: as {@link fp16CompressHook} in bfloat16 (float32's range, 8 bits of
 * mantissa). Gloo sums bfloat16 only from libtorch 2.2: on older releases registering it throws.
 * Unlike PyTorch's DDP, which accepts it only with CUDA 11+ and NCCL 2.10+, it runs on Gloo.
 */
export const bf16CompressHook = new CommHook('bf16_compress_hook', 'bf16');
