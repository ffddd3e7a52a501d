// torchvision.transforms, for image tensors and whole batches.
export {
  Transform,
  Compose,
  Lambda,
  ToTensor,
  Normalize,
  Pad,
  RandomCrop,
  RandomHorizontalFlip,
  Resize,
  CenterCrop,
  Grayscale,
  applyTransform,
  isPlannable,
} from './transforms.js';
export type {
  TransformFn,
  TransformLike,
  Padding,
  PaddingMode,
  Size,
  ImageLayout,
  InterpolationMode,
} from './transforms.js';
