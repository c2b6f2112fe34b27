// /v1 custody routes: assets, vaults (+ owner-signed policy), key ceremonies, approver-key
// endorsements, wallets, addresses, balances, deposits, transactions (withdrawals), approvals,
// reconciliation. Each route declares its permission (docs/security/rbac.md) and zod schemas for
// params, query, body and response (the OpenAPI document comes from them).
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { EVENT_TYPES, type EventType, listEvents } from '../../../custody/events.ts';
import { offlineSignaturesSchema, signingRequestSchema } from '../../../custody/offline-signing.ts';
import { reconcile } from '../../../custody/reconcile.ts';
import type { Custody } from '../../../custody/runtime.ts';
import { TX_STATES } from '../../../custody/state-machine.ts';
import { TestChain } from '../../../custody/test-chain.ts';
import { CustodyError } from '../../../errors.ts';
import { DepositRepository } from '../../../store/repositories/custody.ts';
import { principalOf, requestContext } from '../../auth/plugin.ts';
import { errorResponseSchema } from '../../schemas.ts';

const errors = { '4xx': errorResponseSchema, '5xx': errorResponseSchema };
const security = [{ bearer: [] }];
const id = z.string().min(1).max(64);
const hex = (n: number) => z.string().regex(new RegExp(`^[0-9a-fA-F]{${n}}$`));
const baseUnits = z
  .string()
  .regex(/^[0-9]{1,78}$/)
  .describe('integer amount in base units');
const eventSchema = z.object({
  id: z.string().describe('evt_<seq>: unique; the de-duplication id on the bus'),
  seq: z.string().describe('audit sequence number: pass it as `after` for the next page'),
  type: z.enum(EVENT_TYPES),
  orgId: z.string(),
  environment: z.enum(['sandbox', 'production']),
  occurredAt: z.string(),
  resource: z.object({ type: z.enum(['transaction', 'deposit']), id: z.string() }),
  actorType: z.string(),
  data: z.record(z.string(), z.unknown()),
});
const schemeEnum = z.enum(['ecdsa-secp256k1', 'eddsa-ed25519', 'schnorr-bip340']);

const assetSchema = z.object({
  id: z.string(),
  network: z.string(),
  symbol: z.string(),
  decimals: z.number().int(),
  kind: z.string(),
  contract: z.string().nullable(),
  registered: z.boolean().describe('registered by the organisation (POST /v1/assets), not configured'),
  endorsed: z.boolean().describe('a registered token an owner endorsed: the MPC nodes sign its transfers'),
});
const keySchema = z.object({
  keyId: z.string(),
  vaultId: z.string(),
  scheme: z.string(),
  threshold: z.number().int(),
  parties: z.array(z.number().int()),
  publicKey: z.string(),
  xpub: z.string().nullable(),
  generation: z.number().int(),
});
const policySchema = z.object({
  v: z.literal(1),
  kind: z.literal('custody-vault-policy'),
  orgId: z.string(),
  vaultId: z.string(),
  tier: z.enum(['hot', 'warm', 'cold']),
  keyIds: z.array(z.string()),
  requiredApprovals: z.number().int(),
  issuedAt: z.string(),
});
const vaultSchema = z.object({
  id: z.string(),
  orgId: z.string(),
  name: z.string(),
  tier: z.enum(['hot', 'warm', 'cold']),
  threshold: z.number().int(),
  parties: z.number().int(),
  requiredApprovals: z.number().int(),
  keys: z.array(keySchema),
  policy: policySchema.describe('The statement an owner signs (custos approve --vault-policy)'),
  policySigned: z.boolean(),
  policySignerKey: z.string().nullable(),
  createdAt: z.string(),
});
const walletSchema = z.object({
  id: z.string(),
  orgId: z.string(),
  vaultId: z.string(),
  network: z.string(),
  name: z.string(),
  scheme: z.string(),
  keyId: z.string(),
  account: z.number().int(),
  hotLimit: z.string().nullable(),
  createdAt: z.string(),
});
const addressSchema = z.object({
  id: z.string(),
  walletId: z.string(),
  network: z.string(),
  address: z.string(),
  path: z.string().describe('non-hardened: m/<org branch>/<wallet account>/<index>'),
  index: z.number().int(),
  label: z.string().nullable(),
  createdAt: z.string(),
});
const balanceSchema = z.object({
  assetId: z.string(),
  available: z.string(),
  pending: z.string(),
  reserved: z.string(),
  total: z.string(),
});
const depositSchema = z.object({
  id: z.string(),
  walletId: z.string(),
  addressId: z.string(),
  network: z.string(),
  txId: z.string(),
  index: z.number().int(),
  assetId: z.string(),
  amount: z.string(),
  from: z.string(),
  blockNumber: z.string(),
  status: z.enum(['pending', 'credited', 'orphaned']),
  createdAt: z.string(),
  creditedAt: z.string().nullable(),
});
const approvalSchema = z.object({
  id: z.string(),
  userId: z.string(),
  approverKeyId: z.string(),
  decision: z.enum(['approve', 'reject']),
  intentHash: z.string(),
  valid: z.boolean(),
  createdAt: z.string(),
});
const transactionSchema = z.object({
  id: z.string(),
  orgId: z.string(),
  walletId: z.string(),
  vaultId: z.string(),
  network: z.string(),
  asset: z.string(),
  source: z.string(),
  destination: z.string(),
  amount: z.string(),
  feeReserved: z.string(),
  feePaid: z.string().nullable(),
  state: z.enum(TX_STATES),
  intent: z.record(z.string(), z.unknown()).describe('the canonical intent; intentHash = SHA-256 over it'),
  intentHash: z.string(),
  requiredApprovals: z.number().int(),
  approvals: z.array(approvalSchema),
  screening: z.record(z.string(), z.unknown()).nullable(),
  chainTxId: z.string().nullable(),
  confirmations: z.number().int(),
  failure: z.string().nullable(),
  expiresAt: z.string(),
  createdAt: z.string(),
  updatedAt: z.string(),
});
const signedStatementBody = z
  .object({
    publicKey: hex(64).describe("the owner's approver public key (Ed25519, hex)"),
    signature: hex(128),
  })
  .strict();
