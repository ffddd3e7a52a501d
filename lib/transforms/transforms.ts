// torchvision.transforms for uint8 or float image tensors, one image (C, H, W)
// or a whole batch (N, C, H, W) at a time. Each transform records libtorch ops
// into a plan (see plan.ts) that runs here or in a DataLoader worker; the
// deterministic ones issue the same ops as torchvision's tensor code paths, so
// their results are bit for bit torchvision's. Random ones draw their parameters
// from libtorch's global generator (see `manualSeed`) while recording, in the
// order torchvision would draw them image by image.
import { native, op } from '../native.js';
import { rand, randint } from '../tensor/creation.js';
import { type DType, isFloatingDtype } from '../tensor/dtype.js';
import { Tensor, wrap } from '../tensor/tensor.js';
import { checkBoolean, checkFunction, checkOneOf, checkOptions, describe } from '../utils/args.js';
import { pair as toPair } from '../nn/modules/utils.js';
import { type ConstArg, type Plan, PlanBuilder, type Val, constant, describeShape, runPlan } from './plan.js';

/** A plain function works wherever a transform is taken (it then runs on the calling thread). */
export type TransformFn = (x: Tensor) => Tensor;
/** A {@link Transform} or a function of a tensor. */
export type TransformLike = Transform | TransformFn;

/** Padding as torchvision takes it: all sides, `[leftRight, topBottom]`, or `[left, top, right, bottom]`. */
export type Padding = number | [number] | [number, number] | [number, number, number, number];
/** torchvision's padding modes. */
export type PaddingMode = 'constant' | 'edge' | 'reflect' | 'symmetric';
/** A size: one number for a square (or, for Resize, the shorter edge), or `[height, width]`. */
export type Size = number | [number] | [number, number];

/**
 * Base class of the built-in transforms. `forward(x)` applies the transform to
 * one image (C, H, W) — or (H, W), taken as one channel — or to a batch
 * (N, C, H, W); on a batch, random transforms draw separate parameters for each
 * image, exactly as applying them image by image would. The result is a new
 * tensor owned by the caller (possibly a view of `x`, as in torchvision).
 */
export abstract class Transform {
  /** @internal Whether the transform can be recorded as a plan (false for {@link Lambda}). */
  get _plannable(): boolean {
    return true;
  }

  /** @internal Records the steps for a batch `x` (N, C, H, W); random parameters are drawn now. */
  abstract _plan(b: PlanBuilder, x: Val): Val;

  /** The transform's name in messages. */
  protected get name(): string {
    return this.constructor.name;
  }

  /** @internal A plan for one input of `shape`/`dtype` (any of the accepted ranks). */
  _planFor(shape: readonly number[], dtype: DType): { plan: Plan; shape: number[]; dtype: DType } {
    const b = new PlanBuilder(shape, dtype);
    const rank = shape.length;
    if (rank < 2 || rank > 4) {
      throw new TypeError(`${this.name}: expected an image (C, H, W) or a batch (N, C, H, W), got shape ${describeShape(shape)}`);
    }
    let x = b.input;
    if (rank === 2) x = b.unsqueeze(x, 0);
    if (rank <= 3) x = b.unsqueeze(x, 0);
    let y = this._plan(b, x);
    if (y === x) return { plan: { steps: [], result: 0 }, shape: [...shape], dtype };
    if (rank <= 3) y = b.squeeze(y, 0);
    return { plan: b.finish(y), shape: [...y.shape], dtype: y.dtype };
  }

  /** Applies the transform; see the class description. */
  forward(x: Tensor): Tensor {
    if (!(x instanceof Tensor)) throw new TypeError(`${this.name}: expected a Tensor, got ${describe(x)}`);
    const { plan } = this._planFor(x.shape, x.dtype);
    if (plan.result === 0) return wrap(native.call(op('aten::alias'), x._h));
    return wrap(runPlan(x._h, plan));
  }

  /** A description in torchvision's style, e.g. `RandomCrop(size=(32, 32), padding=4)`. */
  toString(): string {
    return `${this.name}()`;
  }
}

/** Applies a transform or a function. */
export function applyTransform(t: TransformLike, x: Tensor): Tensor {
  return t instanceof Transform ? t.forward(x) : t(x);
}

