// torch.optim.Optimizer: parameter groups, per-parameter state, zeroGrad and
// state dicts in PyTorch's layout.
//
// Names: options and state keys are camelCase in TypeScript (`weightDecay`,
// `expAvgSq`) and snake_case in state dicts (`weight_decay`, `exp_avg_sq`), so a
// state dict is key for key what `optimizer.state_dict()` returns in PyTorch and
// a checkpoint can cross between the two (through a .pth reader/writer).
import { enableGrad } from '../autograd.js';
import { keep } from '../tensor/scope.js';
import { Tensor, describe } from '../tensor/tensor.js';
import { pyValue, snakeCase } from '../utils/pyrepr.js';
import { checkOptions } from '../utils/args.js';

/**
 * One parameter group: its tensors and its options. The options are the
 * optimizer's defaults overridden by what the group was given; schedulers add
 * their own entries (`initialLr`, and for OneCycleLR `maxLr`, `minLr`, …).
 * Changing `lr` (or any option) between steps takes effect at the next step.
 */
export interface ParamGroup {
  params: Tensor[];
  lr: number;
  /** Set by the first LR scheduler attached: the learning rate its schedule starts from. */
  initialLr?: number;
  [option: string]: unknown;
}

/** A parameter group as given to an optimizer: `{ params, ...options that override the defaults }`. */
export type ParamGroupInput<O> = { params: Iterable<Tensor> | Tensor } & O & Record<string, unknown>;

/**
 * What an optimizer is constructed with: an iterable of tensors (e.g.
 * `model.parameters()`), or an array of parameter groups, each with its own options.
 */
export type ParamsInput<O> = Iterable<Tensor> | Iterable<ParamGroupInput<O>>;

/** A value in a parameter's optimizer state: a tensor, a number, or null (SGD's `momentum_buffer` without momentum). */
export type StateValue = Tensor | number | boolean | null | StateValue[];

/**
 * PyTorch's `optimizer.state_dict()`: `state` maps a parameter's index (its
 * position counting through all groups) to its state with snake_case keys;
 * `param_groups` lists each group's options with snake_case keys and `params`
 * as index lists. Only Maps, plain objects, arrays, numbers, booleans, null and
 * Tensors appear, so a .pth writer can pickle it as PyTorch does.
 */
export interface OptimizerStateDict {
  state: Map<number, Record<string, StateValue>>;
  param_groups: (Record<string, unknown> & { params: number[] })[];
}

type Dict = Record<string, unknown> | Map<string, unknown>;
/**
 * What {@link Optimizer.loadStateDict} accepts: a state dict as {@link Optimizer.stateDict}
 * returns it, or as a .pth reader returns PyTorch's (every dict a Map, tuples as
 * frozen arrays); `state` may also be an object keyed by index strings.
 */
export interface OptimizerStateDictInput {
  state: Map<number | string | bigint, Dict> | Record<string, Dict>;
  param_groups: readonly Dict[];
}

/** `weight_decay` → `weightDecay` */
export const camelCase = (name: string): string => name.replace(/_([a-z0-9])/g, (_, c: string) => c.toUpperCase());

/** A copy of an option value: arrays (betas) are copied so groups never share them; bigints become numbers. */
function copyOption(v: unknown): unknown {
  if (typeof v === 'bigint') return Number(v);
  if (Array.isArray(v)) return v.map(copyOption);
  return v;
}

/** Checks that `value` is a number in range; the message is PyTorch's (`Invalid learning rate: -1`). */
export function checkNumber(value: unknown, what: string, ok: (x: number) => boolean): void {
  if (typeof value !== 'number') throw new TypeError(`${what} must be a number, got ${describe(value)}`);
  if (!ok(value)) throw new RangeError(`Invalid ${what}: ${value}`);
}

/**
 * Base class of all optimizers (`torch.optim.Optimizer`).
 *
 * State tensors (momentum buffers, moment estimates) are created by `step()` and
 * survive any `tidy` scope around it; they are freed by {@link Optimizer.dispose}.
 * Subclasses implement `step()`, running the update under `noGrad`.
 */
export abstract class Optimizer<G extends ParamGroup = ParamGroup> {
  /** The options a group gets when it does not set them, with PyTorch's order of keys. */
  readonly defaults: Readonly<Record<string, unknown>>;
  /** The parameter groups, in the order given. */
  paramGroups: G[] = [];
  /** Per-parameter state (`optimizer.state[p]` in PyTorch), created lazily by `step()`. */
  state = new Map<Tensor, Record<string, StateValue>>();
  /** @internal how many times `step()` ran since an LR scheduler was attached (torch 1.13's `_step_count`; torch 2.x asks only whether it is above 0, `_opt_called`). */
  _stepCount = 0;

