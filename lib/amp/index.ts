// torch.amp: automatic mixed precision. `autocast` is also on the top level (torch.autocast), with
// isAutocastEnabled and getAutocastDtype (torch.is_autocast_enabled, torch.get_autocast_dtype).
export { autocast } from './autocastMode.js';
export type { AutocastDeviceType, AutocastOptions } from './autocastMode.js';
