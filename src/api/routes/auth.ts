// /v1/auth/* (login, refresh, logout, TOTP enrolment) and /.well-known/jwks.json.
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { IdentityService } from '../../identity/service.ts';
import type { TokenService } from '../../identity/tokens.ts';
import { principalOf, requestContext } from '../auth/plugin.ts';
import { errorResponseSchema } from '../schemas.ts';

const tokenPair = z.object({
  accessToken: z.string(),
  tokenType: z.literal('Bearer'),
  expiresIn: z.number().int().describe('seconds'),
  refreshToken: z.string().describe('single use: each refresh returns a new one'),
  refreshExpiresIn: z.number().int(),
  mfa: z.boolean().describe('false: the role needs TOTP and only enrolment is allowed until done'),
});

const errors = { '4xx': errorResponseSchema, '5xx': errorResponseSchema };

export function authRoutes(deps: { identity: IdentityService; tokens: TokenService }) {
  return async (app: FastifyInstance) => {
    const r = app.withTypeProvider<ZodTypeProvider>();

    r.post(
      '/v1/auth/login',
      {
        config: { public: true },
        schema: {
          tags: ['auth'],
          summary: 'Sign in with email, password and (for owner/admin/security_officer/approver) a TOTP code',
          body: z
            .object({
              email: z.string().min(3).max(320),
              password: z.string().min(1).max(1024),
              totp: z
                .string()
                .regex(/^[0-9]{6}$/)
                .optional(),
              recoveryCode: z.string().min(1).max(64).optional(),
              environment: z.enum(['sandbox', 'production']).optional(),
            })
            .strict(),
          response: { 200: tokenPair, ...errors },
        },
      },
      async (req) => deps.identity.login(requestContext(req), req.body),
    );

    r.post(
      '/v1/auth/refresh',
      {
        config: { public: true },
        schema: {
          tags: ['auth'],
          summary:
            'Exchange a refresh token for a new pair (the old one dies; reusing it revokes the session)',
          body: z.object({ refreshToken: z.string().min(1).max(512) }).strict(),
          response: { 200: tokenPair, ...errors },
        },
      },
      async (req) => deps.identity.refresh(requestContext(req), req.body.refreshToken),
    );

    r.post(
      '/v1/auth/logout',
      {
        config: { permission: 'authenticated', allowPendingMfa: true },
        schema: {
          tags: ['auth'],
          summary: 'End this session: its refresh tokens are revoked',
          security: [{ bearer: [] }],
          response: { 200: z.object({ revoked: z.number().int() }), ...errors },
        },
      },
      async (req) => deps.identity.logout(principalOf(req), requestContext(req)),
    );

    r.post(
      '/v1/auth/totp/enroll',
      {
        config: { permission: 'authenticated', allowPendingMfa: true },
        schema: {
          tags: ['auth'],
          summary: 'Start TOTP enrolment: an otpauth URI and its QR code (confirm with /v1/auth/totp/verify)',
          security: [{ bearer: [] }],
          response: {
            200: z.object({
              otpauthUri: z.string(),
              qrCode: z.string().describe('data:image/png;base64 QR code of otpauthUri'),
              secret: z.string().describe('base32, for manual entry; shown only now'),
            }),
            ...errors,
          },
        },
      },
      async (req) => deps.identity.totpEnroll(principalOf(req), requestContext(req)),
    );

    r.post(
      '/v1/auth/totp/verify',
      {
        config: { permission: 'authenticated', allowPendingMfa: true },
        schema: {
          tags: ['auth'],
          summary: 'Confirm TOTP enrolment with a first code: recovery codes (shown once) and a full session',
          security: [{ bearer: [] }],
          body: z.object({ code: z.string().regex(/^[0-9]{6}$/) }).strict(),
          response: { 200: z.object({ recoveryCodes: z.array(z.string()), tokens: tokenPair }), ...errors },
        },
      },
      async (req) => deps.identity.totpVerify(principalOf(req), requestContext(req), req.body.code),
    );

    r.get(
      '/.well-known/jwks.json',
      {
        config: { public: true },
        schema: {
          tags: ['auth'],
          summary: 'Public keys that verify access tokens (current and overlapping after a rotation)',
          response: { 200: z.object({ keys: z.array(z.record(z.string(), z.unknown())) }), ...errors },
        },
      },
      async (_req, reply) => {
        reply.header('cache-control', 'public, max-age=60');
        return deps.tokens.jwks() as { keys: Record<string, unknown>[] };
      },
    );
  };
}