/** Whether `t` (absent, or a built-in transform) can run as a plan, e.g. in a loader worker. */
export function isPlannable(t: TransformLike | null | undefined): t is Transform | null | undefined {
  return t == null || (t instanceof Transform && t._plannable);
}

/** torchvision's `_setup_size`: nn's `pair` of a checked size (a number, [size] or [height, width]). */
const pair = (s: Size, what: string): [number, number] => {
  const p: unknown[] | null = typeof s === 'number' || (Array.isArray(s) && (s.length === 1 || s.length === 2)) ? toPair<unknown>(s) : null;
  if (p === null || !p.every((v) => Number.isInteger(v) && (v as number) > 0)) {
    throw new RangeError(`${what}: size must be a positive integer or [height, width], got ${describe(s)}`);
  }
  return p as [number, number];
};

/** torchvision's `_parse_pad_padding`: → [left, right, top, bottom]. */
function parsePadding(padding: Padding, what: string): [number, number, number, number] {
  if (typeof padding !== 'number' && !Array.isArray(padding)) {
    throw new TypeError(`${what}: padding must be an integer or an array of 1, 2 or 4 integers, got ${describe(padding)}`);
  }
  const p = typeof padding === 'number' ? [padding] : [...padding];
  // torchvision would crop on a negative constant padding and fail on others: refuse it here.
  if (!p.every((v) => Number.isInteger(v) && v >= 0)) throw new RangeError(`${what}: padding must be non-negative integers, got ${describe(padding)}`);
  if (p.length === 1) return [p[0], p[0], p[0], p[0]];
  if (p.length === 2) return [p[0], p[0], p[1], p[1]];
  if (p.length === 4) return [p[0], p[2], p[1], p[3]];
  throw new RangeError(`${what}: padding must be an integer or an array of 1, 2 or 4 integers, got ${describe(padding)}`);
}

function checkMode(mode: string, what: string): PaddingMode {
  checkOneOf(what, 'paddingMode', mode, ['constant', 'edge', 'reflect', 'symmetric']);
  return mode as PaddingMode;
}

/** int64 constant from small integers, without a BigInt per element. */
function int64(values: ArrayLike<number>, shape: number[]): ConstArg {
  const out = new BigInt64Array(values.length);
  const halves = new Int32Array(out.buffer);
  for (let i = 0; i < values.length; i++) {
    halves[2 * i] = values[i];
    halves[2 * i + 1] = values[i] < 0 ? -1 : 0;
  }
  return constant(out, shape, 'int64');
}

/** Source index of each output position along one axis of length `n`, padded by `before`/`after`. */
function padIndices(n: number, before: number, after: number, mode: Exclude<PaddingMode, 'constant'>, what: string): Int32Array {
  const len = n + before + after;
  if (len <= 0) throw new RangeError(`${what}: padding leaves an empty image`);
  const out = new Int32Array(len);
  for (let k = 0; k < len; k++) {
    const p = k - before;
    let s: number;
    if (mode === 'edge') s = Math.min(Math.max(p, 0), n - 1);
    else if (mode === 'reflect') s = p < 0 ? -p : p >= n ? 2 * (n - 1) - p : p;
    else s = p < 0 ? -p - 1 : p >= n ? 2 * n - 1 - p : p;
    if (s < 0 || s >= n) {
      throw new RangeError(`${what}: padding (${before}, ${after}) in ${mode} mode must be smaller than the image size ${n}`);
    }
    out[k] = s;
  }
  return out;
}

/** torchvision's `F.pad` on a batch; `pad` = [left, right, top, bottom]. */
function planPad(b: PlanBuilder, x: Val, pad: [number, number, number, number], fill: number, mode: PaddingMode, what: string): Val {
  if (pad.every((p) => p === 0)) return x;
  if (mode === 'constant') return b.constantPad(x, pad, fill);
  // edge/reflect/symmetric as one gather: the same values torchvision's pad kernels
  // (and its float round trip for integer images) produce, for every dtype.
  const [, , h, w] = x.shape;
  const rows = padIndices(h, pad[2], pad[3], mode, what);
  const cols = padIndices(w, pad[0], pad[1], mode, what);
  return b.index(x, [null, null, int64(rows, [rows.length, 1]), int64(cols, [1, cols.length])], [x.shape[0], x.shape[1], rows.length, cols.length]);
}

