// /v1/users: people of the caller's organisation and their roles.
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ROLES } from '../../identity/rbac.ts';
import type { IdentityService } from '../../identity/service.ts';
import { principalOf, requestContext } from '../auth/plugin.ts';
import { errorResponseSchema } from '../schemas.ts';

export const userSchema = z.object({
  id: z.string(),
  orgId: z.string(),
  email: z.string(),
  role: z.enum(ROLES),
  status: z.enum(['active', 'disabled']),
  mfaEnrolled: z.boolean(),
  lockedUntil: z.string().nullable(),
  lastLoginAt: z.string().nullable(),
  createdAt: z.string(),
});
const errors = { '4xx': errorResponseSchema, '5xx': errorResponseSchema };
const params = z.object({ userId: z.string().min(1).max(64) });

export function userRoutes(deps: { identity: IdentityService }) {
  return async (app: FastifyInstance) => {
    const r = app.withTypeProvider<ZodTypeProvider>();
    r.get(
      '/v1/users',
      {
        config: { permission: 'users:read' },
        schema: {
          tags: ['users'],
          summary: 'List users',
          security: [{ bearer: [] }],
          querystring: z.object({
            limit: z.coerce.number().int().min(1).max(500).default(100),
            after: z.string().max(64).optional(),
          }),
          response: { 200: z.object({ users: z.array(userSchema) }), ...errors },
        },
      },
      async (req) => ({
        users: await deps.identity.listUsers(principalOf(req), req.query.limit, req.query.after),
      }),
    );
    r.post(
      '/v1/users',
      {
        config: { permission: 'users:write' },
        schema: {
          tags: ['users'],
          summary: 'Create a user; without a password, a one-time initial password is returned (once)',
          security: [{ bearer: [] }],
          body: z
            .object({
              email: z.string().min(3).max(320),
              role: z.enum(ROLES),
              password: z.string().min(12).max(1024).optional(),
            })
            .strict(),
          response: {
            201: z.object({ user: userSchema, initialPassword: z.string().nullable() }),
            ...errors,
          },
        },
      },
      async (req, reply) => {
        const out = await deps.identity.createUser(principalOf(req), requestContext(req), req.body);
        return reply.status(201).send(out);
      },
    );
    r.get(
      '/v1/users/:userId',
      {
        config: { permission: 'users:read' },
        schema: {
          tags: ['users'],
          summary: 'One user',
          security: [{ bearer: [] }],
          params,
          response: { 200: userSchema, ...errors },
        },
      },
      async (req) => deps.identity.getUser(principalOf(req), req.params.userId),
    );
    r.patch(
      '/v1/users/:userId',
      {
        config: { permission: 'users:write' },
        schema: {
          tags: ['users'],
          summary: 'Change role or status, unlock, or reset TOTP (ends the user’s sessions)',
          security: [{ bearer: [] }],
          params,
          body: z
            .object({
              role: z.enum(ROLES).optional(),
              status: z.enum(['active', 'disabled']).optional(),
              unlock: z.boolean().optional(),
              resetTotp: z.boolean().optional(),
            })
            .strict(),
          response: { 200: userSchema, ...errors },
        },
      },
      async (req) =>
        deps.identity.updateUser(principalOf(req), requestContext(req), req.params.userId, req.body),
    );
  };
}
