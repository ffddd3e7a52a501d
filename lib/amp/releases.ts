// Which torch.amp the autocast and GradScaler here follow: the Python behaviour of the torch
// release whose libtorch the addon runs on (`version.torch`). Each difference between releases is
// one named switch, true from the release that introduced it, as lib/optim/releases.ts does for
// torch.optim. "Verified" means read in that release's sources and matched by the live-oracle
// tests on Debian 12's libtorch 1.13 and Debian 13's 2.6; a release between them is PyTorch's
// history as far as known, unverified.
import { releaseOf, version } from '../runtime.js';

/** The switches of one torch release; see {@link ampRules}. */
export interface AmpRules {
  /**
   * CPU autocast takes float16 as well as bfloat16 (libtorch and Python alike). Verified: 1.13
   * bfloat16 only, 2.6 both; from 2.1, unverified.
   */
  cpuAutocastHalf: boolean;
  /**
   * GradScaler works on CPU (`torch.amp.GradScaler('cpu')`): aten has CPU kernels for
   * `_amp_foreach_non_finite_check_and_unscale_` and `_amp_update_scale_` (pytorch#109281) and
   * torch/amp/grad_scaler.py takes a device (pytorch#109993). Before, GradScaler is
   * torch.cuda.amp's, CUDA only: without CUDA it warns and disables itself. Verified: 1.13 has
   * neither kernel on CPU (calling them fails) and no device argument; 2.6 has both. From 2.3
   * (the PRs' release, April 2024), unverified.
   */
  cpuGradScaler: boolean;
  /**
   * GradScaler's scale and growth tracker are 0-dim tensors (`torch.full((), …)`), so `scale(loss)`
   * of a 0-dim loss stays 0-dim; before, they have shape [1] (`torch.full((1,), …)`) and the scaled
   * loss gets shape [1]. Verified by reading: 1.13 (1,), 2.6 (). From 2.3 (torch/amp/grad_scaler.py),
   * unverified; only CUDA can show it before 2.3.
   */
  gradScalerScalarScale: boolean;
}

/** The switches for a torch version string, e.g. `ampRules('2.6.0')`. */
export function ampRules(torchVersion: string): Readonly<AmpRules> {
  const [major, minor] = releaseOf(torchVersion);
  const since = (ma: number, mi: number): boolean => major > ma || (major === ma && minor >= mi);
  return Object.freeze({
    cpuAutocastHalf: since(2, 1),
    cpuGradScaler: since(2, 3),
    gradScalerScalarScale: since(2, 3),
  });
}

/** The switches of the libtorch the addon runs on. */
export const ampRulesNow: Readonly<AmpRules> = ampRules(version.torch);