/**
 * Crops each image of the batch at its own offset. A strided view lists every
 * window of every image — (N, C, rows, cols, th, tw) over the same memory — and
 * one advanced index picks image n's window (tops[n], lefts[n]): one copy of
 * the output, several times faster than gathering pixel by pixel.
 */
function planCrop(b: PlanBuilder, x: Val, tops: ArrayLike<number>, lefts: ArrayLike<number>, th: number, tw: number): Val {
  const [n, c, h, w] = x.shape;
  if (n === 1) return b.slice(b.slice(x, 2, tops[0], tops[0] + th), 3, lefts[0], lefts[0] + tw);
  const dense = b.contiguous(x); // strides known below; a no-op when x already is
  const [rows, cols] = [h - th + 1, w - tw + 1];
  const windows = b.call(
    'aten::as_strided',
    '',
    [dense, [n, c, rows, cols, th, tw], [c * h * w, h * w, w, 1, w, 1], null],
    [n, c, rows, cols, th, tw],
    x.dtype,
  );
  const ns = Int32Array.from({ length: n }, (_, i) => i);
  return b.index(windows, [int64(ns, [n]), null, int64(tops, [n]), int64(lefts, [n])], [n, c, th, tw]);
}

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));

/**
 * Top and left offsets for `n` random crops, drawn as torchvision's RandomCrop
 * draws them image by image (`randint(0, rh)` then `randint(0, rw)`, each one
 * 32-bit word of the generator taken modulo the range). One randint over
 * lcm(rh, rw) gives the same words and, modulo each range, the same values.
 */
function drawOffsets(n: number, rh: number, rw: number): [Int32Array, Int32Array] {
  const tops = new Int32Array(n);
  const lefts = new Int32Array(n);
  const lcm = (rh / gcd(rh, rw)) * rw;
  if (lcm < 2 ** 32) {
    const t = randint(0, lcm, [n, 2]);
    const v = t.toTypedArray() as BigInt64Array;
    t.dispose();
    const halves = new Int32Array(v.buffer); // values < 2^32 fit the low half (read unsigned)
    for (let i = 0; i < n; i++) {
      tops[i] = (halves[4 * i] >>> 0) % rh;
      lefts[i] = (halves[4 * i + 2] >>> 0) % rw;
    }
  } else {
    for (let i = 0; i < n; i++) {
      for (const [range, out] of [
        [rh, tops],
        [rw, lefts],
      ] as const) {
        const t = randint(0, range, [1]);
        out[i] = Number((t.toTypedArray() as BigInt64Array)[0]);
        t.dispose();
      }
    }
  }
  return [tops, lefts];
}

// ---- the transforms ----------------------------------------------------------------

/** `transforms.Compose`: applies `transforms` in order. */
export class Compose extends Transform {
  readonly transforms: TransformLike[];
  constructor(transforms: TransformLike[]) {
    super();
    if (!Array.isArray(transforms)) throw new TypeError(`Compose: argument 'transforms' must be an array of transforms, got ${describe(transforms)}`);
    for (const [i, t] of transforms.entries()) {
      if (!(t instanceof Transform) && typeof t !== 'function')
        throw new TypeError(`Compose: transforms[${i}] must be a transform or a function, got ${describe(t)}`);
    }
    this.transforms = [...transforms];
  }
  override get _plannable(): boolean {
    return this.transforms.every((t) => t instanceof Transform && t._plannable);
  }
  _plan(b: PlanBuilder, x: Val): Val {
    for (const t of this.transforms) {
      if (!(t instanceof Transform) || !t._plannable) throw new TypeError('Compose: a function in the pipeline cannot be recorded as a plan');
      x = t._plan(b, x);
    }
    return x;
  }
  override forward(x: Tensor): Tensor {
    if (this._plannable) return super.forward(x);
    // With functions in the pipeline: one step at a time, freeing intermediates.
    let cur = x;
    for (const t of this.transforms) {
      const next = applyTransform(t, cur);
      if (cur !== x && next !== cur) cur.dispose();
      cur = next;
    }
    return cur === x ? wrap(native.call(op('aten::alias'), x._h)) : cur;
  }
  override toString(): string {
    return `Compose(\n${this.transforms.map((t) => `    ${t instanceof Transform ? t.toString() : `<function ${t.name || 'anonymous'}>`}`).join('\n')}\n)`;
  }
}

