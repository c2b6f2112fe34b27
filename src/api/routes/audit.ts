// GET /v1/audit: the caller's organisation's audit entries, filtered, as JSON pages or exported as
// JSONL / CSV. Sensitive detail values are HMACs; filter by value with detailKey + detailValue
// (the server computes the HMAC, so a known email finds its entries without the log revealing it).
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import type { AuditEntry } from '../../audit/chain.ts';
import type { AuditLog } from '../../audit/log.ts';
import { AuditRepository } from '../../store/repositories/audit.ts';
import type { Database } from '../../store/schema.ts';
import { principalOf } from '../auth/plugin.ts';
import { errorResponseSchema } from '../schemas.ts';

const entrySchema = z.object({
  seq: z.string().describe('position in the chain (decimal)'),
  occurredAt: z.string(),
  orgId: z.string().nullable(),
  actor: z.object({ type: z.string(), id: z.string().nullable() }),
  action: z.string(),
  target: z.object({ type: z.string(), id: z.string().nullable() }).nullable(),
  outcome: z.enum(['success', 'failure', 'denied']),
  requestId: z.string().nullable(),
  details: z.record(z.string(), z.unknown()),
  prevHash: z.string(),
  hash: z.string(),
});
const errors = { '4xx': errorResponseSchema, '5xx': errorResponseSchema };
const EXPORT_MAX = 100_000;

export function auditRoutes(deps: { db: Kysely<Database>; audit: AuditLog }) {
  return async (app: FastifyInstance) => {
    const r = app.withTypeProvider<ZodTypeProvider>();
    r.get(
      '/v1/audit',
      {
        config: { permission: 'audit:read' },
        schema: {
          tags: ['audit'],
          summary: 'Audit entries of your organisation (JSON pages; format=jsonl|csv exports every match)',
          security: [{ bearer: [] }],
          querystring: z.object({
            format: z.enum(['json', 'jsonl', 'csv']).default('json'),
            after: z
              .string()
              .regex(/^[0-9]{1,19}$/)
              .optional()
              .describe('cursor: entries with a higher seq'),
            from: z.iso.datetime({ offset: true }).optional(),
            to: z.iso.datetime({ offset: true }).optional(),
            actorId: z.string().max(100).optional(),
            action: z.string().max(100).optional(),
            targetType: z.string().max(100).optional(),
            targetId: z.string().max(100).optional(),
            outcome: z.enum(['success', 'failure', 'denied']).optional(),
            requestId: z.string().max(100).optional(),
            detailKey: z
              .string()
              .regex(/^[A-Za-z0-9_]{1,64}$/)
              .optional(),
            detailValue: z.string().max(1000).optional(),
            limit: z.coerce.number().int().min(1).max(1000).default(100),
          }),
          response: {
            200: z.union([
              z.object({ entries: z.array(entrySchema), nextCursor: z.string().nullable() }),
              z.string().describe('JSONL or CSV export'),
            ]),
            ...errors,
          },
        },
      },
      async (req, reply) => {
        const p = principalOf(req);
        const q = req.query;
        const repo = new AuditRepository(deps.db);
        const base = {
          orgId: p.orgId,
          fromTime: q.from ? new Date(q.from) : undefined,
          toTime: q.to ? new Date(q.to) : undefined,
          actorId: q.actorId,
          action: q.action,
          targetType: q.targetType,
          targetId: q.targetId,
          outcome: q.outcome,
          requestId: q.requestId,
          detail:
            q.detailKey && q.detailValue !== undefined
              ? { key: q.detailKey, values: [q.detailValue, deps.audit.protect(q.detailKey, q.detailValue)] }
              : undefined,
        };
        if (q.format === 'json') {
          const rows = await repo.query({
            ...base,
            afterSeq: q.after ? BigInt(q.after) : undefined,
            limit: q.limit,
          });
          return {
            entries: rows.map(view),
            nextCursor: rows.length === q.limit ? rows[rows.length - 1]!.seq.toString() : null,
          };
        }
        const out: string[] = [];
        if (q.format === 'csv') out.push(CSV_COLUMNS.join(','));
        let after = q.after ? BigInt(q.after) : undefined;
        let total = 0;
        for (;;) {
          const rows = await repo.query({ ...base, afterSeq: after, limit: 1000 });
          for (const e of rows) out.push(q.format === 'csv' ? csvRow(e) : JSON.stringify(view(e)));
          total += rows.length;
          if (rows.length < 1000 || total >= EXPORT_MAX) break;
          after = rows[rows.length - 1]!.seq;
        }
        const text = out.length > 0 ? `${out.join('\n')}\n` : '';
        return reply
          .type(q.format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson')
          .header('content-disposition', `attachment; filename="audit.${q.format}"`)
          .serializer((s: unknown) => s as string)
          .send(text);
      },
    );
  };
}

function view(e: AuditEntry) {
  return {
    seq: e.seq.toString(),
    occurredAt: e.occurredAt.toISOString(),
    orgId: e.orgId,
    actor: { type: e.actorType, id: e.actorId },
    action: e.action,
    target: e.targetType ? { type: e.targetType, id: e.targetId } : null,
    outcome: e.outcome,
    requestId: e.requestId,
    details: e.details,
    prevHash: e.prevHash,
    hash: e.hash,
  };
}

const CSV_COLUMNS = [
  'seq',
  'occurred_at',
  'actor_type',
  'actor_id',
  'action',
  'target_type',
  'target_id',
  'outcome',
  'request_id',
  'details',
  'prev_hash',
  'hash',
];

function csvRow(e: AuditEntry): string {
  return [
    e.seq.toString(),
    e.occurredAt.toISOString(),
    e.actorType,
    e.actorId,
    e.action,
    e.targetType,
    e.targetId,
    e.outcome,
    e.requestId,
    JSON.stringify(e.details),
    e.prevHash,
    e.hash,
  ]
    .map(csvCell)
    .join(',');
}

function csvCell(v: string | null): string {
  if (v === null) return '';
  // Quote everything that needs it, and neutralise spreadsheet formulas (CSV injection).
  const s = /^[=+\-@\t\r]/.test(v) ? `'${v}` : v;
  return /[",\n\r]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}
