// GET /v1/security-events: failed logins, lockouts, rate-limit blocks, permission denials (and,
// from other parts, node aborts and limit breaches) of the caller's organisation.
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import { SecurityEventRepository } from '../../store/repositories/security-events.ts';
import type { Database } from '../../store/schema.ts';
import { principalOf } from '../auth/plugin.ts';
import { errorResponseSchema } from '../schemas.ts';

const eventSchema = z.object({
  id: z.string(),
  occurredAt: z.string(),
  kind: z.string(),
  severity: z.enum(['info', 'warning', 'critical']),
  actor: z.object({ type: z.string(), id: z.string().nullable() }).nullable(),
  ip: z.string().nullable(),
  requestId: z.string().nullable(),
  details: z.record(z.string(), z.unknown()),
});

export function securityEventRoutes(deps: { db: Kysely<Database> }) {
  return async (app: FastifyInstance) => {
    const r = app.withTypeProvider<ZodTypeProvider>();
    r.get(
      '/v1/security-events',
      {
        config: { permission: 'security_events:read' },
        schema: {
          tags: ['security'],
          summary: 'Security events of your organisation, oldest first',
          security: [{ bearer: [] }],
          querystring: z.object({
            kind: z.string().max(64).optional(),
            since: z.iso.datetime({ offset: true }).optional(),
            after: z
              .string()
              .regex(/^[0-9]{1,19}$/)
              .optional(),
            limit: z.coerce.number().int().min(1).max(1000).default(100),
          }),
          response: {
            200: z.object({ events: z.array(eventSchema), nextCursor: z.string().nullable() }),
            '4xx': errorResponseSchema,
            '5xx': errorResponseSchema,
          },
        },
      },
      async (req) => {
        const p = principalOf(req);
        const rows = await new SecurityEventRepository(deps.db).list(p.orgId, {
          kind: req.query.kind,
          since: req.query.since ? new Date(req.query.since) : undefined,
          afterId: req.query.after ? BigInt(req.query.after) : undefined,
          limit: req.query.limit,
        });
        return {
          events: rows.map((e) => ({
            id: e.id.toString(),
            occurredAt: e.occurred_at.toISOString(),
            kind: e.kind,
            severity: e.severity as 'info' | 'warning' | 'critical',
            actor: e.actor_type ? { type: e.actor_type, id: e.actor_id } : null,
            ip: e.ip,
            requestId: e.request_id,
            details: e.details,
          })),
          nextCursor: rows.length === req.query.limit ? rows[rows.length - 1]!.id.toString() : null,
        };
      },
    );
  };
}