/** A function as a transform (`transforms.Lambda`); it always runs on the calling thread. */
export class Lambda extends Transform {
  constructor(readonly fn: TransformFn) {
    super();
    checkFunction('Lambda', 'fn', fn);
  }
  override get _plannable(): boolean {
    return false;
  }
  _plan(): Val {
    throw new TypeError('Lambda: a function cannot be recorded as a plan');
  }
  override forward(x: Tensor): Tensor {
    return this.fn(x);
  }
}

/** Memory layout of the images {@link ToTensor} receives. */
export type ImageLayout = 'auto' | 'CHW' | 'HWC';

/**
 * `transforms.ToTensor` for tensors: uint8 images become float32 in [0, 1]
 * (`x.to(float32).div(255)`, as torchvision). Other dtypes pass unchanged.
 * Images may be CHW (what the datasets here give) or HWC (what an image decoder
 * gives); `layout: 'auto'` takes HWC when the last dimension is 1, 3 or 4 and the
 * first is not.
 */
export class ToTensor extends Transform {
  readonly layout: ImageLayout;
  constructor(opts: { layout?: ImageLayout } = {}) {
    super();
    checkOptions('ToTensor', opts, ['layout']);
    this.layout = opts.layout ?? 'auto';
    checkOneOf('ToTensor', 'layout', this.layout, ['auto', 'CHW', 'HWC']);
  }
  _plan(b: PlanBuilder, x: Val): Val {
    const small = (n: number): boolean => n === 1 || n === 3 || n === 4;
    const hwc = this.layout === 'HWC' || (this.layout === 'auto' && small(x.shape[3]) && !small(x.shape[1]));
    let y = x;
    if (hwc) y = b.contiguous(b.permute(y, [0, 3, 1, 2]));
    if (y.dtype === 'uint8') y = b.scalarOp('aten::div', y, 255, 'float32');
    return y;
  }
}

/** `transforms.Normalize`: `(x - mean) / std` per channel, for float images. */
export class Normalize extends Transform {
  readonly mean: number[];
  readonly std: number[];
  constructor(mean: number[] | number, std: number[] | number) {
    super();
    for (const [name, v] of [
      ['mean', mean],
      ['std', std],
    ] as const) {
      const ok = (x: unknown): boolean => typeof x === 'number' && Number.isFinite(x);
      if (!(ok(v) || (Array.isArray(v) && v.length > 0 && v.every(ok)))) {
        throw new TypeError(`Normalize: ${name} must be a number or a non-empty array of numbers, got ${describe(v)}`);
      }
    }
    this.mean = typeof mean === 'number' ? [mean] : [...mean];
    this.std = typeof std === 'number' ? [std] : [...std];
  }
  _plan(b: PlanBuilder, x: Val): Val {
    if (x.dtype !== 'float32' && x.dtype !== 'float64') {
      throw new TypeError(`Normalize: input tensor should be a float tensor (float32 or float64). Got ${x.dtype}; apply ToTensor first`);
    }
    const c = x.shape[1];
    for (const [name, v] of [
      ['mean', this.mean],
      ['std', this.std],
    ] as const) {
      if (v.length !== 1 && v.length !== c) throw new RangeError(`Normalize: ${name} has ${v.length} values for ${c} channels`);
    }
    const Arr = x.dtype === 'float32' ? Float32Array : Float64Array;
    const mean = Arr.from(this.mean);
    const std = Arr.from(this.std);
    if (std.some((s) => s === 0)) throw new RangeError(`Normalize: std evaluated to zero after conversion to ${x.dtype}, leading to division by zero`);
    const centred = b.binary('aten::sub', x, constant(mean, [mean.length, 1, 1], x.dtype), x.shape, x.dtype);
    return b.binary('aten::div', centred, constant(std, [std.length, 1, 1], x.dtype), x.shape, x.dtype);
  }
  override toString(): string {
    return `Normalize(mean=[${this.mean.join(', ')}], std=[${this.std.join(', ')}])`;
  }
}

