// Run by test/tensor-api.test.ts in a child process (an abort is a result, not the end of the
// run): calls every generated Tensor method with only its required arguments, synthesized
// from each overload's parameter kinds; everything else takes the schema's defaults. A call
// passes when the binding accepts it and libtorch runs it or refuses the values with its own
// error; a TypeError from the binding (wrong kinds synthesized, or a broken table) fails it.
import { Generator, Tensor, ones, rand, zeros } from '../lib/index.js';
import type { Kind, Overload } from '../lib/tensor/dispatch.js';
import { O } from '../lib/tensor/generated/methods.js';

function sample(kind: Kind, name: string): unknown {
  switch (kind) {
    case 'T':
      if (/mask/.test(name)) return ones([3, 3], { dtype: 'bool' });
      if (/ind|idx|target|label|boundaries/.test(name)) return zeros([3, 3], { dtype: 'int64' });
      return rand(3, 3);
    case 'TL':
      return [rand(3, 3), rand(3, 3)];
    case 'OTL':
      return [zeros([1], { dtype: 'int64' })];
    case 'S':
      return 1;
    case 'i':
      return /dim/.test(name) ? 0 : 1;
    case 'I':
      return /dim/.test(name) ? [0] : [3, 3];
    case 'f':
      return 0.5;
    case 'F':
      return [1];
    case 'b':
      return false;
    case 'B':
      return [false];
    case 's':
      return name === 'equation' ? 'ij->i' : name === 'reduce' ? 'sum' : 'none';
    case 'd':
      return 'float32';
    case 'L':
      return 'strided';
    case 'M':
      return 'contiguous_format';
    case 'D':
      return 'cpu';
    case 'G':
      return new Generator();
  }
}

const DEFAULTED = 2;
const KWONLY = 4;
const names = Object.getOwnPropertyNames(Object.getPrototypeOf(Tensor.prototype)).filter((n) => n !== 'constructor');
const rejected: string[] = [];
let calls = 0;
let ran = 0;
names.forEach((name, i) => {
  for (const ov of O[i] as Overload[]) {
    const positional = ov.p.filter((p) => !(p[3] & (DEFAULTED | KWONLY))).map((p) => sample(p[2], p[0]));
    const required = ov.p.filter((p) => p[3] & KWONLY && !(p[3] & DEFAULTED));
    const args = required.length ? [...positional, Object.fromEntries(required.map((p) => [p[1], sample(p[2], p[0])]))] : positional;
    const self = rand(3, 3);
    calls++;
    try {
      (self as unknown as Record<string, (...a: unknown[]) => unknown>)[name](...args);
      ran++;
    } catch (e) {
      const msg = (e as Error).message;
      // The binding's own refusals: it did not accept arguments built from its own table.
      if (/received an invalid combination|^\w+\(\): (argument '\w+' \(position|missing required|takes at most|got an unexpected)/.test(msg)) {
        rejected.push(`${name} [aten::${ov.o}.${ov.v}]: ${msg.split('\n')[0]}`);
      }
    }
  }
});
console.log(JSON.stringify({ methods: names.length, calls, ran, rejected }));
