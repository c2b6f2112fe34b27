// Builds the Fastify application: zod type provider, OpenAPI 3.1 (/docs/json, Swagger UI at /docs),
// request ids, one error handler, health routes. Feature routes are encapsulated plugins registered
// by the caller through `routes`.
import { randomUUID } from 'node:crypto';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import type { Logger } from '../log/logger.ts';
import { registerErrorHandling } from './errors.ts';
import { healthRoutes, type ReadinessCheck } from './routes/health.ts';

export interface BuildAppOptions {
  logger: Logger;
  bodyLimit?: number;
  trustProxy?: boolean;
  version: string;
  readiness: ReadinessCheck[];
  /** Extra encapsulated plugins (feature routes). */
  routes?: ((app: FastifyInstance) => Promise<void>)[];
}

const REQUEST_ID = /^[A-Za-z0-9._:-]{8,64}$/;

export async function buildApp(opts: BuildAppOptions): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: opts.logger as FastifyBaseLogger,
    bodyLimit: opts.bodyLimit ?? 1024 * 1024,
    onProtoPoisoning: 'error',
    onConstructorPoisoning: 'error',
    trustProxy: opts.trustProxy ?? false,
    requestIdHeader: 'x-request-id',
    genReqId: (req) => {
      const given = req.headers['x-request-id'];
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
    },
    routerOptions: { ignoreTrailingSlash: true },
    return503OnClosing: true,
    forceCloseConnections: 'idle',
  }) as unknown as FastifyInstance;

  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  registerErrorHandling(app);
  app.addHook('onSend', async (req, reply) => {
    reply.header('x-request-id', req.id);
    reply.header('x-content-type-options', 'nosniff');
    reply.header('cache-control', reply.getHeader('cache-control') ?? 'no-store');
  });

  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Custos API',
        version: opts.version,
        description:
          'Institutional crypto custody and merchant payments with threshold (MPC) signing. ' +
          'Errors always have the shape {"error":{"code","message","details"}}; see docs/errors.md.',
      },
      components: {
        securitySchemes: {
          bearer: {
            type: 'http',
            scheme: 'bearer',
            description: 'JWT access token or API key (ck_live_…/ck_test_…)',
          },
        },
      },
    },
    transform: withPermissions,
  });
  await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: true });

  await app.register(healthRoutes, { version: opts.version, readiness: opts.readiness });
  for (const r of opts.routes ?? []) await app.register(r);
  return app;
}

/**
 * The zod → JSON Schema transform, plus each operation's permission (docs/security/rbac.md) in its
 * description and as `x-custos-permission`, so the API reference says who may call what.
 */
const withPermissions: typeof jsonSchemaTransform = (args) => {
  const out = jsonSchemaTransform(args);
  const cfg = (args.route.config ?? {}) as { permission?: string; public?: boolean };
  const permission = cfg.public ? 'public' : cfg.permission;
  if (!permission || !out.schema) return out;
  const schema = out.schema as Record<string, unknown>;
  const note =
    permission === 'public'
      ? 'Public: no credentials needed.'
      : permission === 'authenticated'
        ? 'Any signed-in caller.'
        : `Requires the permission \`${permission}\` (docs/security/rbac.md).`;
  return {
    ...out,
    schema: {
      ...schema,
      description: schema['description'] ? `${schema['description']}\n\n${note}` : note,
      'x-custos-permission': permission,
    } as typeof out.schema,
  };
};