/** `transforms.Pad`: pads every image; `paddingMode` as torchvision (`edge` repeats the border). */
export class Pad extends Transform {
  readonly padding: [number, number, number, number];
  readonly fill: number;
  readonly paddingMode: PaddingMode;
  constructor(padding: Padding, opts: { fill?: number; paddingMode?: PaddingMode } = {}) {
    super();
    checkOptions('Pad', opts, ['fill', 'paddingMode']);
    this.padding = parsePadding(padding, 'Pad');
    this.fill = opts.fill ?? 0;
    this.paddingMode = checkMode(opts.paddingMode ?? 'constant', 'Pad');
  }
  _plan(b: PlanBuilder, x: Val): Val {
    return planPad(b, x, this.padding, this.fill, this.paddingMode, 'Pad');
  }
  override toString(): string {
    const [l, r, t, bo] = this.padding;
    return `Pad(padding=(${l}, ${t}, ${r}, ${bo}), fill=${this.fill}, padding_mode=${this.paddingMode})`;
  }
}

/**
 * `transforms.RandomCrop`: a `size` crop at a random position, after optional
 * `padding` (and `padIfNeeded`, torchvision's quirk included: it pads both sides).
 * On a batch each image gets its own position, drawn in torchvision's order.
 */
export class RandomCrop extends Transform {
  readonly size: [number, number];
  readonly padding: [number, number, number, number] | null;
  readonly padIfNeeded: boolean;
  readonly fill: number;
  readonly paddingMode: PaddingMode;
  constructor(size: Size, opts: { padding?: Padding | null; padIfNeeded?: boolean; fill?: number; paddingMode?: PaddingMode } = {}) {
    super();
    checkOptions('RandomCrop', opts, ['padding', 'padIfNeeded', 'fill', 'paddingMode']);
    checkBoolean('RandomCrop', 'padIfNeeded', opts.padIfNeeded);
    this.size = pair(size, 'RandomCrop');
    this.padding = opts.padding == null ? null : parsePadding(opts.padding, 'RandomCrop');
    this.padIfNeeded = opts.padIfNeeded ?? false;
    this.fill = opts.fill ?? 0;
    this.paddingMode = checkMode(opts.paddingMode ?? 'constant', 'RandomCrop');
  }
  _plan(b: PlanBuilder, x: Val): Val {
    if (this.padding) x = planPad(b, x, this.padding, this.fill, this.paddingMode, 'RandomCrop');
    const [th, tw] = this.size;
    if (this.padIfNeeded && x.shape[3] < tw) {
      const d = tw - x.shape[3];
      x = planPad(b, x, [d, d, 0, 0], this.fill, this.paddingMode, 'RandomCrop');
    }
    if (this.padIfNeeded && x.shape[2] < th) {
      const d = th - x.shape[2];
      x = planPad(b, x, [0, 0, d, d], this.fill, this.paddingMode, 'RandomCrop');
    }
    const [n, , h, w] = x.shape;
    if (h < th || w < tw) throw new RangeError(`RandomCrop: required crop size (${th}, ${tw}) is larger than input image size (${h}, ${w})`);
    if (h === th && w === tw) return x;
    const [tops, lefts] = drawOffsets(n, h - th + 1, w - tw + 1);
    return planCrop(b, x, tops, lefts, th, tw);
  }
  override toString(): string {
    const p = this.padding ? `, padding=${this.padding.every((v) => v === this.padding![0]) ? this.padding[0] : `(${this.padding.join(', ')})`}` : '';
    return `RandomCrop(size=(${this.size.join(', ')})${p})`;
  }
}

/** `transforms.RandomHorizontalFlip`: mirrors each image with probability `p` (`torch.rand(1) < p` per image). */
export class RandomHorizontalFlip extends Transform {
  constructor(readonly p = 0.5) {
    super();
    if (typeof p !== 'number' || !(p >= 0 && p <= 1)) throw new RangeError(`RandomHorizontalFlip: p must be in [0, 1], got ${describe(p)}`);
  }
  _plan(b: PlanBuilder, x: Val): Val {
    const [n, c, h, w] = x.shape;
    const u = rand([n]);
    const draws = u.toTypedArray() as Float32Array;
    u.dispose();
    const p = Math.fround(this.p); // the comparison runs in float32, as torch.rand(1) < p does
    const flips = Array.from(draws, (v) => v < p);
    const count = flips.filter(Boolean).length;
    if (count === 0) return x;
    if (count === n) return b.flip(x, [3]);
    const cols = new Int32Array(n * w);
    for (let i = 0; i < n; i++) for (let j = 0; j < w; j++) cols[i * w + j] = flips[i] ? w - 1 - j : j;
    const index = b.call('aten::expand', '', [int64(cols, [n, 1, 1, w]), [n, c, h, w]], [n, c, h, w], 'int64');
    return b.gather(x, 3, index);
  }
  override toString(): string {
    return `RandomHorizontalFlip(p=${this.p})`;
  }
}

