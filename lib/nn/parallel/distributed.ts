// torch/nn/parallel/distributed.py: DistributedDataParallel on c10d's Reducer.
// The Reducer (libtorch C++) registers hooks on each parameter's gradient
// accumulator, so libtorch's autograd engine itself copies gradients into
// buckets and starts each bucket's allreduce as soon as it is full, overlapping
// communication with the rest of backward; no JS runs during backward.
import { isGradEnabled, noGrad } from '../../autograd.js';
import { ProcessGroup, resolveGroup } from '../../distributed/distributedC10d.js';
import { CommHook } from '../../distributed/algorithms/ddpCommHooks/defaultHooks.js';
import { PowerSGDState } from '../../distributed/algorithms/ddpCommHooks/powerSGD.js';
import { native, type Handle } from '../../native.js';
import { Tensor } from '../../tensor/tensor.js';
import { checkBoolean, checkOptions, describe } from '../../utils/args.js';
import { Module } from '../modules/module.js';

export interface DistributedDataParallelOptions {
  /** Default: the world (the default process group). */
  processGroup?: ProcessGroup;
  /** Broadcast rank 0's buffers (BatchNorm running statistics) before every forward. Default true. */
  broadcastBuffers?: boolean;
  /** Bucket size in MiB for the gradient allreduce. Default 25. */
  bucketCapMb?: number;
  /** Find parameters that got no gradient in a step (slower). Default false. */
  findUnusedParameters?: boolean;
  /** Gradients are views into the allreduce buckets (saves a copy). Default false. */
  gradientAsBucketView?: boolean;
}

// PyTorch's broadcast_bucket_size for parameters and buffers.
const BROADCAST_BUCKET_BYTES = 250 * 1024 * 1024;

/** Every tensor in a forward's output (arrays and plain objects searched), as Python's _find_tensors. */
function findTensors(x: unknown, out: Tensor[] = []): Tensor[] {
  if (x instanceof Tensor) out.push(x);
  else if (Array.isArray(x)) for (const v of x) findTensors(v, out);
  else if (x instanceof Map) for (const v of x.values()) findTensors(v, out);
  else if (x !== null && typeof x === 'object' && Object.getPrototypeOf(x) === Object.prototype) for (const v of Object.values(x)) findTensors(v, out);
  return out;
}

/**
 * `torch.nn.parallel.DistributedDataParallel`: wraps a module so that each rank's backward ends
 * with every rank holding the average of all ranks' gradients. At construction it checks that
 * every rank has the same parameter shapes and copies rank 0's parameters and buffers to all.
 * Gradients are averaged in buckets (`bucketCapMb`, in reverse parameter order, rebuilt after the
 * first iteration from the order gradients arrived) by c10d's Reducer, overlapped with backward.
 * `stateDict()` keys start with `module.`, as PyTorch's; save `ddp.module` for plain keys.
 */
export class DistributedDataParallel<A extends unknown[] = [Tensor], R = Tensor> extends Module<A, R> {
  /** The wrapped module. */
  readonly module: Module<A, R>;
  private readonly _group: ProcessGroup;
  private readonly _broadcastBuffers: boolean;
  private readonly _findUnused: boolean;
  private _reducer: number;
  private _requireBackwardGradSync = true;
  private _requireForwardParamSync = true;
  private _forwardCalled = false;
  private _commHook: string | null = null;

  constructor(module: Module<A, R>, options: DistributedDataParallelOptions = {}) {
    super();
    const fn = 'DistributedDataParallel()';
    if (!(module instanceof Module)) throw new TypeError(`${fn}: module must be an nn.Module, got ${describe(module)}`);
    checkOptions(fn, options, ['processGroup', 'broadcastBuffers', 'bucketCapMb', 'findUnusedParameters', 'gradientAsBucketView']);
    checkBoolean(fn, 'broadcastBuffers', options.broadcastBuffers);
    checkBoolean(fn, 'findUnusedParameters', options.findUnusedParameters);
    checkBoolean(fn, 'gradientAsBucketView', options.gradientAsBucketView);
    const capMb = options.bucketCapMb ?? 25;
    if (typeof capMb !== 'number' || !(capMb > 0) || !Number.isFinite(capMb))
      throw new RangeError(`${fn}: bucketCapMb must be a positive number, got ${describe(capMb)}`);
    this._group = resolveGroup(fn, options.processGroup);
    this.module = module;
    this._broadcastBuffers = options.broadcastBuffers ?? true;
    this._findUnused = options.findUnusedParameters ?? false;

    // _build_params_for_reducer: parameters that require grad, module order, each once.
    const named = [...module.namedParameters()].filter(([, p]) => p.requiresGrad);
    if (named.length === 0) throw new RangeError(`${fn}: the module has no parameter that requires grad`);
    const params = named.map(([, p]) => p._h);
    native.distVerifyParams(this._group.id, params);
    // _sync_module_states: rank 0's parameters and buffers to every rank.
    this.broadcastStates([...module.parameters(), ...module.buffers()]);
    this._reducer = native.distReducerNew(
      this._group.id,
      params,
      Math.floor(capMb * 1024 * 1024),
      this._findUnused,
      options.gradientAsBucketView ?? false,
      named.map(([n]) => n),
    );
  }

