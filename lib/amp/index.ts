// torch.amp: GradScaler. autocast, isAutocastEnabled and getAutocastDtype are on the package's top
// level (torch.autocast), so they are not repeated here: one public name per thing.
export { GradScaler } from './gradScaler.js';
export type { GradScalerDeviceType, GradScalerOptions, GradScalerStateDict, GradScalerStateDictInput } from './gradScaler.js';
