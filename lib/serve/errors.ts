// Errors as TorchServe answers them: a JSON body {code, type, message}, the
// status code repeated in it, the type named after TorchServe's exceptions.

/** An error the server answers with `code` and the JSON body `{ code, type, message }`. */
export class HttpError extends Error {
  constructor(
    readonly code: number,
    readonly type: string,
    message: string,
    /** Extra response headers (Retry-After for 503). */
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  get body(): { code: number; type: string; message: string } {
    return { code: this.code, type: this.type, message: this.message };
  }
}

export const badRequest = (message: string): HttpError => new HttpError(400, 'BadRequestException', message);
export const modelNotFound = (name: string): HttpError => new HttpError(404, 'ModelNotFoundException', `Model not found: ${name}`);
export const notFound = (): HttpError =>
  new HttpError(
    404,
    'ResourceNotFoundException',
    'Requested resource is not found: the routes are POST /predictions/<model>, POST /explanations/<model>, GET /ping, GET /metrics, GET / (the page)',
  );
export const tooLarge = (limit: number): HttpError =>
  new HttpError(413, 'RequestEntityTooLargeException', `the request body is over the limit of ${limit} bytes (bodyLimit)`);
export const unavailable = (message: string, retryAfterS: number): HttpError =>
  new HttpError(503, 'ServiceUnavailableException', message, { 'retry-after': String(retryAfterS) });
export const internal = (message: string): HttpError => new HttpError(500, 'InternalServerException', message);

/** What Fastify's and @fastify/multipart's own errors mean for a client: our errors, in TorchServe's form. */
export function fromFrameworkError(e: unknown, bodyLimit: number, contentType: string | undefined): HttpError {
  if (e instanceof HttpError) return e;
  const err = e as { code?: string; statusCode?: number; message?: string };
  const message = err.message ?? String(e);
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
    case 'FST_REQ_FILE_TOO_LARGE':
      return tooLarge(bodyLimit);
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_EMPTY_TYPE':
    case 'FST_ERR_CTP_INVALID_TYPE':
    case 'FST_INVALID_MULTIPART_CONTENT_TYPE':
      return badRequest(`Content-Type ${contentType ?? '(none)'}: ${wrongType}`);
  }
  const status = err.statusCode ?? 500;
  if (status === 413) return tooLarge(bodyLimit);
  if (status >= 400 && status < 500) return new HttpError(status, 'BadRequestException', message);
  return internal(message);
}

/** Says what to send instead of a body the server cannot take. */
export const wrongType = 'send the image as its bytes with Content-Type image/* or application/octet-stream, or as a file field of a multipart/form-data body';