  private broadcastStates(tensors: Tensor[]): void {
    if (tensors.length === 0) return;
    noGrad(() => {
      const detached = tensors.map((t) => t.detach());
      try {
        native.distBroadcastCoalesced(
          this._group.id,
          detached.map((t) => t._h as Handle),
          BROADCAST_BUCKET_BYTES,
          0,
        );
      } finally {
        for (const t of detached) t.dispose();
      }
    });
  }

  /** The process group gradients are averaged over (`ddp.process_group`). */
  get processGroup(): ProcessGroup {
    return this._group;
  }

  /**
   * @internal Copies rank 0's buffers (BatchNorm running statistics) to every rank, as each
   * training forward does with `broadcastBuffers`: before evaluating the unwrapped module.
   */
  _syncBuffers(): void {
    this.broadcastStates([...this.module.buffers()]);
  }

  private reducer(): number {
    if (this._reducer < 0) throw new Error('DistributedDataParallel: disposed');
    return this._reducer;
  }

  /**
   * Runs the wrapped module. With grad enabled (and outside {@link noSync}) the next backward
   * averages gradients across ranks; with `broadcastBuffers`, rank 0's buffers are copied to
   * every rank first.
   */
  forward(...args: A): R {
    const grad = isGradEnabled();
    this._forwardCalled = true;
    const sync = grad && this._requireBackwardGradSync;
    native.distReducerPrepareForward(this.reducer(), sync, grad);
    if (this._requireForwardParamSync && this._broadcastBuffers) this.broadcastStates([...this.module.buffers()]);
    const out = this.module(...args);
    if (sync) {
      this._requireForwardParamSync = true;
      native.distReducerPrepareForBackward(this._reducer, this._findUnused ? findTensors(out).map((t) => t._h) : []);
    } else {
      this._requireForwardParamSync = false;
    }
    return out;
  }

  /**
   * `register_comm_hook(state, hook)`: how each gradient bucket is communicated, instead of the
   * default sum divided by the world size. `hook` is one of
   * `distributed.algorithms.ddpCommHooks.defaultHooks` (`allreduceHook`, `fp16CompressHook`,
   * `bf16CompressHook`), with `state` the process group it communicates over (`null`: the
   * world), as PyTorch's default hooks take; or `ddpCommHooks.powerSGD.powerSGDHook` with a
   * `PowerSGDState`. Once per DDP, before its first forward. Inside {@link noSync} no hook runs:
   * gradients accumulate locally.
   */
  registerCommHook(state: ProcessGroup | PowerSGDState | null | undefined, hook: CommHook): void {
    const fn = 'DistributedDataParallel.registerCommHook()';
    if (!(hook instanceof CommHook)) {
      throw new TypeError(
        `${fn}: hook must be one of distributed.algorithms.ddpCommHooks.defaultHooks ` +
          `(allreduceHook, fp16CompressHook, bf16CompressHook) or ddpCommHooks.powerSGD.powerSGDHook, got ${describe(hook)}` +
          (typeof hook === 'function' ? ': the Reducer runs hooks inside libtorch autograd, where no JS function can run' : ''),
      );
    }
    const powerSGD = hook._kind === 'powerSGD';
    if (powerSGD && !(state instanceof PowerSGDState)) throw new TypeError(`${fn}: powerSGDHook's state must be a PowerSGDState, got ${describe(state)}`);
    if (!powerSGD && state !== null && state !== undefined && !(state instanceof ProcessGroup))
      throw new TypeError(`${fn}: state must be a ProcessGroup or null, got ${describe(state)}`);
    if (this._commHook !== null) throw new Error(`${fn}: a communication hook (${this._commHook}) is already registered; it can be registered only once`);
    if (this._forwardCalled) throw new Error(`${fn}: must be called before the first forward`);
    const groupArg = state instanceof PowerSGDState ? state.processGroup : state;
    const group = resolveGroup(fn, groupArg ?? undefined);
    // c10d's built-in hooks run on the Reducer's group; on another group the native hook does the same there.
    native.distReducerRegisterCommHook(
      this.reducer(),
      hook._kind,
      group.id,
      !powerSGD && group.id === this._group.id,
      state instanceof PowerSGDState ? state._h : undefined,
    );
    this._commHook = hook.name;
  }

  /**
   * `no_sync()`: forwards and backwards inside `fn` accumulate gradients locally without
   * communication; the first synced backward after it averages the accumulated sum. `fn` may be
   * async: syncing resumes when its promise settles.
   */
  noSync<T>(fn: () => T): T {
    const previous = this._requireBackwardGradSync;
    this._requireBackwardGradSync = false;
    let result: T;
    try {
      result = fn();
    } catch (e) {
      this._requireBackwardGradSync = previous;
      throw e;
    }
    if (result instanceof Promise) {
      return result.finally(() => {
        this._requireBackwardGradSync = previous;
      }) as T;
    }
    this._requireBackwardGradSync = previous;
    return result;
  }

  /** Frees the reducer (its buckets) and the wrapped module's parameters and buffers. */
  dispose(): void {
    if (this._reducer >= 0) native.distReducerFree(this._reducer);
    this._reducer = -1;
    super.dispose();
  }
}