  /**
   * @param params tensors to optimize, or parameter groups (`[{ params, lr }, …]`)
   * @param defaults every option, in PyTorch's order; `undefined` marks a required one (SGD's `lr`)
   */
  protected constructor(params: ParamsInput<object>, defaults: Record<string, unknown>, opts: object = {}) {
    this.defaults = Object.freeze({ ...defaults });
    // The options are the defaults' keys: anything else is a typo that would silently keep a default.
    checkOptions(this.constructor.name, opts, Object.keys(defaults));
    this.checkOptions(defaults);
    if (params instanceof Tensor) {
      throw new TypeError('params argument given to the optimizer should be an iterable of Tensors or parameter groups, but got Tensor');
    }
    if (params === null || typeof params !== 'object' || typeof (params as Iterable<unknown>)[Symbol.iterator] !== 'function') {
      throw new TypeError(`params argument given to the optimizer should be an iterable of Tensors or parameter groups, but got ${describe(params)}`);
    }
    let groups = [...(params as Iterable<unknown>)];
    if (groups.length === 0) throw new Error('optimizer got an empty parameter list');
    // As in PyTorch: if the first item is not a group, the whole list is one group of tensors.
    if (!isGroupInput(groups[0])) groups = [{ params: groups }];
    for (const g of groups) this.addParamGroup(g as ParamGroupInput<object>);
  }

  /**
   * Validates a group's options (or the defaults, where a required option may be
   * undefined). Subclasses check their ranges with PyTorch's messages.
   */
  protected abstract checkOptions(options: Record<string, unknown>): void;

  /** Performs one optimization step; with `closure`, first re-evaluates the loss (with grad enabled) and returns it. */
  abstract step<T = unknown>(closure?: () => T): T | undefined;

  /** Runs a step closure with gradients enabled, as PyTorch's `with torch.enable_grad(): loss = closure()`. */
  protected runClosure<T>(closure?: () => T): T | undefined {
    if (closure === undefined) return undefined;
    if (typeof closure !== 'function') throw new TypeError(`step(): closure must be a function, got ${describe(closure)}`);
    return enableGrad(closure);
  }

