// /v1/api-keys: machine credentials, scoped and per environment; the key is shown once.
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { IdentityService } from '../../identity/service.ts';
import { principalOf, requestContext } from '../auth/plugin.ts';
import { errorResponseSchema } from '../schemas.ts';

export const apiKeySchema = z.object({
  id: z.string(),
  orgId: z.string(),
  environment: z.enum(['sandbox', 'production']),
  name: z.string(),
  redacted: z.string().describe('ck_live_abcd…wxyz'),
  scopes: z.array(z.string()),
  rateLimit: z.object({ burst: z.number().int().nullable(), perMinute: z.number().int().nullable() }),
  createdBy: z.string().nullable(),
  createdAt: z.string(),
  lastUsedAt: z.string().nullable(),
  revokedAt: z.string().nullable(),
});
const errors = { '4xx': errorResponseSchema, '5xx': errorResponseSchema };

export function apiKeyRoutes(deps: { identity: IdentityService }) {
  return async (app: FastifyInstance) => {
    const r = app.withTypeProvider<ZodTypeProvider>();
    r.get(
      '/v1/api-keys',
      {
        config: { permission: 'api_keys:read' },
        schema: {
          tags: ['api-keys'],
          summary: 'List API keys (redacted)',
          security: [{ bearer: [] }],
          querystring: z.object({ environment: z.enum(['sandbox', 'production']).optional() }),
          response: { 200: z.object({ apiKeys: z.array(apiKeySchema) }), ...errors },
        },
      },
      async (req) => ({ apiKeys: await deps.identity.listApiKeys(principalOf(req), req.query.environment) }),
    );
    r.post(
      '/v1/api-keys',
      {
        config: { permission: 'api_keys:write' },
        schema: {
          tags: ['api-keys'],
          summary:
            'Create an API key: ck_test_… (sandbox) or ck_live_… (production); `key` is shown only now',
          security: [{ bearer: [] }],
          body: z
            .object({
              name: z.string().min(1).max(100),
              environment: z.enum(['sandbox', 'production']),
              scopes: z
                .array(z.string().regex(/^[a-z_]+:[a-z_]+$/))
                .min(1)
                .max(50),
              rateLimit: z
                .object({
                  burst: z.number().int().min(1).max(10_000).optional(),
                  perMinute: z.number().int().min(1).max(1_000_000).optional(),
                })
                .strict()
                .optional(),
            })
            .strict(),
          response: { 201: z.object({ apiKey: apiKeySchema, key: z.string() }), ...errors },
        },
      },
      async (req, reply) => {
        const out = await deps.identity.createApiKey(principalOf(req), requestContext(req), req.body);
        return reply.status(201).send(out);
      },
    );
    r.delete(
      '/v1/api-keys/:keyId',
      {
        config: { permission: 'api_keys:write' },
        schema: {
          tags: ['api-keys'],
          summary: 'Revoke an API key (immediately; idempotent)',
          security: [{ bearer: [] }],
          params: z.object({ keyId: z.string().min(1).max(64) }),
          response: { 200: apiKeySchema, ...errors },
        },
      },
      async (req) => deps.identity.revokeApiKey(principalOf(req), requestContext(req), req.params.keyId),
    );
  };
}
