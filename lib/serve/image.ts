// A request's image: its size read from the header before anything is decoded
// (an absurd width × height is refused without allocating its pixels), then
// decoded by lib/io's one decoding path, every failure a 400 that says why.
import { decodeImage } from '../io/image.js';
import type { Tensor } from '../tensor/tensor.js';
import { badRequest } from './errors.js';

/**
 * The uint8 (3, H, W) image in `bytes`; a 400 HttpError for an empty body, bytes that are no
 * image sharp knows, an image over `maxPixels` pixels (by its header), or pixels that do not
 * decode (a truncated file).
 */
export async function imageFromBytes(bytes: Uint8Array, maxPixels: number): Promise<Tensor> {
  if (bytes.length === 0) throw badRequest('the body is empty: send the bytes of an image (JPEG, PNG, WebP, GIF, TIFF)');
  const { default: sharp } = await import('sharp');
  let width: number | undefined;
  let height: number | undefined;
  try {
    // The header only: sharp's own pixel limit is off here because ours gives the clearer message.
    ({ width, height } = await sharp(bytes, { limitInputPixels: false }).metadata());
  } catch (e) {
    throw badRequest(`the body is not an image this server can decode (JPEG, PNG, WebP, GIF, TIFF): ${(e as Error).message}`);
  }
  if (!width || !height) throw badRequest('the image has no width or height in its header');
  if (width * height > maxPixels) {
    throw badRequest(`the image is ${width}×${height} = ${width * height} pixels, over this server's limit of ${maxPixels} (maxPixels)`);
  }
  try {
    return await decodeImage(bytes);
  } catch (e) {
    throw badRequest(`the image does not decode (truncated or corrupt?): ${(e as Error).message}`);
  }
}
