/** Argument checks of SmolVLAModel's methods (run before any native handle is touched). */
import { argumentError } from '../errors';
import { optionalTensorArg, optionsArg, stringListArg, tensorArg, tensorListArg } from '../util/args';
import type { Observation } from './model';

/** Cameras a model accepts in one observation (SmolVLA uses up to 3, plus empty ones). */
export const MAX_CAMERAS = 64;

/** An Observation whose every field is a live Tensor (shapes and dtypes are checked natively). */
export function observationArg(name: string, obs: unknown): Observation {
  if (obs === null || typeof obs !== 'object') throw argumentError(name, 'an Observation object', obs);
  const o = obs as Partial<Observation>;
  const images = tensorListArg(`${name}.images`, o.images, 1, MAX_CAMERAS);
  const imgMasks = tensorListArg(`${name}.imgMasks`, o.imgMasks, images.length, images.length);
  return {
    images,
    imgMasks,
    langTokens: tensorArg(`${name}.langTokens`, o.langTokens),
    langMasks: tensorArg(`${name}.langMasks`, o.langMasks),
    state: tensorArg(`${name}.state`, o.state),
  };
}

/** Checks every Tensor-valued option named in `keys` (absent is fine) and optional gradNames. */
export function tensorOptionsArg<T extends object>(name: string, options: T | undefined, keys: readonly (keyof T & string)[]): T {
  const o = optionsArg(name, options);
  for (const key of keys) optionalTensorArg(`${name}.${key}`, o[key]);
  const grads = (o as { gradNames?: unknown }).gradNames;
  if (grads !== undefined) stringListArg(`${name}.gradNames`, grads);
  return o;
}
