// /v1/orgs: the caller's organisation (tenancy: no route reaches another organisation).
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { IdentityService } from '../../identity/service.ts';
import { principalOf, requestContext } from '../auth/plugin.ts';
import { errorResponseSchema } from '../schemas.ts';

export const orgSchema = z.object({ id: z.string(), name: z.string(), createdAt: z.string() });
const errors = { '4xx': errorResponseSchema, '5xx': errorResponseSchema };
const params = z.object({ orgId: z.string().min(1).max(64) });

export function orgRoutes(deps: { identity: IdentityService }) {
  return async (app: FastifyInstance) => {
    const r = app.withTypeProvider<ZodTypeProvider>();
    r.get(
      '/v1/orgs',
      {
        config: { permission: 'orgs:read' },
        schema: {
          tags: ['orgs'],
          summary: 'Organisations visible to the caller (its own)',
          security: [{ bearer: [] }],
          response: { 200: z.object({ orgs: z.array(orgSchema) }), ...errors },
        },
      },
      async (req) => {
        const p = principalOf(req);
        return { orgs: [await deps.identity.getOrg(p, p.orgId)] };
      },
    );
    r.get(
      '/v1/orgs/:orgId',
      {
        config: { permission: 'orgs:read' },
        schema: {
          tags: ['orgs'],
          summary: 'One organisation',
          security: [{ bearer: [] }],
          params,
          response: { 200: orgSchema, ...errors },
        },
      },
      async (req) => deps.identity.getOrg(principalOf(req), req.params.orgId),
    );
    r.patch(
      '/v1/orgs/:orgId',
      {
        config: { permission: 'orgs:write' },
        schema: {
          tags: ['orgs'],
          summary: 'Rename the organisation',
          security: [{ bearer: [] }],
          params,
          body: z.object({ name: z.string().min(1).max(200) }).strict(),
          response: { 200: orgSchema, ...errors },
        },
      },
      async (req) =>
        deps.identity.renameOrg(principalOf(req), requestContext(req), req.params.orgId, req.body.name),
    );
  };
}
