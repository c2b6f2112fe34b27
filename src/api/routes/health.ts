// Liveness (/healthz: the process answers) and readiness (/readyz: every configured dependency
// answers; 503 naming the failing part otherwise).
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { errorResponseSchema } from '../schemas.ts';

export interface ReadinessCheck {
  name: string;
  check(): Promise<void>;
}

const READY_TIMEOUT_MS = 2000;

export async function healthRoutes(
  app: FastifyInstance,
  opts: { version: string; readiness: ReadinessCheck[] },
): Promise<void> {
  const r = app.withTypeProvider<ZodTypeProvider>();
  r.get(
    '/healthz',
    {
      schema: {
        tags: ['health'],
        summary: 'Liveness: the process is up',
        response: { 200: z.object({ status: z.literal('ok'), version: z.string() }) },
      },
      logLevel: 'warn',
    },
    async () => ({ status: 'ok' as const, version: opts.version }),
  );

  const checkSchema = z.object({
    name: z.string(),
    ok: z.boolean(),
    latencyMs: z.number(),
    error: z.string().optional(),
  });
  r.get(
    '/readyz',
    {
      schema: {
        tags: ['health'],
        summary: 'Readiness: database, bus and Redis (when configured) answer',
        response: {
          200: z.object({ status: z.literal('ready'), checks: z.array(checkSchema) }),
          503: z.union([
            z.object({
              status: z.literal('not_ready'),
              failing: z.array(z.string()),
              checks: z.array(checkSchema),
              error: z.object({ code: z.literal('CUSTOS_NOT_READY'), message: z.string() }),
            }),
            errorResponseSchema,
          ]),
        },
      },
      logLevel: 'warn',
    },
    async (_req, reply) => {
      const checks = await Promise.all(
        opts.readiness.map(async (c) => {
          const t0 = performance.now();
          try {
            await withTimeout(c.check(), READY_TIMEOUT_MS);
            return { name: c.name, ok: true, latencyMs: round(performance.now() - t0) };
          } catch (e) {
            const code = (e as { code?: unknown }).code;
            return {
              name: c.name,
              ok: false,
              latencyMs: round(performance.now() - t0),
              error: typeof code === 'string' && code.startsWith('CUSTOS_') ? code : 'unavailable',
            };
          }
        }),
      );
      const failing = checks.filter((c) => !c.ok).map((c) => c.name);
      if (failing.length === 0) return { status: 'ready' as const, checks };
      return reply.status(503).send({
        status: 'not_ready' as const,
        failing,
        checks,
        error: { code: 'CUSTOS_NOT_READY' as const, message: `not ready: ${failing.join(', ')}` },
      });
    },
  );
}

function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([
    p,
    new Promise<T>((_, rej) => {
      timer = setTimeout(() => rej(Object.assign(new Error('timeout'), { code: 'CUSTOS_NOT_READY' })), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}
