// The bad calls of test/bad-calls.test.ts: [name, JS code, what the message must say]. Each code
// runs in its own process after PRELUDE (plain JS, so that the child needs no TypeScript loader).

/** Names every call may use: the package as `vt`, its namespaces, small inputs, a tiny model. */
export const PRELUDE = `
const vt = await import(process.env.BAD_CALLS_BUNDLE);
const { nn, F, transforms: T, optim, hub, train } = vt;
const x = vt.randn(2, 3);
const x4 = vt.randn(1, 3, 8, 8);
const w = vt.randn(8, 3, 3, 3);
const target = vt.tensor([0, 2]);
const lin = () => new nn.Linear(3, 2);
const sgd = () => new optim.SGD(lin().parameters(), { lr: 0.1 });
const ds = () => new vt.TensorDataset(vt.randn(4, 3), vt.tensor([0, 1, 0, 1]));
const tmp = (await import('node:fs')).mkdtempSync((await import('node:path')).join((await import('node:os')).tmpdir(), 'bad-calls-'));
`;

export type BadCall = [name: string, code: string, message: RegExp];

export const CASES: BadCall[] = [
  // ---- tensor creation ----
  ['randn(null)', 'vt.randn(null)', /randn\(\): argument 'size' must be integers or an array of integers, got null/],
  ['randn unknown option', 'vt.randn({ a: 1 })', /randn\(\): unknown option 'a'; allowed: 'dtype', 'device', 'requiresGrad'/],
  ['randn string size', "vt.randn('3')", /randn\(\): argument 'size' .*got '3' \(string\)/],
  ['zeros NaN size', 'vt.zeros([2, NaN])', /zeros\(\): argument 'size' .*\[2, NaN\].*element NaN/],
  ['zeros misspelt option', "vt.zeros([2], { dtyp: 'float64' })", /zeros\(\): unknown option 'dtyp' \(did you mean 'dtype'\?\)/],
  ['zeros requiresGrad string', "vt.zeros([2], { requiresGrad: 'yes' })", /requiresGrad.*boolean.*'yes' \(string\)/],
  ['full string fill', "vt.full([2], 'a')", /full\(\): argument 'fill_value' must be a number, got 'a' \(string\)/],
  ['full string size', "vt.full('2', 1)", /argument 'size' must be integers or an array of integers, got '2' \(string\)/],
  ['arange string', "vt.arange('a')", /arange\(\): argument 'end' must be a number, got 'a' \(string\)/],
  ['linspace fractional steps', 'vt.linspace(0, 1, 2.5)', /linspace\(\): argument 'steps' must be an integer, got 2\.5/],
  [
    'randint string size',
    "vt.randint(10, 'a')",
    /randint\(\): the second argument must be 'high' \(a number\) or 'size' \(an array of integers\), got 'a' \(string\)/,
  ],
  ['eye string', "vt.eye('2')", /eye\(\): argument 'n' must be an integer, got '2' \(string\)/],
  ['tensor string', "vt.tensor('abc')", /tensor\(\): expected numbers or booleans, got 'abc' \(string\) at top level/],
  ['tensor mixed', "vt.tensor([1, 'a'])", /tensor\(\): expected numbers or booleans, got 'a' \(string\) at \[1\]/],
  ['tensor uint8 overflow', "vt.tensor([300, -1, Infinity], { dtype: 'uint8' })", /value 300 at \[0\] cannot be converted to type uint8 without overflow/],
  ['tensor int8 overflow', "vt.tensor([[1], [-129]], { dtype: 'int8' })", /value -129 at \[1, 0\] cannot be converted to type int8/],
  [
    'tensor shape drops values',
    'vt.tensor(new Float32Array(4), { shape: [3] })',
    /tensor\(\): argument 'shape' \[3\] holds 3 elements, but the Float32Array has 4/,
  ],
  ['tensor object', 'vt.tensor({})', /tensor\(\): expected numbers or booleans, got an object/],
  ['tensor unknown option', 'vt.tensor([1], { sape: [1] })', /tensor\(\): unknown option 'sape' \(did you mean 'shape'\?\)/],
  ['fromBuffer null', "vt.fromBuffer(null, { dtype: 'float32' })", /fromBuffer\(\): argument 'buffer' must be a Buffer, typed array or ArrayBuffer, got null/],
  ['fromBuffer no options', 'vt.fromBuffer(new ArrayBuffer(8))', /fromBuffer\(\): argument 'options' must be an object with 'dtype', got undefined/],
  [
    'fromBuffer misspelt option',
    "vt.fromBuffer(new ArrayBuffer(8), { dtype: 'float32', shap: [2] })",
    /fromBuffer\(\): unknown option 'shap' \(did you mean 'shape'\?\)/,
  ],
  [
    'fromBuffer resizable',
    "vt.fromBuffer(new ArrayBuffer(8, { maxByteLength: 16 }), { dtype: 'float32' })",
    /fromBuffer\(\): argument 'buffer' is a resizable ArrayBuffer \(maxByteLength 16\)/,
  ],
  [
    'fromBuffer detached',
    "(() => { const ab = new ArrayBuffer(8); structuredClone(ab, { transfer: [ab] }); return vt.fromBuffer(ab, { dtype: 'float32' }); })()",
    /fromBuffer\(\): argument 'buffer' is a detached ArrayBuffer/,
  ],
  [
    'fromBuffer SharedArrayBuffer',
    "vt.fromBuffer(new SharedArrayBuffer(8), { dtype: 'float32' })",
    /fromBuffer\(\): argument 'buffer' must be a Buffer, typed array or ArrayBuffer, got a SharedArrayBuffer \(SharedArrayBuffer is not supported\)/,
  ],
  [
    'fromBuffer shape mismatch',
    "vt.fromBuffer(new ArrayBuffer(16), { dtype: 'float32', shape: [3] })",
    /fromBuffer\(\): argument 'shape' \[3\] holds 3 elements, but the buffer \(as float32\) has 4/,
  ],
  ['zerosLike null', 'vt.zerosLike(null)', /argument 'input' must be a Tensor, got null/],
  ['zerosLike unknown option', "vt.zerosLike(x, { dtyp: 'float64' })", /zerosLike\(\): unknown option 'dtyp' \(did you mean 'dtype'\?\)/],
  ['onesLike number', 'vt.onesLike(5)', /argument 'input' must be a Tensor, got 5/],

  // ---- Tensor methods ----
  ['add string', "x.add('a')", /argument 'other' must be a Tensor or a number, got '?a'? \(?string\)?/],
  ['div disposed', '(() => { const y = vt.randn(3); y.dispose(); return x.div(y); })()', /argument 'other' is a Tensor that has been disposed/],
  ['view string', "x.view('a')", /argument 'shape' must be integers or an array of integers, got 'a' \(string\)/],
  ['sum string dim', "x.sum('a')", /sum\(\): argument 'dim' .*'a' \(string\)/],
  ['index zero step', "x.index('0:2:0')", /index\(\): slice step must be greater than zero/],
  ['index object', 'x.index({ foo: 1 })', /index\(\): unknown option 'foo'; allowed: 'start', 'stop', 'step'/],
  ['to bad target', 'x.to(5)', /to\(\): expected a device, a dtype or \{ device, dtype \}, got 5/],
  ['to unknown option', "x.to({ dtype: 'float64', foo: 1 })", /to\(\): unknown option 'foo'/],
  ['softmax no dim', 'x.softmax()', /softmax\(\): missing required argument 'dim'/],
  ['argmax string', "x.argmax('a')", /argmax\(\): argument 'dim' .*'a' \(string\)/],
  ['clamp string', "x.clamp('a')", /clamp\(\): argument 'min' must be a number, got 'a' \(string\)/],
  ['requiresGrad string', "(() => { x.requiresGrad = 'yes'; })()", /requires_grad_\(\): argument 'requires_grad' must be a boolean, got 'yes' \(string\)/],
  ['cat not an array', "vt.cat('a')", /argument 'tensors' must be an array of Tensors, got 'a' \(string\)/],
  ['shape after dispose', '(() => { const y = vt.randn(2); y.shape; y.dispose(); return y.shape; })()', /argument 'tensor' is a Tensor that has been disposed/],
  [
    'numel after dispose',
    '(() => { const y = vt.randn(2); y.numel(); y.dispose(); return y.numel(); })()',
    /argument 'tensor' is a Tensor that has been disposed/,
  ],
  ['sum after dispose', '(() => { const y = vt.randn(2); y.dispose(); return y.sum(); })()', /sum\(\): argument 'self' is a Tensor that has been disposed/],
  ['std options object as dim', 'x.std({ unbiasd: false })', /std\(\): argument 'dim' must be an integer or an array of integers, got an object/],
  ['max options object as keepdim', 'x.max(0, { keepDim: true })', /max\(\): argument 'keepdim' must be a boolean, got an object/],
  ['sort options object as dim', 'x.sort({ descend: true })', /sort\(\): argument 'dim' must be an integer, got an object/],
  ['allclose options object as rtol', 'x.allclose(x, { tol: 1 })', /allclose\(\): argument 'rtol' must be a number, got an object/],

  [
    'backward unknown option',
    'vt.randn([2], { requiresGrad: true }).sum().backward(undefined, { retain_graph: true })',
    /backward\(\): unknown option 'retain_graph' \(did you mean 'retainGraph'\?\)/,
  ],
  ['sum unknown option', "x.sum(0, false, { dtyp: 'float64' })", /sum\(\): unknown option 'dtyp' \(did you mean 'dtype'\?\)/],
  ['var unknown option', 'x.var(0, { keepDims: true })', /var\(\): unknown option 'keepDims' \(did you mean 'keepdim'\?\)/],
  ['module zeroGrad unknown option', 'lin().zeroGrad({ set_to_none: false })', /zeroGrad\(\): unknown option 'set_to_none' \(did you mean 'setToNone'\?\)/],
  ['optimizer zeroGrad unknown option', 'sgd().zeroGrad({ toNone: false })', /zeroGrad\(\): unknown option 'toNone'/],
  [
    'DataLoader.iterate unknown option',
    'new vt.DataLoader(ds()).iterate({ sate: null })',
    /DataLoader\.iterate\(\): unknown option 'sate' \(did you mean 'state'\?\)/,
  ],

  // ---- functional ----
  [
    'interpolate NaN scale',
    'F.interpolate(x4, { scaleFactor: NaN })',
    /interpolate\(\): scaleFactor must be a positive finite number or a pair of them, got NaN/,
  ],
  ['interpolate nothing', 'F.interpolate(x4, {})', /interpolate\(\): either size or scaleFactor should be defined/],
  ['interpolate bad mode', "F.interpolate(x4, { size: 4, mode: 'cubic' })", /interpolate\(\): mode must be one of .*got 'cubic' \(string\)/],
  ['interpolate misspelt option', 'F.interpolate(x4, { sizee: 4 })', /interpolate\(\): unknown option 'sizee' \(did you mean 'size'\?\)/],
  ['interpolate 3-d input', 'F.interpolate(vt.randn(3, 8, 8), { size: 4 })', /interpolate\(\): expected a 4-D \(N, C, H, W\) input, got 3-D/],
  ['interpolate no size', 'F.interpolate(x4)', /interpolate\(\): either size or scaleFactor should be defined/],
  ['conv2d null weight', 'F.conv2d(x4, null)', /argument 'weight' must be a Tensor, got null/],
  ['conv2d zero stride', 'F.conv2d(x4, w, null, 0)', /conv2d\(\): stride must be a positive integer or a pair of them, got 0/],
  [
    'conv2d negative padding',
    'F.conv2d(x4, w, null, 1, -1)',
    /conv2d\(\): padding must be a non-negative integer or a pair of them, 'same' or 'valid', got -1/,
  ],
  [
    'conv2d keyword negative padding',
    'F.conv2d(x4, w, { padding: -1 })',
    /conv2d\(\): padding must be a non-negative integer or a pair of them, 'same' or 'valid', got -1/,
  ],
  ['conv2d misspelt keyword', 'F.conv2d(x4, w, { paddng: 1 })', /conv2d\(\): unknown option 'paddng' \(did you mean 'padding'\?\)/],
  ['conv2d bias twice', 'F.conv2d(x4, w, null, { bias: null })', /conv2d\(\): got multiple values for argument 'bias'/],
  ['conv2d too many arguments', 'F.conv2d(x4, w, null, 1, 0, 1, 1, 1)', /conv2d\(\): too many positional arguments: 6 given where it takes at most 5/],
  ['maxPool2d zero kernel', 'F.maxPool2d(x4, 0)', /maxPool2d\(\): kernelSize must be a positive integer or a pair of them, got 0/],
  ['maxPool2d misspelt option', 'F.maxPool2d(x4, 2, { strid: 2 })', /maxPool2d\(\): unknown option 'strid' \(did you mean 'stride'\?\)/],
  ['maxPool2d no kernelSize', 'F.maxPool2d(x4, { stride: 2 })', /maxPool2d\(\): missing required argument 'kernelSize'/],
  ['avgPool2d negative kernel', 'F.avgPool2d(x4, -1)', /avgPool2d\(\): kernelSize must be a positive integer or a pair of them, got -1/],
  [
    'avgPool2d unknown option',
    'F.avgPool2d(x4, 2, { ceil: true })',
    /avgPool2d\(\): unknown option 'ceil'; allowed: 'kernelSize', 'stride', 'padding', 'ceilMode'/,
  ],
  [
    'adaptiveAvgPool2d negative',
    'F.adaptiveAvgPool2d(x4, -2)',
    /adaptiveAvgPool2d\(\): outputSize must be a non-negative integer or a pair of non-negative integers or nulls, got -2/,
  ],
  ['adaptiveAvgPool2d string', "F.adaptiveAvgPool2d(x4, 'a')", /adaptiveAvgPool2d\(\): outputSize must be .*got 'a' \(string\)/],
  ['relu null', 'F.relu(null)', /argument 'input' must be a Tensor, got null/],
  ['dropout p string', "F.dropout(x, 'a')", /dropout probability has to be between 0 and 1, but got 'a' \(string\)/],
  ['F.softmax no dim', 'F.softmax(x)', /softmax\(\): missing required argument 'dim'/],
  ['crossEntropy bad reduction', "F.crossEntropy(x, target, { reduction: 'avg' })", /reduction must be 'none', 'mean' or 'sum', got 'avg'/],
  [
    'crossEntropy unknown option',
    'F.crossEntropy(x, target, { ignore_index: 1 })',
    /crossEntropy\(\): unknown option 'ignore_index' \(did you mean 'ignoreIndex'\?\)/,
  ],
  [
    'nllLoss string ignoreIndex',
    "F.nllLoss(x, target, { ignoreIndex: 'a' })",
    /nll_loss_nd\(\): argument 'ignore_index' must be an integer, got 'a' \(string\)/,
  ],
  ['mseLoss unknown option', "F.mseLoss(x, x, { reduce: 'sum' })", /mseLoss\(\): unknown option 'reduce'; allowed: 'reduction'/],
  ['pad odd length', 'F.pad(x4, [1])', /Padding length must be divisible by 2, got 1/],
  ['pad bad mode', "F.pad(x4, [1, 1], 'mirror')", /pad\(\): mode must be one of 'constant', 'reflect', 'replicate', 'circular', got 'mirror' \(string\)/],
  ['batchNorm misspelt option', 'F.batchNorm(x4, null, null, { momentm: 0.1 })', /batchNorm\(\): unknown option 'momentm' \(did you mean 'momentum'\?\)/],
  ['logSoftmax string dim', "F.logSoftmax(x, 'a')", /log_softmax\(\): argument 'dim' must be an integer, got 'a' \(string\)/],

  // ---- nn modules ----
  ['Conv2d kernel 0', 'new nn.Conv2d(3, 8, 0)', /Conv2d: kernelSize must be a positive integer or a pair of them, got 0/],
  ["Conv2d string '3'", "new nn.Conv2d('3', 8, 3)", /Conv2d: inChannels must be a positive integer, got '3' \(string\)/],
  ['Conv2d zero stride', 'new nn.Conv2d(3, 8, 3, { stride: 0 })', /Conv2d: stride must be a positive integer or a pair of them, got 0/],
  [
    'Conv2d negative padding',
    'new nn.Conv2d(3, 8, 3, { padding: -1 })',
    /Conv2d: padding must be a non-negative integer or a pair of them, 'same' or 'valid', got -1/,
  ],
  ['Conv2d groups', 'new nn.Conv2d(3, 8, 3, { groups: 2 })', /Conv2d: inChannels \(3\) must be divisible by groups \(2\)/],
  [
    'Conv2d paddingMode',
    "new nn.Conv2d(3, 8, 3, { paddingMode: 'mirror' })",
    /Conv2d: paddingMode must be one of 'zeros', 'reflect', 'replicate', 'circular', got 'mirror' \(string\)/,
  ],
  ['Conv2d misspelt option', 'new nn.Conv2d(3, 8, 3, { strid: 2 })', /Conv2d: unknown option 'strid' \(did you mean 'stride'\?\)/],
  ['Conv2d padding string', "new nn.Conv2d(3, 8, 3, { padding: 'full' })", /Conv2d: padding must be .*'same' or 'valid', got 'full' \(string\)/],
  ['Linear string', "new nn.Linear(3, '4')", /Linear: outFeatures must be a positive integer, got '4' \(string\)/],
  ['Linear misspelt option', 'new nn.Linear(3, 4, { biass: false })', /Linear: unknown option 'biass' \(did you mean 'bias'\?\)/],
  ['BatchNorm2d negative eps', 'new nn.BatchNorm2d(3, { eps: -1 })', /BatchNorm2d: eps must be a positive number, got -1/],
  ['BatchNorm2d string momentum', "new nn.BatchNorm2d(3, { momentum: 'a' })", /BatchNorm2d: momentum must be a number in \[0, 1\] or null, got 'a' \(string\)/],
  ['BatchNorm2d misspelt option', 'new nn.BatchNorm2d(3, { affin: true })', /BatchNorm2d: unknown option 'affin' \(did you mean 'affine'\?\)/],
  ['MaxPool2d zero', 'new nn.MaxPool2d(0)', /MaxPool2d: kernelSize must be a positive integer or a pair of them, got 0/],
  ['MaxPool2d misspelt option', 'new nn.MaxPool2d(2, { ceilmode: true })', /MaxPool2d: unknown option 'ceilmode' \(did you mean 'ceilMode'\?\)/],
  ['AvgPool2d negative', 'new nn.AvgPool2d(-2)', /AvgPool2d: kernelSize must be a positive integer or a pair of them, got -2/],
  [
    'AdaptiveAvgPool2d zero',
    'new nn.AdaptiveAvgPool2d(-1)',
    /AdaptiveAvgPool2d: outputSize must be a non-negative integer or a pair of non-negative integers or nulls, got -1/,
  ],
  ['ReLU string', "new nn.ReLU('yes')", /ReLU: inplace must be a boolean, got 'yes' \(string\)/],
  ['Dropout string', "new nn.Dropout('a')", /dropout probability has to be between 0 and 1, but got 'a' \(string\)/],
  ['Flatten string', "new nn.Flatten('a')", /Flatten: startDim must be an integer, got 'a' \(string\)/],
  ['CrossEntropyLoss reduction', "new nn.CrossEntropyLoss({ reduction: 'avg' })", /reduction must be 'none', 'mean' or 'sum', got 'avg'/],
  ['CrossEntropyLoss unknown option', 'new nn.CrossEntropyLoss({ foo: 1 })', /CrossEntropyLoss: unknown option 'foo'/],
  ['Sequential number', 'new nn.Sequential(5)', /_?Sequential: module 0 must be a Module, got 5/],
  ['Sequential forward null', 'new nn.Sequential(new nn.ReLU())(null)', /argument 'input' must be a Tensor, got null/],
  ['Sequential append number', 'new nn.Sequential().append(5)', /_?Sequential: module 0 must be a Module, got 5/],
  ['ModuleList number', 'new nn.ModuleList(5)', /ModuleList: argument 'modules' must be an array of Modules, got 5/],
  ['Parameter number', 'new nn.Parameter(5)', /argument 'data' must be a Tensor, got 5/],
  ['loadStateDict(null)', 'lin().loadStateDict(null)', /loadStateDict\(\): argument 'stateDict' must be a Map or an object of Tensors, got null/],
  ['loadStateDict non-tensor', "lin().loadStateDict(new Map([['weight', 5], ['bias', vt.zeros(2)]]))", /expected a Tensor in the state dict, got number/],
  [
    'loadStateDict string strict',
    "lin().loadStateDict(lin().stateDict(), 'yes')",
    /loadStateDict\(\): argument 'options' must be an object with keys 'strict', got 'yes' \(string\)/,
  ],
  ['train string', "lin().train('yes')", /train\(\): argument 'mode' must be a boolean, got 'yes' \(string\)/],
  ['module to bad device', "lin().to('tpu')", /unknown dtype 'tpu'|device/],
  ['summary bad shape', "nn.summary(lin(), 'a')", /summary\(\): argument 'inputShape' must be an array of positive integers, got 'a' \(string\)/],
  ['init kaiming null', 'nn.init.kaimingUniform_(null)', /argument 'tensor' must be a Tensor, got null|kaimingUniform_\(\): argument 'tensor'/],
  ['init kaiming nonlinearity', "nn.init.kaimingUniform_(vt.randn(3, 3), { nonlinearity: 'gelu' })", /Unsupported nonlinearity gelu/],
  ['init kaiming unknown option', 'nn.init.kaimingUniform_(vt.randn(3, 3), { foo: 1 })', /kaimingUniform_\(\): unknown option 'foo'/],
  ['init uniform_ string', "nn.init.uniform_(vt.randn(3), 'a')", /uniform_\(\): argument 'from' must be a number, got 'a' \(string\)/],
  ['init constant_ string', "nn.init.constant_(vt.randn(3), 'a')", /argument 'value' must be a Tensor or a number, got 'a' \(string\)/],

  // ---- VGG ----
  ['vggTutorial 3-d input', 'vt.vggTutorial()(vt.randn(3, 32, 32))', /VGG: expected a 4-d \(N, C, H, W\) batch, got shape \[3, 32, 32\].*unsqueeze\(0\)/],
  ['vgg11 numClasses string', "vt.vgg11({ numClasses: '10' })", /VGG: numClasses must be a positive integer, got '10' \(string\)/],
  ['vgg11 bad weights', "vt.vgg11({ weights: 'FOO' })", /FOO/],
  ['vgg11 misspelt option', "vt.vgg11({ weight: 'DEFAULT' })", /vgg11\(\): unknown option 'weight' \(did you mean 'weights'\?\)/],
  ['vgg11 dropout 2', 'vt.vgg11({ dropout: 2 })', /dropout probability has to be between 0 and 1, but got 2/],
  ['vggTutorial misspelt option', 'vt.vggTutorial({ batchnorm: true })', /vggTutorial\(\): unknown option 'batchnorm' \(did you mean 'batchNorm'\?\)/],
  ['vggTutorial inputSize one number', 'vt.vggTutorial({ inputSize: [31] })', /inputSize must be .*got \[31\]/],
  ['vggTutorial inputSize too small', 'vt.vggTutorial({ inputSize: [4, 4] })', /inputSize.*\[4, 4\].*too small|at least/],
  ['makeLayers string cfg', "vt.makeLayers('A')", /makeLayers\(\): argument 'cfg' must be an array of positive integers and 'M', got 'A' \(string\)/],
  ['makeLayers bad entry', "vt.makeLayers([64, 'X'])", /makeLayers\(\): cfg\[1\] must be a positive integer or 'M', got 'X' \(string\)/],
  ['makeLayers unknown option', 'vt.makeLayers([64], { bn: true })', /makeLayers\(\): unknown option 'bn'/],
  ['VGG null features', 'new vt.VGG(null)', /VGG: argument 'features' must be a Sequential, got null/],
  ['VGG unknown option', 'new vt.VGG(vt.makeLayers([8]), { numclasses: 3 })', /VGG: unknown option 'numclasses' \(did you mean 'numClasses'\?\)/],

  // ---- optim ----
  ['SGD string lr', "new optim.SGD(lin().parameters(), { lr: 'a' })", /learning rate must be a number, got 'a' \(string\)/],
  ['SGD misspelt option', 'new optim.SGD(lin().parameters(), { lrr: 0.1 })', /SGD: unknown option 'lrr' \(did you mean 'lr'\?\)/],
  ['SGD null params', 'new optim.SGD(null)', /params argument given to the optimizer should be an iterable of Tensors or parameter groups, but got null/],
  ['Adam betas number', 'new optim.Adam(lin().parameters(), { betas: 0.9 })', /betas must be an array of two numbers, got (number|0\.9)/],
  ['Adam unknown option', 'new optim.Adam(lin().parameters(), { beta1: 0.9 })', /Adam: unknown option 'beta1' \(did you mean 'betas'\?\)/],
  ['AdamW NaN lr', 'new optim.AdamW(lin().parameters(), { lr: NaN })', /lr must be a number, got NaN|Invalid learning rate: NaN/],
  ['step closure string', "sgd().step('a')", /step\(\): closure must be a function, got 'a' \(string\)/],
  ['optimizer loadStateDict null', 'sgd().loadStateDict(null)', /loadStateDict\(\): expected a state dict object, got null/],
  ['addParamGroup number', 'sgd().addParamGroup(5)', /param group must be an object with a 'params' entry, got 5/],
  [
    'param group unknown option',
    'new optim.SGD([{ params: lin().parameters(), learningRate: 1 }], { lr: 0.1 })',
    /SGD: param group: unknown option 'learningRate'; allowed: 'params', 'lr',/,
  ],
  ['StepLR zero stepSize', 'new optim.StepLR(sgd(), { stepSize: 0 })', /stepSize must be a positive integer, got 0/],
  ['StepLR misspelt option', 'new optim.StepLR(sgd(), { stepSize: 2, gama: 0.1 })', /StepLR: unknown option 'gama' \(did you mean 'gamma'\?\)/],
  ['StepLR null optimizer', 'new optim.StepLR(null, { stepSize: 1 })', /StepLR: argument 'optimizer' must be an Optimizer, got null/],
  ['MultiStepLR string milestones', "new optim.MultiStepLR(sgd(), { milestones: 'a' })", /milestones must be an array of integers, got 'a' \(string\)/],
  ['ExponentialLR string gamma', "new optim.ExponentialLR(sgd(), { gamma: 'a' })", /gamma must be a number, got 'a' \(string\)/],
  ['SequentialLR empty', 'new optim.SequentialLR(sgd(), { schedulers: [], milestones: [] })', /SequentialLR.*schedulers/],
  ['scheduler loadStateDict null', 'new optim.StepLR(sgd(), { stepSize: 1 }).loadStateDict(null)', /loadStateDict\(\): expected a state dict object, got null/],

  // ---- transforms ----
  ['Pad(-20)', 'new T.Pad(-20)', /Pad: padding must be non-negative integers, got -20/],
  ['Pad string', "new T.Pad('a')", /Pad: padding must be .*got 'a' \(string\)/],
  ['Pad three values', 'new T.Pad([1, 2, 3])', /Pad: padding must be an integer or an array of 1, 2 or 4 integers, got \[1, 2, 3\]/],
  [
    'Pad bad mode',
    "new T.Pad(1, { paddingMode: 'mirror' })",
    /Pad: paddingMode must be one of 'constant', 'edge', 'reflect', 'symmetric', got 'mirror' \(string\)/,
  ],
  ['Pad misspelt option', 'new T.Pad(1, { fil: 0 })', /Pad: unknown option 'fil' \(did you mean 'fill'\?\)/],
  ['Resize(NaN)', 'new T.Resize(NaN)', /Resize: size must be a positive integer or \[height, width\], got NaN/],
  ['Resize three values', 'new T.Resize([1, 2, 3])', /Resize: size must be a positive integer or \[height, width\], got \[1, 2, 3\]/],
  ['Resize bad interpolation', "new T.Resize(8, { interpolation: 'cubic' })", /Resize: interpolation must be one of .*got 'cubic' \(string\)/],
  ['Resize misspelt option', 'new T.Resize(8, { antialiass: true })', /Resize: unknown option 'antialiass' \(did you mean 'antialias'\?\)/],
  ['CenterCrop string', "new T.CenterCrop('a')", /CenterCrop: size must be a positive integer or \[height, width\], got 'a' \(string\)/],
  ['RandomCrop negative padding', 'new T.RandomCrop(8, { padding: -1 })', /RandomCrop: padding must be non-negative integers, got -1/],
  [
    'Normalize zero std',
    'new T.Normalize([0.5], [0]).forward(x4)',
    /Normalize: std evaluated to zero after conversion to float32, leading to division by zero/,
  ],
  ['Normalize string', "new T.Normalize('a', 1)", /Normalize: mean must be a number or a non-empty array of numbers, got 'a' \(string\)/],
  ['RandomHorizontalFlip p 2', 'new T.RandomHorizontalFlip(2)', /RandomHorizontalFlip: p must be in \[0, 1\], got 2/],
  ['Grayscale 2', 'new T.Grayscale(2)', /Grayscale: numOutputChannels must be 1 or 3, got 2/],
  ['Compose number', 'new T.Compose(5)', /Compose: argument 'transforms' must be an array of transforms, got 5/],
  ['Compose bad element', 'new T.Compose([5])', /Compose: transforms\[0\] must be a transform or a function, got 5/],
  ['Lambda number', 'new T.Lambda(5)', /Lambda: argument 'fn' must be a function, got 5/],
  ['ToTensor bad layout', "new T.ToTensor({ layout: 'XYZ' })", /ToTensor: layout must be .*got 'XYZ' \(string\)/],
  ['ToTensor unknown option', "new T.ToTensor({ layot: 'HWC' })", /ToTensor: unknown option 'layot' \(did you mean 'layout'\?\)/],
  ['Resize forward null', 'new T.Resize(8).forward(null)', /Resize: expected a Tensor, got null/],

  // ---- data ----
  ['DataLoader null', 'new vt.DataLoader(null)', /DataLoader: argument 'dataset' must be a Dataset \(with length and get\(i\)\), got null/],
  [
    'DataLoader batchSize string',
    "new vt.DataLoader(ds(), { batchSize: '4' })",
    /DataLoader: batchSize should be an integer >= 1, but got batchSize='4' \(string\)/,
  ],
  ['DataLoader shuffle string', "new vt.DataLoader(ds(), { shuffle: 'yes' })", /DataLoader: shuffle must be a boolean, got 'yes' \(string\)/],
  ['DataLoader misspelt option', 'new vt.DataLoader(ds(), { batchsize: 4 })', /DataLoader: unknown option 'batchsize' \(did you mean 'batchSize'\?\)/],
  ['DataLoader collate number', 'new vt.DataLoader(ds(), { collate: 5 })', /DataLoader: collate must be a function, got 5/],
  ['TensorDataset number', 'new vt.TensorDataset(5)', /TensorDataset: argument 0 must be a Tensor, got 5/],
  ['Subset out of range', 'new vt.Subset(ds(), [10])', /Subset: index 10 is out of range for 4 samples/],
  ['Subset null dataset', 'new vt.Subset(null, [0])', /Subset: argument 'dataset' must be a Dataset \(with length and get\(i\)\), got null/],
  ['randomSplit string', "vt.randomSplit(ds(), 'a')", /randomSplit\(\): argument 'lengths' must be an array of non-negative numbers, got 'a' \(string\)/],
  ['ImageFolder number', 'new vt.ImageFolder(5)', /ImageFolder: argument 'root' must be a path, got 5/],
  [
    'ImageFolder misspelt option',
    'new vt.ImageFolder(tmp, { extension: [".png"] })',
    /ImageFolder: unknown option 'extension' \(did you mean 'extensions'\?\)/,
  ],
  ['accuracy null', 'vt.train.accuracy(null, target)', /accuracy\(\): argument 'output' must be a Tensor, got null/],
  ['accuracy misspelt option', 'vt.train.accuracy(x, target, { top: 1 })', /accuracy\(\): unknown option 'top' \(did you mean 'topk'\?\)/],
  ['ConfusionMatrix 0', 'new vt.train.ConfusionMatrix(0)', /ConfusionMatrix: classes must be a positive integer or an array of names, got 0/],
  ['Generator fractional seed', 'new vt.Generator().manualSeed(1.5)', /seed must be an integer, got 1\.5/],

  // ---- serialization ----
  ['load number', 'vt.load(5)', /load\(\): expected a path, a file URL, a Buffer\/Uint8Array or an ArrayBuffer, got number/],
  ['load weightsOnly string', "vt.load(Buffer.from('x'), { weightsOnly: 'yes' })", /load\(\): unknown option 'weightsOnly'|weightsOnly must be a boolean/],
  ['load unknown option', "vt.load(Buffer.from('x'), { maplocation: 'cpu' })", /load\(\): unknown option 'maplocation' \(did you mean 'mapLocation'\?\)/],
  ['save null path', 'vt.save(x, null)', /save\(\): expected a path, got null/],
  ['save unknown option', "vt.save(x, tmp + '/a.pth', { foo: 1 })", /save\(\): unknown option 'foo'/],
  ['save function', "vt.save({ a: () => 1 }, tmp + '/a.pth')", /save\(\): cannot save a value of type function at \["a"\]/],
  [
    'loadSafetensors unknown option',
    "vt.loadSafetensors(Buffer.from('xx'), { maplocation: 'cpu' })",
    /loadSafetensors\(\): unknown option 'maplocation' \(did you mean 'mapLocation'\?\)/,
  ],
  [
    'saveSafetensors number',
    "vt.saveSafetensors(5, tmp + '/a.safetensors')",
    /saveSafetensors\(\): argument 'tensors' must be a Map or an object of Tensors, got 5/,
  ],
  ['saveSafetensors non-tensor', "vt.saveSafetensors(new Map([['a', 5]]), tmp + '/a.safetensors')", /saveSafetensors\(\): 'a' must be a Tensor, got 5/],
  ['saveCheckpoint number path', 'vt.train.saveCheckpoint(5, {})', /saveCheckpoint\(\): argument 'path' must be a path, got 5/],

  // (hub's argument checks belong to the download work of issue 11 part 8; vgg11({ weights: 'FOO' }) above
  // covers the weights lookup.)

  // ---- scope, autograd, runtime ----
  ['tidy(5)', 'vt.tidy(5)', /tidy\(\): argument 'fn' must be a function, got 5/],
  ['keep number', 'vt.keep(5)', /keep\(\): argument 'tensor' must be a Tensor .*got 5/],
  ['noGrad number', 'vt.noGrad(5)', /noGrad\(\): argument 'fn' must be a function, got 5/],
  ['enableGrad string', "vt.enableGrad('a')", /enableGrad\(\): argument 'fn' must be a function, got 'a' \(string\)/],
  ['setGradEnabled string', "vt.setGradEnabled('yes')", /argument 'enabled' must be a boolean/],
  ['inferenceMode number', 'vt.inferenceMode(5)', /inferenceMode\(\): argument 'fn' must be a function, got 5/],
  ['manualSeed string', "vt.manualSeed('a')", /manualSeed\(\): seed must be an integer, got 'a' \(string\)/],
  ['setNumThreads string', "vt.setNumThreads('2')", /setNumThreads\(\): expected an integer, got '2' \(string\)/],
  ['setRngState null', 'vt.setRngState(null)', /argument 'state' must be a Tensor, got null/],

  // ---- train, images ----
  ['fit null', 'vt.train.fit(null)', /fit\(\): argument 'options' must be an object/],
  [
    'fit epochs 0',
    'vt.train.fit({ model: lin(), trainLoader: new vt.DataLoader(ds()), optimizer: sgd(), epochs: 0 })',
    /fit\(\): epochs must be a positive integer, got 0/,
  ],
  [
    'fit misspelt option',
    'vt.train.fit({ model: lin(), trainLoader: new vt.DataLoader(ds()), optimizer: sgd(), epochs: 1, logevery: 2 })',
    /fit\(\): unknown option 'logevery' \(did you mean 'logEvery'\?\)/,
  ],
  [
    'fit missing model',
    'vt.train.fit({ trainLoader: new vt.DataLoader(ds()), optimizer: sgd(), epochs: 1 })',
    /fit\(\): option 'model' is required|model must be a Module/,
  ],
  ['evaluate null', 'vt.train.evaluate(null, new vt.DataLoader(ds()))', /evaluate\(\): argument 'model' must be a Module, got null/],
  ['ProgressBar misspelt option', 'new train.ProgressBar({ total: 3, lable: 1 })', /ProgressBar: unknown option 'lable' \(did you mean 'label'\?\)/],
  ['ProgressBar no options', 'new train.ProgressBar()', /ProgressBar: argument 'options' must be an object with 'total', got undefined/],
  ['startLiveServer unknown option', 'train.startLiveServer({ prot: 0 })', /startLiveServer\(\): unknown option 'prot' \(did you mean 'port'\?\)/],
  ['renderChartHtml unknown option', "train.renderChartHtml([], { titel: 'x' })", /renderChartHtml\(\): unknown option 'titel' \(did you mean 'title'\?\)/],
  ['makeGrid null', 'vt.makeGrid(null)', /makeGrid: argument 'images' must be a Tensor or an array of Tensors, got null/],
  ['makeGrid unknown option', 'vt.makeGrid(x4, { rows: 2 })', /makeGrid: unknown option 'rows'/],
  ['saveImage null', "vt.saveImage(null, tmp + '/a.png')", /saveImage: argument 'images' must be a Tensor or an array of Tensors, got null/],
  // ---- distributed comm hooks (option checks need no process group) ----
  [
    'PowerSGDState early start',
    'new vt.distributed.algorithms.ddpCommHooks.powerSGD.PowerSGDState(null, { startPowerSGDIter: 1 })',
    /PowerSGDState\(\): startPowerSGDIter must be > 1 if useErrorFeedback or warmStart is enabled.*got 1/,
  ],
  [
    'PowerSGDState rank 0',
    'new vt.distributed.algorithms.ddpCommHooks.powerSGD.PowerSGDState(null, { matrixApproximationRank: 0 })',
    /PowerSGDState\(\): matrixApproximationRank must be .*got 0/,
  ],
  [
    'PowerSGDState misspelt option',
    'new vt.distributed.algorithms.ddpCommHooks.powerSGD.PowerSGDState(null, { warmstart: false })',
    /PowerSGDState\(\): unknown option 'warmstart' \(did you mean 'warmStart'\?\)/,
  ],
  [
    'PowerSGDState big seed',
    'new vt.distributed.algorithms.ddpCommHooks.powerSGD.PowerSGDState(null, { randomSeed: 2 ** 32 })',
    /PowerSGDState\(\): randomSeed must be between 0 and 2\*\*32 - 1/,
  ],
];