/** Interpolation modes of {@link Resize}. */
export type InterpolationMode = 'nearest' | 'bilinear' | 'bicubic';

/**
 * `transforms.Resize`. A number resizes the shorter edge to it (keeping the aspect
 * ratio, `maxSize` capping the longer edge); `[h, w]` resizes to exactly that.
 * `antialias` defaults to true (torchvision ≥ 0.17's default, and what PIL
 * always does); pass false for torchvision 0.14's tensor default. Integer images
 * are resized in float32 and rounded back, as torchvision does.
 */
export class Resize extends Transform {
  readonly size: number[];
  readonly interpolation: InterpolationMode;
  readonly maxSize: number | null;
  readonly antialias: boolean;
  constructor(size: Size, opts: { interpolation?: InterpolationMode; maxSize?: number | null; antialias?: boolean } = {}) {
    super();
    checkOptions('Resize', opts, ['interpolation', 'maxSize', 'antialias']);
    const s: unknown[] = typeof size === 'number' ? [size] : Array.isArray(size) ? [...size] : [];
    if (s.length < 1 || s.length > 2 || !s.every((v) => Number.isInteger(v) && (v as number) > 0)) {
      throw new RangeError(`Resize: size must be a positive integer or [height, width], got ${describe(size)}`);
    }
    this.size = s as number[];
    this.interpolation = opts.interpolation ?? 'bilinear';
    checkOneOf('Resize', 'interpolation', this.interpolation, ['nearest', 'bilinear', 'bicubic']);
    checkBoolean('Resize', 'antialias', opts.antialias);
    if (opts.maxSize != null && !(Number.isInteger(opts.maxSize) && opts.maxSize > 0)) {
      throw new RangeError(`Resize: maxSize must be a positive integer or null, got ${describe(opts.maxSize)}`);
    }
    this.maxSize = opts.maxSize ?? null;
    if (this.maxSize !== null && s.length !== 1) {
      throw new RangeError('Resize: maxSize should only be passed if size specifies the length of the smaller edge');
    }
    if (this.maxSize !== null && this.maxSize <= this.size[0]) {
      throw new RangeError(`Resize: maxSize = ${this.maxSize} must be strictly greater than the requested size for the smaller edge size = ${this.size[0]}`);
    }
    this.antialias = opts.antialias ?? true;
  }
  /** torchvision's `_compute_resized_output_size`. */
  outputSize(h: number, w: number): [number, number] {
    if (this.size.length === 2) return [this.size[0], this.size[1]];
    const [short, long] = w <= h ? [w, h] : [h, w];
    let newShort = this.size[0];
    let newLong = Math.trunc((newShort * long) / short);
    if (this.maxSize !== null && newLong > this.maxSize) {
      newShort = Math.trunc((this.maxSize * newShort) / newLong);
      newLong = this.maxSize;
    }
    return w <= h ? [newLong, newShort] : [newShort, newLong];
  }
  _plan(b: PlanBuilder, x: Val): Val {
    const [n, c, h, w] = x.shape;
    const [oh, ow] = this.outputSize(h, w);
    if (oh === h && ow === w) return x;
    const outDtype = x.dtype;
    const needCast = outDtype !== 'float32' && outDtype !== 'float64';
    let y = needCast ? b.to(x, 'float32') : x;
    const shape = [n, c, oh, ow];
    const aa = this.antialias && this.interpolation !== 'nearest';
    if (this.interpolation === 'nearest') {
      y = b.call('aten::upsample_nearest2d', 'vec', [y, [oh, ow], null], shape, y.dtype);
    } else {
      const name =
        this.interpolation === 'bilinear'
          ? aa
            ? 'aten::_upsample_bilinear2d_aa'
            : 'aten::upsample_bilinear2d'
          : aa
            ? 'aten::_upsample_bicubic2d_aa'
            : 'aten::upsample_bicubic2d';
      y = b.call(name, 'vec', [y, [oh, ow], false, null], shape, y.dtype);
    }
    if (this.interpolation === 'bicubic' && outDtype === 'uint8') y = b.clamp(y, 0, 255);
    if (needCast) {
      if (!isFloatingDtype(outDtype)) y = b.round(y);
      y = b.to(y, outDtype);
    }
    return y;
  }
  override toString(): string {
    const size = this.size.length === 1 ? `${this.size[0]}` : `(${this.size.join(', ')})`;
    return `Resize(size=${size}, interpolation=${this.interpolation}, max_size=${this.maxSize ?? 'None'}, antialias=${this.antialias ? 'True' : 'False'})`;
  }
}

