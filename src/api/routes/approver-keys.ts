// /v1/approver-keys: Ed25519 public keys approvers sign approvals with (private keys stay with them).
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { IdentityService } from '../../identity/service.ts';
import { principalOf, requestContext } from '../auth/plugin.ts';
import { errorResponseSchema } from '../schemas.ts';

export const approverKeySchema = z.object({
  id: z.string(),
  orgId: z.string(),
  userId: z.string(),
  publicKey: z.string().describe('Ed25519, hex'),
  label: z.string(),
  status: z.enum(['active', 'revoked']),
  createdAt: z.string(),
  revokedAt: z.string().nullable(),
});
const errors = { '4xx': errorResponseSchema, '5xx': errorResponseSchema };

export function approverKeyRoutes(deps: { identity: IdentityService }) {
  return async (app: FastifyInstance) => {
    const r = app.withTypeProvider<ZodTypeProvider>();
    r.get(
      '/v1/approver-keys',
      {
        config: { permission: 'approver_keys:read' },
        schema: {
          tags: ['approver-keys'],
          summary: 'List approver keys',
          security: [{ bearer: [] }],
          querystring: z.object({ userId: z.string().max(64).optional() }),
          response: { 200: z.object({ approverKeys: z.array(approverKeySchema) }), ...errors },
        },
      },
      async (req) => ({
        approverKeys: await deps.identity.listApproverKeys(principalOf(req), req.query.userId),
      }),
    );
    r.post(
      '/v1/approver-keys',
      {
        config: { permission: 'approver_keys:register' },
        schema: {
          tags: ['approver-keys'],
          summary:
            'Register your own Ed25519 approver key, with a proof of possession (`custos keys approver-init --org ORG --user USER`)',
          security: [{ bearer: [] }],
          body: z
            .object({
              publicKey: z.string().min(43).max(64),
              label: z.string().min(1).max(100),
              proof: z.string().regex(/^[0-9a-fA-F]{128}$/),
            })
            .strict(),
          response: { 201: approverKeySchema, ...errors },
        },
      },
      async (req, reply) => {
        const out = await deps.identity.registerApproverKey(principalOf(req), requestContext(req), req.body);
        return reply.status(201).send(out);
      },
    );
    r.delete(
      '/v1/approver-keys/:keyId',
      {
        config: { permission: 'approver_keys:revoke' },
        schema: {
          tags: ['approver-keys'],
          summary: 'Revoke an approver key',
          description:
            'The control plane refuses new votes with the key at once (votes already cast stay on their withdrawals). Each MPC node stops counting it when its operator adds the public key to the node’s trust file (`custos approve --revoke-approver --org ORG --public-key HEX --trust-file FILE`): an owner’s endorsement has no expiry, so only the nodes’ own list holds against a control plane that keeps presenting it.',
          security: [{ bearer: [] }],
          params: z.object({ keyId: z.string().min(1).max(64) }),
          response: { 200: approverKeySchema, ...errors },
        },
      },
      async (req) => deps.identity.revokeApproverKey(principalOf(req), requestContext(req), req.params.keyId),
    );
  };
}