const voteBody = z
  .object({
    intentHash: hex(64),
    publicKey: hex(64).describe('your approver public key'),
    signature: hex(128).describe(
      'Ed25519 over "custos/transaction-approval/v1\\n<approve|reject>\\n<intentHash>"',
    ),
  })
  .strict();

export function custodyRoutes(custody: Custody, opts: { testChainFaucet?: boolean } = {}) {
  const svc = custody.service;
  const wd = custody.withdrawals;
  return async (app: FastifyInstance) => {
    const r = app.withTypeProvider<ZodTypeProvider>();

    // ---- assets ----
    r.get(
      '/v1/assets',
      {
        config: { permission: 'wallets:read' },
        schema: {
          tags: ['assets'],
          summary: 'List chains’ assets (native coins and tokens)',
          security,
          querystring: z.object({ network: z.string().max(64).optional() }),
          response: { 200: z.object({ assets: z.array(assetSchema) }), ...errors },
        },
      },
      async (req) => ({ assets: await svc.listAssets(principalOf(req), req.query.network) }),
    );
    r.post(
      '/v1/assets',
      {
        config: { permission: 'vaults:write' },
        schema: {
          tags: ['assets'],
          summary: 'Register a token on a configured network (admins)',
          security,
          body: z
            .object({
              network: z.string().min(1).max(64),
              symbol: z.string().regex(/^[A-Za-z0-9._-]{1,20}$/),
              decimals: z.number().int().min(0).max(36),
              contract: z.string().min(1).max(128).nullable(),
            })
            .strict(),
          response: { 201: assetSchema, ...errors },
        },
      },
      async (req, reply) =>
        reply.status(201).send(await svc.createAsset(principalOf(req), requestContext(req), req.body)),
    );

    r.get(
      '/v1/assets/:assetId/endorsement-statement',
      {
        config: { permission: 'wallets:read' },
        schema: {
          tags: ['assets'],
          summary: 'The statement an owner signs so the MPC nodes sign transfers of a registered token',
          security,
          params: z.object({ assetId: z.string().min(1).max(100) }),
          response: { 200: z.record(z.string(), z.unknown()), ...errors },
        },
      },
      async (req) => ({
        ...(await svc.assetEndorsementStatement(principalOf(req).orgId, req.params.assetId)),
      }),
    );
    r.post(
      '/v1/assets/:assetId/endorsement',
      {
        config: { permission: 'vaults:write' },
        schema: {
          tags: ['assets'],
          summary: 'Attach an owner’s signature over a registered token’s definition (what MPC nodes trust)',
          security,
          params: z.object({ assetId: z.string().min(1).max(100) }),
          body: signedStatementBody,
          response: { 200: assetSchema, ...errors },
        },
      },
      async (req) =>
        svc.endorseAsset(principalOf(req), requestContext(req), req.params.assetId, lower(req.body)),
    );

    // ---- vaults ----
    r.get(
      '/v1/vaults',
      {
        config: { permission: 'vaults:read' },
        schema: {
          tags: ['vaults'],
          summary: 'List vaults',
          security,
          response: { 200: z.object({ vaults: z.array(vaultSchema) }), ...errors },
        },
      },
      async (req) => ({ vaults: await svc.listVaults(principalOf(req)) }),
    );
    r.post(
      '/v1/vaults',
      {
        // Creating a vault runs its key ceremony (DKG): security officers and owners only.
        config: { permission: 'keys:ceremony' },
        schema: {
          tags: ['vaults'],
          summary:
            'Create a vault: one threshold key per signing scheme (DKG on the MPC nodes; a cold vault takes the public halves of keys made on an offline cluster)',
          security,
          body: z
            .object({
              name: z.string().min(1).max(100),
              tier: z.enum(['hot', 'warm', 'cold']),
              threshold: z.number().int().min(1).max(10).default(2),
              parties: z.number().int().min(1).max(10).default(3),
              requiredApprovals: z.number().int().min(0).max(10).optional(),
              schemes: z.array(schemeEnum).min(1).max(3).optional(),
              offlineKeys: z
                .array(
                  z
                    .object({
                      keyId: z.string().min(1).max(80),
                      scheme: schemeEnum,
                      publicKey: z.string().regex(/^(?:[0-9a-fA-F]{2}){32,33}$/),
                      chainCode: z.string().regex(/^[0-9a-fA-F]{64}$/),
                      threshold: z.number().int().min(1).max(10),
                      parties: z.array(z.number().int().min(1).max(255)).min(1).max(10),
                    })
                    .strict(),
                )
                .min(1)
                .max(3)
                .optional()
                .describe(
                  'Cold vaults only (and required for them): `custos mpc keygen --json` output of the offline cluster — keyId, scheme, publicKey, chainCode, threshold, parties (its committee). No DKG runs on line and the online nodes never hold these keys.',
                ),
            })
            .strict(),
          response: { 201: vaultSchema, ...errors },
        },
      },
      async (req, reply) =>
        reply.status(201).send(await svc.createVault(principalOf(req), requestContext(req), req.body)),
    );
    r.get(
      '/v1/vaults/:vaultId',
      {
        config: { permission: 'vaults:read' },
        schema: {
          tags: ['vaults'],
          summary: 'Get a vault',
          security,
          params: z.object({ vaultId: id }),
          response: { 200: vaultSchema, ...errors },
        },
      },
      async (req) => svc.getVault(principalOf(req), req.params.vaultId),
    );
    r.post(
      '/v1/vaults/:vaultId/policy-signature',
      {
        config: { permission: 'vaults:write' },
        schema: {
          tags: ['vaults'],
          summary: 'Attach an owner’s signature over the vault policy (what MPC nodes trust)',
          security,
          params: z.object({ vaultId: id }),
          body: signedStatementBody,
          response: { 200: vaultSchema, ...errors },
        },
      },
      async (req) =>
        svc.signVaultPolicy(principalOf(req), requestContext(req), req.params.vaultId, lower(req.body)),
    );

    // ---- approver endorsements (owner-signed) ----
    r.get(
      '/v1/approver-keys/:keyId/endorsement-statement',
      {
        config: { permission: 'approver_keys:read' },
        schema: {
          tags: ['approver-keys'],
          summary: 'The statement an owner signs to endorse this approver key',
          security,
          params: z.object({ keyId: id }),
          response: { 200: z.record(z.string(), z.unknown()), ...errors },
        },
      },
      async (req) => ({ ...(await svc.endorsementStatement(principalOf(req).orgId, req.params.keyId)) }),
    );
    r.post(
      '/v1/approver-keys/:keyId/endorsement',
      {
        config: { permission: 'approver_keys:register' },
        schema: {
          tags: ['approver-keys'],
          summary: 'Attach an owner’s endorsement of an approver key (MPC nodes count only endorsed keys)',
          security,
          params: z.object({ keyId: id }),
          body: signedStatementBody,
          response: {
            200: z.object({
              approverKeyId: z.string(),
              statement: z.record(z.string(), z.unknown()),
              ownerPublicKey: z.string(),
            }),
            ...errors,
          },
        },
      },
      async (req) => {
        const out = await svc.endorseApproverKey(
          principalOf(req),
          requestContext(req),
          req.params.keyId,
          lower(req.body),
        );
        return { ...out, statement: { ...out.statement } };
      },
    );

    // ---- keys (ceremonies) ----
    r.get(
      '/v1/keys',
      {
        config: { permission: 'keys:read' },
        schema: {
          tags: ['keys'],
          summary: 'List threshold keys',
          security,
          response: { 200: z.object({ keys: z.array(keySchema) }), ...errors },
        },
      },
      async (req) => ({ keys: await svc.listKeys(principalOf(req)) }),
    );
    r.post(
      '/v1/keys',
      {
        config: { permission: 'keys:ceremony' },
        schema: {
          tags: ['keys'],
          summary:
            'Key ceremony: create a threshold key for a vault (DKG); the vault policy must be re-signed',
          security,
          body: z.object({ vaultId: id, scheme: schemeEnum }).strict(),
          response: { 201: keySchema, ...errors },
        },
      },
      async (req, reply) =>
        reply.status(201).send(await svc.createKey(principalOf(req), requestContext(req), req.body)),
    );
    r.post(
      '/v1/keys/:keyId/refresh',
      {
        config: { permission: 'keys:ceremony' },
        schema: {
          tags: ['keys'],
          summary: 'Key ceremony: refresh the shares (same public key; old shares become useless)',
          security,
          params: z.object({ keyId: id }),
          response: { 200: keySchema, ...errors },
        },
      },
      async (req) => svc.refreshKey(principalOf(req), requestContext(req), req.params.keyId),
    );
    r.post(
      '/v1/keys/:keyId/reshare',
      {
        config: { permission: 'keys:ceremony' },
        schema: {
          tags: ['keys'],
          summary: 'Key ceremony: move the key to a new committee and/or threshold (same public key)',
          security,
          params: z.object({ keyId: id }),
          body: z
            .object({
              threshold: z.number().int().min(1).max(10),
              committee: z.array(z.number().int().min(1).max(255)).min(1).max(10),
            })
            .strict(),
          response: { 200: keySchema, ...errors },
        },
      },
      async (req) => svc.reshareKey(principalOf(req), requestContext(req), req.params.keyId, req.body),
    );

    // ---- wallets and addresses ----
    r.get(
      '/v1/wallets',
      {
        config: { permission: 'wallets:read' },
        schema: {
          tags: ['wallets'],
          summary: 'List wallets',
          security,
          querystring: z.object({ vaultId: id.optional() }),
          response: { 200: z.object({ wallets: z.array(walletSchema) }), ...errors },
        },
      },
      async (req) => ({ wallets: await svc.listWallets(principalOf(req), req.query.vaultId) }),
    );
    r.post(
      '/v1/wallets',
      {
        config: { permission: 'wallets:write' },
        schema: {
          tags: ['wallets'],
          summary: 'Create a wallet: a vault’s presence on one network',
          security,
          body: z
            .object({
              vaultId: id,
              network: z.string().min(1).max(64),
              name: z.string().min(1).max(100).optional(),
              hotLimit: baseUnits.optional().describe('hot vaults: automatic withdrawals up to this amount'),
            })
            .strict(),
          response: { 201: walletSchema, ...errors },
        },
      },
      async (req, reply) =>
        reply.status(201).send(
          await svc.createWallet(principalOf(req), requestContext(req), {
            ...req.body,
            hotLimit: req.body.hotLimit === undefined ? undefined : BigInt(req.body.hotLimit),
          }),
        ),
    );
    r.get(
      '/v1/wallets/:walletId',
      {
        config: { permission: 'wallets:read' },
        schema: {
          tags: ['wallets'],
          summary: 'Get a wallet with its balances',
          security,
          params: z.object({ walletId: id }),
          response: { 200: walletSchema.extend({ balances: z.array(balanceSchema) }), ...errors },
        },
      },
      async (req) => {
        const p = principalOf(req);
        const w = (await svc.listWallets(p)).find((x) => x.id === req.params.walletId);
        if (!w) throw new CustodyError('CUSTOS_NOT_FOUND', 'wallet not found');
        return { ...w, balances: await svc.walletBalances(p, w.id) };
      },
    );
    r.get(
      '/v1/wallets/:walletId/balances',
      {
        config: { permission: 'wallets:read' },
        schema: {
          tags: ['wallets'],
          summary: 'Ledger balances per asset: available, pending (deposits), reserved (withdrawals)',
          security,
          params: z.object({ walletId: id }),
          response: { 200: z.object({ balances: z.array(balanceSchema) }), ...errors },
        },
      },
      async (req) => ({ balances: await svc.walletBalances(principalOf(req), req.params.walletId) }),
    );
    r.get(
      '/v1/wallets/:walletId/addresses',
      {
        config: { permission: 'wallets:read' },
        schema: {
          tags: ['wallets'],
          summary: 'List the wallet’s addresses',
          security,
          params: z.object({ walletId: id }),
          response: { 200: z.object({ addresses: z.array(addressSchema) }), ...errors },
        },
      },
      async (req) => ({ addresses: await svc.listAddresses(principalOf(req), req.params.walletId) }),
    );
    r.post(
      '/v1/wallets/:walletId/addresses',
      {
        config: { permission: 'wallets:write' },
        schema: {
          tags: ['wallets'],
          summary: 'A fresh address (next non-hardened HD child of the vault key) with its derivation path',
          security,
          params: z.object({ walletId: id }),
          body: z
            .object({ label: z.string().max(100).optional() })
            .strict()
            .optional(),
          response: { 201: addressSchema, ...errors },
        },
      },
      async (req, reply) =>
        reply
          .status(201)
          .send(
            await svc.createAddress(
              principalOf(req),
              requestContext(req),
              req.params.walletId,
              req.body ?? {},
            ),
          ),
    );
    r.get(
      '/v1/deposits',
      {
        config: { permission: 'wallets:read' },
        schema: {
          tags: ['wallets'],
          summary: 'Deposits seen on chain (pending until the confirmation depth, then credited)',
          security,
          querystring: z.object({ walletId: id.optional() }),
          response: { 200: z.object({ deposits: z.array(depositSchema) }), ...errors },
        },
      },
      async (req) => {
        const rows = await new DepositRepository(svc.db).list(principalOf(req), req.query.walletId);
        return {
          deposits: rows.map((d) => ({
            id: d.id,
            walletId: d.wallet_id,
            addressId: d.address_id,
            network: d.network,
            txId: d.tx_id,
            index: d.idx,
            assetId: d.asset_id,
            amount: d.amount.toString(),
            from: d.from_address,
            blockNumber: d.block_number.toString(),
            status: d.status as 'pending' | 'credited',
            createdAt: d.created_at.toISOString(),
            creditedAt: d.credited_at?.toISOString() ?? null,
          })),
        };
      },
    );

    // ---- transactions (withdrawals) ----
    r.post(
      '/v1/transactions',
      {
        config: { permission: 'transactions:create' },
        schema: {
          tags: ['transactions'],
          summary:
            'Create a withdrawal (Idempotency-Key required): funds are reserved at once, then screening decides',
          security,
          headers: z.object({ 'idempotency-key': z.string().min(1).max(255).optional() }).passthrough(),
          body: z
            .object({
              walletId: id,
              asset: z.string().min(1).max(20).describe('symbol, e.g. TST'),
              destination: z.string().min(1).max(128),
              amount: baseUnits,
              feePolicy: z
                .object({ speed: z.enum(['normal', 'fast']).optional() })
                .strict()
                .optional(),
              memo: z.string().max(200).optional(),
              expiresInSeconds: z
                .number()
                .int()
                .min(60)
                .max(7 * 24 * 3600)
                .optional(),
            })
            .strict(),
          response: { 201: transactionSchema, ...errors },
        },
      },
      async (req, reply) => {
        const key = req.headers['idempotency-key'];
        const out = await wd.create(
          principalOf(req),
          requestContext(req),
          typeof key === 'string' ? key : undefined,
          req.body,
        );
        if (out.replayed) reply.header('idempotent-replayed', 'true');
        return reply.status(out.status).send(out.body);
      },
    );
    r.get(
      '/v1/transactions',
      {
        config: { permission: 'transactions:read' },
        schema: {
          tags: ['transactions'],
          summary: 'List transactions (newest first)',
          security,
          querystring: z.object({
            state: z.enum(TX_STATES).optional(),
            walletId: id.optional(),
            limit: z.coerce.number().int().min(1).max(500).optional(),
          }),
          response: { 200: z.object({ transactions: z.array(transactionSchema) }), ...errors },
        },
      },
      async (req) => ({ transactions: await wd.list(principalOf(req), req.query) }),
    );
    r.get(
      '/v1/events',
      {
        config: { permission: 'transactions:read' },
        schema: {
          tags: ['events'],
          summary:
            'Custody events (withdrawal state changes, approvals, deposits) in commit order, from the audit log; page with `after`',
          security,
          querystring: z
            .object({
              after: z
                .string()
                .regex(/^[0-9]{1,19}$/)
                .optional()
                .describe('the `seq` of the last event seen (exclusive)'),
              limit: z.coerce.number().int().min(1).max(1000).optional(),
              type: z
                .string()
                .max(1000)
                .optional()
                .describe('comma-separated event types, e.g. transaction.completed,deposit.credited'),
              resourceId: id.optional().describe('only events about this transaction or deposit'),
            })
            .strict(),
          response: {
            200: z.object({
              events: z.array(eventSchema),
              next: z
                .string()
                .nullable()
                .describe('`after` for the next page; null when this page is not full'),
            }),
            ...errors,
          },
        },
      },
      async (req) => {
        const p = principalOf(req);
        const types = req.query.type?.split(',').map((t) => t.trim());
        const known = new Set<string>(EVENT_TYPES);
        const unknown = types?.filter((t) => !known.has(t));
        if (unknown?.length) {
          throw new CustodyError('CUSTOS_VALIDATION', `unknown event type: ${unknown.join(', ')}`, {
            details: { known: EVENT_TYPES },
          });
        }
        const limit = req.query.limit ?? 100;
        const events = await listEvents(svc.db, {
          orgId: p.orgId,
          environment: p.environment,
          limit,
          ...(req.query.after ? { after: BigInt(req.query.after) } : {}),
          ...(types ? { types: types as EventType[] } : {}),
          ...(req.query.resourceId ? { resourceId: req.query.resourceId } : {}),
        });
        return { events, next: events.length === limit ? events[events.length - 1]!.seq : null };
      },
    );
    r.get(
      '/v1/transactions/:txId',
      {
        config: { permission: 'transactions:read' },
        schema: {
          tags: ['transactions'],
          summary: 'Get a transaction with its intent, intentHash and approvals',
          security,
          params: z.object({ txId: id }),
          response: { 200: transactionSchema, ...errors },
        },
      },
      async (req) => wd.get(principalOf(req), req.params.txId),
    );
    r.post(
      '/v1/transactions/:txId/approvals',
      {
        config: { permission: 'transactions:approve' },
        schema: {
          tags: ['transactions'],
          summary:
            'Approve with an Ed25519 signature over the intentHash (`custos approve <txId> --key FILE`)',
          security,
          params: z.object({ txId: id }),
          body: voteBody,
          response: { 201: transactionSchema, ...errors },
        },
      },
      async (req, reply) =>
        reply
          .status(201)
          .send(
            await wd.vote(principalOf(req), requestContext(req), req.params.txId, 'approve', lower(req.body)),
          ),
    );
    r.post(
      '/v1/transactions/:txId/rejections',
      {
        config: { permission: 'transactions:approve' },
        schema: {
          tags: ['transactions'],
          summary: 'Reject with an Ed25519 signature (`custos approve <txId> --key FILE --reject`)',
          security,
          params: z.object({ txId: id }),
          body: voteBody,
          response: { 201: transactionSchema, ...errors },
        },
      },
      async (req, reply) =>
        reply
          .status(201)
          .send(
            await wd.vote(principalOf(req), requestContext(req), req.params.txId, 'reject', lower(req.body)),
          ),
    );
    r.get(
      '/v1/transactions/:txId/signing-request',
      {
        config: { permission: 'transactions:sign_offline' },
        schema: {
          tags: ['transactions'],
          summary:
            'Cold vault: the offline signing request of a withdrawal in pending_signature (`custos cold export`), for `custos offline-signer sign` on the air-gapped host; each export is audited',
          security,
          params: z.object({ txId: id }),
          response: { 200: signingRequestSchema, ...errors },
        },
      },
      async (req) => wd.signingRequest(principalOf(req), requestContext(req), req.params.txId),
    );
    r.post(
      '/v1/transactions/:txId/signatures',
      {
        config: { permission: 'transactions:sign_offline' },
        schema: {
          tags: ['transactions'],
          summary:
            "Cold vault: import the offline cluster's signatures (`custos cold import`); checked against the transaction's digests and source key, then broadcast",
          security,
          params: z.object({ txId: id }),
          body: offlineSignaturesSchema,
          response: { 200: transactionSchema, ...errors },
        },
      },
      async (req) => wd.importSignatures(principalOf(req), requestContext(req), req.params.txId, req.body),
    );
    r.post(
      '/v1/transactions/:txId/cancel',
      {
        config: { permission: 'transactions:cancel' },
        schema: {
          tags: ['transactions'],
          summary:
            'Cancel a withdrawal that is not yet signing (a cold-vault one also while it waits for offline signatures)',
          security,
          params: z.object({ txId: id }),
          response: { 200: transactionSchema, ...errors },
        },
      },
      async (req) => wd.cancel(principalOf(req), requestContext(req), req.params.txId),
    );

    // ---- the test chain's faucet (development and test only) ----
    if (opts.testChainFaucet) {
      r.post(
        '/v1/dev/test-chain/faucet',
        {
          config: { permission: 'wallets:write' },
          schema: {
            tags: ['dev'],
            summary: 'Test chain only (not in production): send coins from the faucet to an address',
            security,
            body: z
              .object({
                network: z.string().min(1).max(64).default('test'),
                address: z.string().min(1).max(128),
                asset: z.string().min(1).max(20).default('TST'),
                amount: baseUnits,
              })
              .strict(),
            response: { 201: z.object({ txId: z.string() }), ...errors },
          },
        },
        async (req, reply) => {
          const chain = svc.chain(req.body.network);
          if (!(chain instanceof TestChain)) {
            throw new CustodyError('CUSTOS_CHAIN_UNSUPPORTED', `${req.body.network} is not a test chain`);
          }
          const txId = chain.faucet(req.body.address, req.body.asset, BigInt(req.body.amount));
          return reply.status(201).send({ txId });
        },
      );
    }

    // ---- reconciliation ----
    r.get(
      '/v1/reconciliation',
      {
        config: { permission: 'reports:read' },
        schema: {
          tags: ['reports'],
          summary: 'Ledger integrity and ledger vs on-chain balances per address',
          security,
          response: {
            200: z.object({
              checkedAt: z.string(),
              addresses: z.number().int(),
              differences: z.array(
                z.object({
                  network: z.string(),
                  address: z.string(),
                  asset: z.string(),
                  ledger: z.string(),
                  chain: z.string(),
                  difference: z.string(),
                }),
              ),
              ledger: z.object({
                ok: z.boolean(),
                accounts: z.number().int(),
                mismatched: z.array(z.string()),
                unbalancedAssets: z.array(z.string()),
              }),
            }),
            ...errors,
          },
        },
      },
      async (req) => reconcile(svc, principalOf(req).orgId, principalOf(req).environment),
    );
  };
}

function lower<T extends { publicKey: string; signature: string }>(b: T): T {
  return { ...b, publicKey: b.publicKey.toLowerCase(), signature: b.signature.toLowerCase() };
}
