// The single Fastify error handler: every error leaves as
// { "error": { "code": "CUSTOS_…", "message": "…", "details": {…} } } with the status from the code
// table. A 5xx never carries the internal message or details: the log has them, keyed by request id.
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { hasZodFastifySchemaValidationErrors, isResponseSerializationError } from 'fastify-type-provider-zod';
import { CustosError, ERROR_CODES, type ErrorCode } from '../errors.ts';

export interface ErrorBody {
  error: { code: string; message: string; details?: Record<string, unknown>; requestId?: string };
}

/** Fastify's own error codes that are the client's fault, mapped onto ours. */
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_INVALID_JSON_BODY: 'CUSTOS_BAD_JSON',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'CUSTOS_BAD_JSON',
  FST_ERR_CTP_BODY_TOO_LARGE: 'CUSTOS_PAYLOAD_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'CUSTOS_UNSUPPORTED_MEDIA_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'CUSTOS_VALIDATION',
  FST_ERR_VALIDATION: 'CUSTOS_VALIDATION',
};

export function toErrorBody(
  err: unknown,
  requestId?: string,
): { status: number; body: ErrorBody; internal: boolean } {
  let code: ErrorCode = 'CUSTOS_INTERNAL';
  let message = 'internal error';
  let details: Record<string, unknown> | undefined;

  if (err instanceof CustosError) {
    code = (err.code in ERROR_CODES ? err.code : 'CUSTOS_INTERNAL') as ErrorCode;
    message = err.shortMessage;
    details = err.details;
  } else if (hasZodFastifySchemaValidationErrors(err)) {
    code = 'CUSTOS_VALIDATION';
    message = `invalid ${err.validationContext ?? 'request'}`;
    details = {
      issues: err.validation.map((v) => ({
        path: v.instancePath || '/',
        message: v.message ?? 'invalid',
      })),
    };
  } else if (isPgError(err, '23505') || isPgError(err, '23503')) {
    // A uniqueness/foreign-key race that a service did not turn into its own error.
    code = 'CUSTOS_STORE_CONSTRAINT';
    message = 'the request conflicts with existing data';
  } else if (isPgError(err, '40001') || isPgError(err, '40P01')) {
    code = 'CUSTOS_CONFLICT';
    message = 'concurrent update; retry the request';
  } else if (isResponseSerializationError(err)) {
    code = 'CUSTOS_INTERNAL';
  } else if (isFastifyError(err)) {
    if (err.message.includes('__proto__') || err.message.includes('constructor')) {
      code = 'CUSTOS_BAD_JSON';
      message = 'request body contains a forbidden key';
    } else if (err.code && FASTIFY_CODES[err.code]) {
      code = FASTIFY_CODES[err.code]!;
      message = code === 'CUSTOS_PAYLOAD_TOO_LARGE' ? 'request body is too large' : err.message;
    } else if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
      code = err.statusCode === 404 ? 'CUSTOS_NOT_FOUND' : 'CUSTOS_VALIDATION';
      message = err.message;
    }
  }
  const status = ERROR_CODES[code].status;
  const internal = status >= 500;
  const body: ErrorBody = {
    error: {
      code,
      // 5xx: the generic text of the code, never the internal message.
      message:
        internal && !(err instanceof CustosError && isPublic503(code))
          ? ERROR_CODES[code].description
          : message,
      ...(!internal && details ? { details } : {}),
      ...(requestId ? { requestId } : {}),
    },
  };
  return { status, body, internal };
}

/** 503/504 messages written by us name the failing dependency, which the operator needs. */
function isPublic503(code: ErrorCode): boolean {
  const s = ERROR_CODES[code].status;
  return s === 503 || s === 504 || s === 502;
}

/** PostgreSQL (pg and PGlite) errors carry the SQLSTATE in `code`. */
function isPgError(e: unknown, sqlstate: string): boolean {
  return e instanceof Error && (e as { code?: unknown }).code === sqlstate && !(e instanceof CustosError);
}

function isFastifyError(e: unknown): e is FastifyError {
  return e instanceof Error && typeof (e as FastifyError).code === 'string';
}

export function registerErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((err: unknown, req: FastifyRequest, reply: FastifyReply) => {
    const { status, body, internal } = toErrorBody(err, req.id);
    if (internal) req.log.error({ err }, 'request failed');
    else req.log.info({ code: body.error.code }, 'request rejected');
    if (body.error.code === 'CUSTOS_RATE_LIMITED' && err instanceof CustosError) {
      const retry = err.details?.['retryAfterSeconds'];
      if (typeof retry === 'number') reply.header('retry-after', String(Math.ceil(retry)));
    }
    return reply.status(status).send(body);
  });
  app.setNotFoundHandler((req, reply) => {
    reply.status(404).send({
      error: {
        code: 'CUSTOS_NOT_FOUND',
        message: `no route ${req.method} ${req.url.split('?')[0]}`,
        requestId: req.id,
      },
    } satisfies ErrorBody);
  });
}