/** Python's round(): half to even. */
function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d !== 0.5) return Math.round(v);
  return f % 2 === 0 ? f : f + 1;
}

/** `transforms.CenterCrop`: the central `size` crop, zero-padding images smaller than it. */
export class CenterCrop extends Transform {
  readonly size: [number, number];
  constructor(size: Size) {
    super();
    this.size = pair(size, 'CenterCrop');
  }
  _plan(b: PlanBuilder, x: Val): Val {
    const [th, tw] = this.size;
    let [, , h, w] = x.shape;
    if (tw > w || th > h) {
      const pad: [number, number, number, number] = [
        tw > w ? Math.floor((tw - w) / 2) : 0,
        tw > w ? Math.floor((tw - w + 1) / 2) : 0,
        th > h ? Math.floor((th - h) / 2) : 0,
        th > h ? Math.floor((th - h + 1) / 2) : 0,
      ];
      x = planPad(b, x, pad, 0, 'constant', 'CenterCrop');
      [, , h, w] = x.shape;
      if (tw === w && th === h) return x;
    }
    if (tw === w && th === h) return x;
    const top = roundHalfEven((h - th) / 2);
    const left = roundHalfEven((w - tw) / 2);
    return b.slice(b.slice(x, 2, top, top + th), 3, left, left + tw);
  }
  override toString(): string {
    return `CenterCrop(size=(${this.size.join(', ')}))`;
  }
}

/**
 * `transforms.Grayscale`: ITU-R 601-2 luma (0.2989 R + 0.587 G + 0.114 B, in the
 * image's dtype as torchvision computes it); 1 or 3 identical output channels.
 * A one-channel image with `numOutputChannels = 3` gets 3 channels, as with
 * torchvision's PIL images (its tensor path keeps 1 there).
 */
export class Grayscale extends Transform {
  constructor(readonly numOutputChannels: 1 | 3 = 1) {
    super();
    if (numOutputChannels !== 1 && numOutputChannels !== 3)
      throw new RangeError(`Grayscale: numOutputChannels must be 1 or 3, got ${describe(numOutputChannels)}`);
  }
  _plan(b: PlanBuilder, x: Val): Val {
    const [n, c, h, w] = x.shape;
    if (c !== 1 && c !== 3) throw new TypeError(`Grayscale: input image tensor permitted channel values are [1, 3], but found ${c}`);
    let l: Val;
    if (c === 3) {
      const ft: DType = isFloatingDtype(x.dtype) ? x.dtype : 'float32';
      const [r, g, bl] = [0, 1, 2].map((k) => b.select(x, 1, k));
      const plane = [n, h, w];
      const sum = b.binary('aten::add', b.scalarOp('aten::mul', r, 0.2989, ft), b.scalarOp('aten::mul', g, 0.587, ft), plane, ft);
      l = b.binary('aten::add', sum, b.scalarOp('aten::mul', bl, 0.114, ft), plane, ft);
      l = b.unsqueeze(b.to(l, x.dtype), 1);
    } else {
      l = b.call('aten::clone', '', [x], x.shape, x.dtype);
    }
    return this.numOutputChannels === 3 ? b.expand(l, [n, 3, h, w]) : l;
  }
  override toString(): string {
    return `Grayscale(num_output_channels=${this.numOutputChannels})`;
  }
}