  /**
   * Adds a parameter group (`add_param_group`), e.g. to unfreeze layers while
   * fine-tuning. Options it leaves out take the optimizer's defaults.
   */
  addParamGroup(paramGroup: ParamGroupInput<object>): void {
    if (!isGroupInput(paramGroup)) {
      throw new TypeError(`param group must be an object with a 'params' entry, got ${describe(paramGroup)}`);
    }
    const given = paramGroup.params;
    let params: unknown[];
    if (given instanceof Tensor) params = [given];
    else if (given !== null && typeof given === 'object' && typeof (given as Iterable<unknown>)[Symbol.iterator] === 'function') {
      params = [...(given as Iterable<unknown>)];
    } else {
      throw new TypeError(`a parameter group's params must be a Tensor or an iterable of Tensors, got ${describe(given)}`);
    }
    for (const p of params) {
      if (!(p instanceof Tensor)) throw new TypeError(`optimizer can only optimize Tensors, but one of the params is ${describe(p)}`);
      if (p.isDisposed) throw new Error('optimizer got a disposed Tensor as a parameter');
      if (!p.isLeaf) throw new Error("can't optimize a non-leaf Tensor");
    }
    checkOptions(`${this.constructor.name}: param group`, paramGroup, ['params', ...Object.keys(this.defaults)]);
    // Key order as PyTorch builds the dict: the group's own entries, then the missing defaults.
    const group: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(paramGroup)) if (v !== undefined) group[k] = k === 'params' ? params : copyOption(v);
    for (const [k, v] of Object.entries(this.defaults)) {
      if (k in group) continue;
      if (v === undefined) {
        throw new Error(`parameter group didn't specify a value of required optimization parameter ${k}`);
      }
      group[k] = copyOption(v);
    }
    this.checkOptions(group);
    if (new Set(params).size !== params.length) {
      process.emitWarning(
        'optimizer contains a parameter group with duplicate parameters; in future, this will cause an error; ' +
          'see github.com/pytorch/pytorch/issues/40967 for more information',
        'UserWarning',
      );
    }
    const taken = new Set(this.paramGroups.flatMap((g) => g.params));
    if (params.some((p) => taken.has(p as Tensor))) throw new Error('some parameters appear in more than one parameter group');
    this.paramGroups.push(group as G);
  }

  /**
   * Clears the gradients of every optimized tensor: sets them to null (the
   * default, as in PyTorch 2), or with `setToNone: false` fills them with zeros.
   */
  zeroGrad(opts: { setToNone?: boolean } = {}): void {
    checkOptions('zeroGrad()', opts, ['setToNone']);
    const setToNone = opts.setToNone ?? true;
    for (const group of this.paramGroups) {
      for (const p of group.params) {
        const g = p.grad;
        if (g === null) continue;
        if (setToNone) {
          p.grad = null;
        } else {
          if (g.gradFn !== null) g.detach_();
          else g.requiresGrad_(false);
          g.zero_();
        }
        g.dispose();
      }
    }
  }

  /** The state of `p`, created empty on first use (PyTorch's `defaultdict(dict)`). */
  protected stateOf(p: Tensor): Record<string, StateValue> {
    let s = this.state.get(p);
    if (s === undefined) {
      s = {};
      this.state.set(p, s);
    }
    return s;
  }

  /**
   * The optimizer's state as PyTorch's `state_dict()` lays it out (see
   * {@link OptimizerStateDict}). Tensors in it are new handles on the optimizer's
   * own storage (as in PyTorch, later steps change them): dispose them when done,
   * or call this inside `tidy`.
   */
  stateDict(): OptimizerStateDict {
    const index = new Map<Tensor, number>();
    let start = 0;
    const paramGroups = this.paramGroups.map((group) => {
      const packed: Record<string, unknown> = {};
      // Array options (betas) are tuples in PyTorch; a frozen array is how a .pth writer tells a tuple from a list.
      for (const [k, v] of Object.entries(group)) {
        if (k !== 'params') packed[snakeCase(k)] = Array.isArray(v) ? Object.freeze(copyOption(v) as unknown[]) : copyOption(v);
      }
      // A tensor listed twice keeps its first index, and indices still advance by the group's length (as in PyTorch).
      group.params.forEach((p, i) => {
        if (!index.has(p)) index.set(p, start + i);
      });
      packed.params = group.params.map((p) => index.get(p)!);
      start += group.params.length;
      return packed as Record<string, unknown> & { params: number[] };
    });
    const state = new Map<number, Record<string, StateValue>>();
    for (const [p, s] of this.state) {
      const i = index.get(p);
      if (i === undefined) continue;
      const packed: Record<string, StateValue> = {};
      // LBFGS keeps lists of tensors (its history) in its state.
      const pack = (v: StateValue): StateValue => (v instanceof Tensor ? v.detach() : Array.isArray(v) ? v.map(pack) : v);
      for (const [k, v] of Object.entries(s)) packed[this.stateKey(k)] = pack(v);
      state.set(i, packed);
    }
    return { state, param_groups: paramGroups };
  }

  /**
   * Loads a state dict from {@link Optimizer.stateDict} or from PyTorch (through a .pth
   * reader). As in PyTorch, tensors are copied, floating-point state is cast to
   * its parameter's dtype and moved to its device (except `step`), and each
   * group's options are replaced by the saved ones. The groups must match in
   * number and size; on any error the optimizer is left unchanged.
   */
  loadStateDict(stateDict: OptimizerStateDictInput | OptimizerStateDict | Map<string, unknown>): void {
    const top = entriesOf(stateDict);
    if (top === null) throw new TypeError(`loadStateDict(): expected a state dict object, got ${describe(stateDict)}`);
    const savedGroups = new Map(top).get('param_groups');
    const savedState = new Map(top).get('state');
    if (!Array.isArray(savedGroups)) throw new TypeError("loadStateDict(): the state dict has no 'param_groups' array");
    const stateEntries = entriesOf(savedState);
    if (stateEntries === null) throw new TypeError("loadStateDict(): the state dict has no 'state' entry");
    const groups = this.paramGroups;
    if (groups.length !== savedGroups.length) {
      throw new Error(`loaded state dict has a different number of parameter groups (${savedGroups.length}, the optimizer has ${groups.length})`);
    }
    // Each saved group as [snake_case key, value] pairs (a plain object, or a Map as load() returns Python dicts).
    const saved = savedGroups.map((g, i) => {
      const entries = entriesOf(g);
      if (entries === null) throw new TypeError(`loadStateDict(): param_groups[${i}] must be an object, got ${describe(g)}`);
      const ids = new Map(entries).get('params');
      if (!Array.isArray(ids)) throw new TypeError(`loadStateDict(): param_groups[${i}] has no 'params' list`);
      if (ids.length !== groups[i].params.length) {
        throw new Error(
          `loaded state dict contains a parameter group that doesn't match the size of optimizer's group ` +
            `(group ${i}: ${ids.length} saved, ${groups[i].params.length} in the optimizer)`,
        );
      }
      return { entries: entries as [string, unknown][], ids: ids as unknown[] };
    });
    const idMap = new Map<number, Tensor>();
    saved.forEach(({ ids }, i) => ids.forEach((id, j) => idMap.set(Number(id), groups[i].params[j])));

    // New groups: the saved options (camelCase), this optimizer's tensors, then missing defaults.
    const newGroups = saved.map(({ entries }, i) => {
      const group: Record<string, unknown> = { params: groups[i].params };
      for (const [k, v] of entries) if (k !== 'params') group[camelCase(String(k))] = copyOption(v);
      this.fillGroupDefaults(group);
      this.checkOptions(group);
      return group as G;
    });

    const created: Tensor[] = [];
    const newState = new Map<Tensor, Record<string, StateValue>>();
    try {
      for (const [key, value] of stateEntries) {
        const p = idMap.get(Number(key));
        // PyTorch keeps state of unknown ids as it is; such entries belong to no parameter here and are dropped.
        if (p === undefined) continue;
        const values = entriesOf(value);
        if (values === null) throw new TypeError(`loadStateDict(): state[${String(key)}] must be an object, got ${describe(value)}`);
        const s: Record<string, StateValue> = {};
        for (const [rawKey, raw] of values) {
          const k = String(rawKey);
          const convert = (v: unknown): StateValue => {
            if (v instanceof Tensor) {
              // `step` keeps its dtype (pytorch/pytorch#74424); other floating state follows its parameter.
              const floating = k !== 'step' && (p.dtype.startsWith('float') || p.dtype === 'bfloat16');
              const t = keep(v.to({ dtype: floating ? p.dtype : undefined, device: k === 'step' ? undefined : p.device }, { copy: true }));
              created.push(t);
              return t;
            }
            if (v === null || typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return typeof v === 'bigint' ? Number(v) : v;
            if (Array.isArray(v)) return v.map(convert); // LBFGS's history lists
            throw new TypeError(`loadStateDict(): state[${String(key)}]['${k}'] must be a Tensor, a number, a list or null, got ${describe(v)}`);
          };
          s[camelCase(k)] = convert(raw);
        }
        newState.set(p, s);
      }
      this.upgradeState(newState, created);
    } catch (e) {
      for (const t of created) t.dispose();
      throw e;
    }
    this.disposeState();
    this.state = newState;
    this.paramGroups = newGroups;
  }

  /** The state-dict key of a state entry (LBFGS's `HDiag` is PyTorch's `H_diag`). */
  protected stateKey(name: string): string {
    return snakeCase(name);
  }

  /** Fills options a loaded group lacks (PyTorch's `__setstate__` setdefaults). */
  protected fillGroupDefaults(group: Record<string, unknown>): void {
    for (const [k, v] of Object.entries(this.defaults)) if (!(k in group) && v !== undefined) group[k] = copyOption(v);
  }

  /** Converts loaded state from older layouts (Adam: a number `step` becomes a tensor); new tensors go into `created`. */
  protected upgradeState(_state: Map<Tensor, Record<string, StateValue>>, _created: Tensor[]): void {}

  private disposeState(): void {
    for (const s of this.state.values()) {
      const free = (v: StateValue): void => {
        if (v instanceof Tensor && !v.isDisposed) v.dispose();
        else if (Array.isArray(v)) v.forEach(free);
      };
      Object.values(s).forEach(free);
    }
  }

  /** Frees the optimizer's state tensors (not the parameters) and forgets the state. */
  dispose(): void {
    this.disposeState();
    this.state.clear();
  }

  /** PyTorch's repr: each group's options, sorted by (snake_case) name. */
  toString(): string {
    let out = `${this.constructor.name} (`;
    this.paramGroups.forEach((group, i) => {
      out += `\nParameter Group ${i}\n`;
      const keys = Object.keys(group)
        .filter((k) => k !== 'params')
        .sort((a, b) => (snakeCase(a) < snakeCase(b) ? -1 : 1));
      for (const k of keys) out += `    ${snakeCase(k)}: ${pyValue(group[k])}\n`;
    });
    return `${out})`;
  }
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }
}

/** The entries of a plain object or a Map (load() returns Python dicts as Maps); null for anything else. */
function entriesOf(x: unknown): [unknown, unknown][] | null {
  if (x instanceof Map) return [...x.entries()];
  if (x !== null && typeof x === 'object' && !Array.isArray(x) && !(x instanceof Tensor)) return Object.entries(x);
  return null;
}

function isGroupInput(x: unknown): x is ParamGroupInput<object> {
  return x !== null && typeof x === 'object' && !(x instanceof Tensor) && 'params' in x;
}
