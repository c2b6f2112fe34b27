// Withdrawals: intent → screening → approvals → signing → broadcast → confirmations → settlement.
//
//   create   one DB transaction: idempotency record, source address chosen and funds reserved
//            (available → reserved, the account rows locked FOR UPDATE so concurrent withdrawals can
//            never overdraw), the canonical intent and its intentHash, created → screening →
//            pending_approval | approved | rejected, each transition audited with its actor.
//   approve  an Ed25519 signature over intentHash by an approver key of the caller (never the
//            initiator); when the vault's required approvals are in, → approved by itself.
//   process  (worker) approved → signing: the chain adapter builds the transaction; the coordinator
//            asks the MPC nodes to sign with the evidence attached (intent, unsigned transaction,
//            owner-signed vault policy, approvals with their owner endorsements) — every node checks
//            it itself; → broadcast. A cold vault's withdrawal instead waits in pending_signature
//            for the offline cluster: signingRequest exports the same evidence, importSignatures
//            checks what comes back against the digests and the source key (→ signing → broadcast).
//   advance  (chain watcher) broadcast → confirming → completed; the reservation is settled.
// Terminal failures (rejected, cancelled, expired, failed) give the reservation back.
import { createHash, randomUUID } from 'node:crypto';
import type { Transaction } from 'kysely';
import type { AuditActor, AuditInput } from '../audit/log.ts';
import { withNonceTransaction } from '../chains/evm/nonce-store-pg.ts';
import type { ChainSignature, UnsignedTransaction } from '../chains/types.ts';
import type { SchemeName } from '../crypto/threshold.ts';
import { CustodyError, CustosError, NotFoundError, ValidationError } from '../errors.ts';
import type { Principal, RequestContext } from '../identity/principal.ts';
import { assertNotInitiator } from '../identity/rbac.ts';
import {
  approvalMessage,
  CUSTODY_EVIDENCE_KIND,
  type CustodyEvidence,
  canonicalJson,
  type Decision,
  type EndorsementStatement,
  fromJsonSafe,
  type Intent,
  intentHash,
  toJsonSafe,
  type VaultPolicyStatement,
  verifyEd25519,
} from '../mpc/authorizers/custody-evidence.ts';
import { AuditRepository } from '../store/repositories/audit.ts';
import {
  type AddressRow,
  type ApprovalRow,
  EndorsementRepository,
  type Scope,
  scopeOf,
  TransactionRepository,
  type TransactionRow,
  type VaultRow,
  WalletRepository,
} from '../store/repositories/custody.ts';
import { IdempotencyRepository } from '../store/repositories/idempotency.ts';
import { ApproverKeyRepository } from '../store/repositories/identity.ts';
import type { Database } from '../store/schema.ts';
import { addressAccount, Ledger, LedgerOverdraw, orgAccount } from './ledger.ts';
import {
  buildSigningRequest,
  type OfflineSignatures,
  type SigningRequest,
  verifyOfflineSignatures,
} from './offline-signing.ts';
import { screenWithdrawal } from './policy.ts';
import { assetId, type CustodyService } from './service.ts';
import { assertTransition, RELEASING, type TxState } from './state-machine.ts';

/** The audit action of a cold-vault signing request's export. */
export const SIGNING_REQUEST_ACTION = 'transaction.signing_request.export';

export const WORKER: AuditActor = { type: 'service', id: 'custody-worker' };
export const WATCHER: AuditActor = { type: 'service', id: 'chain-watcher' };

export interface CreateWithdrawalInput {
  walletId: string;
  asset: string;
  destination: string;
  amount: string;
  feePolicy?: { speed?: 'normal' | 'fast' | undefined } | undefined;
  memo?: string | undefined;
  expiresInSeconds?: number | undefined;
}

export interface ApprovalView {
  id: string;
  userId: string;
  approverKeyId: string;
  decision: Decision;
  intentHash: string;
  valid: boolean;
  createdAt: string;
}

export interface TransactionView {
  id: string;
  orgId: string;
  walletId: string;
  vaultId: string;
  network: string;
  asset: string;
  source: string;
  destination: string;
  amount: string;
  feeReserved: string;
  feePaid: string | null;
  state: TxState;
  intent: Intent;
  intentHash: string;
  requiredApprovals: number;
  approvals: ApprovalView[];
  screening: Record<string, unknown> | null;
  chainTxId: string | null;
  confirmations: number;
  failure: string | null;
  expiresAt: string;
  createdAt: string;
  updatedAt: string;
}

export interface WithdrawalSettings {
  /** Default intent lifetime. */
  defaultTtlSeconds: number;
  idempotencyTtlMs: number;
  /** MPC signing timeout per attempt. */
  signTimeoutMs?: number;
}

const sha256hex = (s: string): string => createHash('sha256').update(s).digest('hex');

function notFound(): NotFoundError {
  return new NotFoundError('CUSTOS_NOT_FOUND', 'transaction not found');
}

export class WithdrawalService {
  readonly #ledger = new Ledger();
  readonly #inflight = new Set<string>();
  readonly #idle = new Set<() => void>();
  #stopped = false;

  constructor(
    private readonly custody: CustodyService,
    private readonly settings: WithdrawalSettings,
  ) {}

  private get db() {
    return this.custody.db;
  }
  private get audit() {
    return this.custody.deps.audit;
  }
  private get log() {
    return this.custody.deps.logger;
  }

  // ---------- create ----------

  async create(
    p: Principal,
    ctx: RequestContext,
    idempotencyKey: string | undefined,
    input: CreateWithdrawalInput,
  ): Promise<{ status: number; body: TransactionView; replayed: boolean }> {
    if (!idempotencyKey || !/^[\x21-\x7e]{1,255}$/.test(idempotencyKey)) {
      throw new ValidationError('CUSTOS_IDEMPOTENCY_KEY_REQUIRED', 'Idempotency-Key header is required');
    }
    const scope = `org:${p.orgId}:${p.environment}:POST /v1/transactions`;
    const requestHash = sha256hex(canonicalJson(input));
    const replay = async () => {
      const hit = await new IdempotencyRepository(this.db).lookup(scope, idempotencyKey, requestHash);
      if (hit.kind === 'mismatch') {
        throw new CustosError(
          'CUSTOS_IDEMPOTENCY_MISMATCH',
          'this Idempotency-Key was used with a different body',
        );
      }
      return hit.kind === 'hit'
        ? { status: hit.record.statusCode, body: hit.record.responseBody as TransactionView, replayed: true }
        : undefined;
    };
    const earlier = await replay();
    if (earlier) return earlier;

    const w = await this.custody.walletRow(p, input.walletId);
    const chain = this.custody.chain(w.network);
    const asset = await this.custody.asset(assetId(w.network, input.asset), p.orgId);
    if (asset.org_id !== null && !asset.endorsement_signature) {
      throw new CustodyError(
        'CUSTOS_ASSET_NOT_ENDORSED',
        `asset ${asset.id} has no owner endorsement yet: the MPC nodes would not sign (POST /v1/assets/${asset.id}/endorsement)`,
      );
    }
    const chainAsset = this.custody.chainAsset(asset);
    const dest = chain.validateAddress(input.destination);
    if (!dest.valid) {
      throw new ValidationError('CUSTOS_CHAIN_INVALID_ADDRESS', `destination: ${dest.reason}`, {
        details: { field: 'destination' },
      });
    }
    if (!/^[0-9]{1,78}$/.test(input.amount) || BigInt(input.amount) <= 0n) {
      throw new ValidationError('CUSTOS_VALIDATION', 'amount must be a positive integer in base units');
    }
    const amount = BigInt(input.amount);
    const native = chain.assets.find((a) => a.kind === 'native') ?? chainAsset;
    const nativeId = assetId(w.network, native.symbol);
    const addresses = await new WalletRepository(this.db).addresses(w.id);
    if (addresses.length === 0)
      throw new CustodyError('CUSTOS_INSUFFICIENT_FUNDS', 'the wallet has no address');
    const fee = await chain.estimateFee({
      from: addresses[0]!.address,
      to: dest.address!,
      asset: chainAsset,
      amount,
      fee: { speed: input.feePolicy?.speed ?? 'normal' },
    });
    const maxFee = fee.max;
    const ttl = Math.min(input.expiresInSeconds ?? this.settings.defaultTtlSeconds, 7 * 24 * 3600);
    const vault = await this.custody.vaultRow(p, w.vault_id);
    const now = new Date();
    const id = `tx_${randomUUID().replaceAll('-', '').slice(0, 24)}`;

    // Reserve from the first address (by index) whose available balance covers amount (+ fee).
    const accountsOf = (a: AddressRow) => {
      const acct = (k: string) => addressAccount(p.orgId, k, 'available', w.id, a.id);
      return nativeId === asset.id ? [acct(asset.id)] : [acct(asset.id), acct(nativeId)];
    };
    const covers = ([have, haveNative]: bigint[]) =>
      nativeId === asset.id ? have! >= amount + maxFee : have! >= amount && haveNative! >= maxFee;
    // Fast path: pick the address by an unlocked read, and let the reserving ledger entry itself
    // take the row locks and refuse to go below zero (LedgerOverdraw) — the hot account rows are
    // then locked only for that entry, the audit insert and the commit, not for the whole
    // transaction. If the read was stale, the slow path below locks and checks address by address.
    const peeked = await this.#ledger.peekBalances(this.db, addresses.flatMap(accountsOf));
    const per = peeked.length / addresses.length;
    const hint = addresses.find((_, i) => covers(peeked.slice(i * per, (i + 1) * per)));
    const attempt = (pick: (trx: Transaction<Database>) => Promise<AddressRow | undefined>) =>
      this.custody.write(async (trx) => {
        const source = await pick(trx);
        if (!source) {
          throw new CustodyError(
            'CUSTOS_INSUFFICIENT_FUNDS',
            `no address of wallet ${w.id} has ${amount} ${asset.symbol} plus a fee of up to ${maxFee} available`,
            { details: { amount: amount.toString(), maxFee: maxFee.toString() } },
          );
        }
        const intent: Intent = {
          v: 1,
          type: 'withdrawal',
          transactionId: id,
          orgId: p.orgId,
          vaultId: vault.id,
          walletId: w.id,
          network: w.network,
          asset: { symbol: asset.symbol, decimals: asset.decimals, contract: asset.contract },
          source: { address: source.address, path: source.path },
          destination: dest.address!,
          amount: amount.toString(),
          feePolicy: { speed: input.feePolicy?.speed ?? 'normal', maxFee: maxFee.toString() },
          memo: input.memo ?? '',
          initiator: { type: p.actor.type, id: p.actor.id, userId: p.userId },
          createdAt: now.toISOString(),
          expiresAt: new Date(now.getTime() + ttl * 1000).toISOString(),
        };
        const hash = intentHash(intent);
        const s = screenWithdrawal({
          tier: vault.tier as 'hot' | 'warm' | 'cold',
          vaultRequiredApprovals: vault.required_approvals,
          hotLimit: w.hot_limit,
          amount,
        });
        const outcome: TxState =
          s.outcome === 'reject' ? 'rejected' : s.outcome === 'approve' ? 'approved' : 'pending_approval';
        // created → screening → outcome all happen inside this transaction, so nobody can observe
        // the intermediate states: the row is written once, in its screened state; every hop is
        // still checked against the state machine and audited with its own actor, in order.
        assertTransition('created', 'screening');
        assertTransition('screening', outcome);
        const tx = await new TransactionRepository(trx).insert({
          id,
          org_id: p.orgId,
          environment: p.environment,
          wallet_id: w.id,
          vault_id: vault.id,
          address_id: source.id,
          network: w.network,
          asset_id: asset.id,
          destination: dest.address!,
          amount,
          fee_reserved: maxFee,
          fee_paid: null,
          intent: JSON.stringify(intent),
          intent_hash: hash,
          state: outcome,
          required_approvals: s.requiredApprovals,
          screening: JSON.stringify(s),
          initiator_type: p.actor.type,
          initiator_id: p.actor.id,
          initiator_user_id: p.userId,
          expires_at: new Date(intent.expiresAt),
          unsigned_tx: null,
          chain_tx_id: null,
          signed_raw: null,
          failure: null,
        });
        const body = this.#view(tx, []);
        const saved = await new IdempotencyRepository(trx).save({
          scope,
          key: idempotencyKey,
          requestHash,
          statusCode: 201,
          responseBody: body,
          ttlMs: this.settings.idempotencyTtlMs,
        });
        if (!saved) throw new IdempotencyRace();
        await this.#ledger.post(
          trx,
          {
            orgId: p.orgId,
            kind: 'withdrawal.reserve',
            ref: { type: 'transaction', id },
            postings: this.#reservePostings(tx, nativeId, -1n),
          },
          { nonNegative: accountsOf(source) },
        );
        if (RELEASING.has(outcome)) await this.#release(trx, tx, outcome);
        await this.audit.appendMany(trx, [
          {
            orgId: p.orgId,
            actor: p.actor,
            action: 'transaction.create',
            target: { type: 'transaction', id },
            requestId: ctx.requestId,
            details: {
              intentHash: hash,
              walletId: w.id,
              network: w.network,
              asset: asset.symbol,
              amount: amount.toString(),
              destination: dest.address!,
              source: source.address,
              maxFee: maxFee.toString(),
              state: 'created',
            },
          },
          this.#transitionEntry(tx, 'created', 'screening', p.actor, ctx.requestId),
          this.#transitionEntry(
            tx,
            'screening',
            outcome,
            { type: 'service', id: 'screening' },
            ctx.requestId,
            {
              outcome: s.outcome,
              requiredApprovals: s.requiredApprovals,
              reasons: s.reasons,
            },
          ),
        ]);
        return { status: 201, body, replayed: false };
      });
    try {
      if (hint) {
        try {
          return await attempt(async () => hint);
        } catch (e) {
          if (!(e instanceof LedgerOverdraw)) throw e;
        }
      }
      // Slow path: each address's accounts locked FOR UPDATE in turn until one covers the amount;
      // they stay locked until commit (concurrent withdrawals queue here).
      return await attempt(async (trx) => {
        for (const a of addresses) {
          if (covers(await this.#ledger.lockBalances(trx, accountsOf(a)))) return a;
        }
        return undefined;
      });
    } catch (e) {
      if (e instanceof IdempotencyRace) {
        const r = await replay();
        if (r) return r;
      }
      throw e;
    } finally {
      // Auto-approved withdrawals go straight to signing.
      this.kick(id);
    }
  }

  #reservePostings(tx: TransactionRow, nativeId: string, sign: 1n | -1n) {
    // sign -1: available → reserved (reserve); +1: reserved → available (release)
    const acct = (asset: string, kind: 'available' | 'reserved') =>
      addressAccount(tx.org_id, asset, kind, tx.wallet_id, tx.address_id);
    const lines = [
      { account: acct(tx.asset_id, 'available'), amount: sign * tx.amount },
      { account: acct(tx.asset_id, 'reserved'), amount: -sign * tx.amount },
      { account: acct(nativeId, 'available'), amount: sign * tx.fee_reserved },
      { account: acct(nativeId, 'reserved'), amount: -sign * tx.fee_reserved },
    ];
    return lines;
  }

  #nativeId(network: string): string {
    const chain = this.custody.chain(network);
    const native = chain.assets.find((a) => a.kind === 'native') ?? chain.assets[0]!;
    return assetId(network, native.symbol);
  }

  /** Moves a locked transaction to `to`, audits it, and settles the ledger for terminal states. */
  /** The adapter asset of an approved intent: same symbol and the very contract the intent names. */
  #intentAsset(network: string, intent: Intent) {
    const a = this.custody.chainAsset({
      network,
      symbol: intent.asset.symbol,
      decimals: intent.asset.decimals,
      kind: intent.asset.contract === null ? 'native' : 'token',
      contract: intent.asset.contract,
    });
    if (a.contract !== intent.asset.contract || a.decimals !== intent.asset.decimals) {
      throw new CustodyError(
        'CUSTOS_CONFLICT',
        `asset ${intent.asset.symbol} on ${network} differs from the approved intent`,
      );
    }
    return a;
  }

  async #transition(
    trx: Transaction<Database>,
    tx: TransactionRow,
    to: TxState,
    actor: AuditActor,
    requestId: string | null,
    details: Record<string, unknown> = {},
    set: Parameters<TransactionRepository['update']>[1] = {},
  ): Promise<TransactionRow> {
    assertTransition(tx.state, to);
    const next = await new TransactionRepository(trx).update(tx.id, { ...set, state: to });
    if (RELEASING.has(to)) await this.#release(trx, tx, to);
    await this.audit.append(
      trx,
      this.#transitionEntry(tx, tx.state as TxState, to, actor, requestId, details),
    );
    return next;
  }

  /**
   * Moves transaction `id` from `from` to `to` if it is (still) in `from` — one conditional UPDATE
   * instead of a locked read and a write — audits it and settles the ledger for terminal states.
   * Undefined when the row was not in `from` (another worker moved it: nothing is changed).
   */
  async #transitionIf(
    trx: Transaction<Database>,
    id: string,
    from: TxState,
    to: TxState,
    actor: AuditActor,
    requestId: string | null,
    details: Record<string, unknown> = {},
    set: Parameters<TransactionRepository['update']>[1] = {},
  ): Promise<TransactionRow | undefined> {
    assertTransition(from, to);
    const next = await new TransactionRepository(trx).updateIfState(id, from, { ...set, state: to });
    if (!next) return undefined;
    if (RELEASING.has(to)) await this.#release(trx, next, to);
    await this.audit.append(trx, this.#transitionEntry(next, from, to, actor, requestId, details));
    return next;
  }

  /** reserved → available for a withdrawal that ends without spending. */
  async #release(trx: Transaction<Database>, tx: TransactionRow, to: TxState): Promise<void> {
    await this.#ledger.post(trx, {
      orgId: tx.org_id,
      kind: `withdrawal.release.${to}`,
      ref: { type: 'transaction', id: tx.id },
      postings: this.#reservePostings(tx, this.#nativeId(tx.network), 1n),
    });
  }

  #transitionEntry(
    tx: TransactionRow,
    from: TxState,
    to: TxState,
    actor: AuditActor,
    requestId: string | null,
    details: Record<string, unknown> = {},
  ): AuditInput {
    return {
      orgId: tx.org_id,
      actor,
      action: `transaction.${to}`,
      target: { type: 'transaction', id: tx.id },
      requestId,
      details: { from, to, intentHash: tx.intent_hash, ...details },
    };
  }

  // ---------- read ----------

  #view(tx: TransactionRow, approvals: ApprovalRow[]): TransactionView {
    const intent = tx.intent as unknown as Intent;
    return {
      id: tx.id,
      orgId: tx.org_id,
      walletId: tx.wallet_id,
      vaultId: tx.vault_id,
      network: tx.network,
      asset: intent.asset.symbol,
      source: intent.source.address,
      destination: tx.destination,
      amount: tx.amount.toString(),
      feeReserved: tx.fee_reserved.toString(),
      feePaid: tx.fee_paid === null ? null : tx.fee_paid.toString(),
      state: tx.state as TxState,
      intent,
      intentHash: tx.intent_hash,
      requiredApprovals: tx.required_approvals,
      approvals: approvals.map((a) => ({
        id: a.id,
        userId: a.user_id,
        approverKeyId: a.approver_key_id,
        decision: a.decision as Decision,
        intentHash: a.intent_hash,
        valid: a.intent_hash === tx.intent_hash && tx.expires_at.getTime() > Date.now(),
        createdAt: a.created_at.toISOString(),
      })),
      screening: (tx.screening as Record<string, unknown> | null) ?? null,
      chainTxId: tx.chain_tx_id,
      confirmations: tx.confirmations,
      failure: tx.failure,
      expiresAt: tx.expires_at.toISOString(),
      createdAt: tx.created_at.toISOString(),
      updatedAt: tx.updated_at.toISOString(),
    };
  }

  async get(scope: Scope, id: string): Promise<TransactionView> {
    const repo = new TransactionRepository(this.db);
    const tx = await repo.get(scope, id);
    if (!tx) throw notFound();
    return this.#view(tx, await repo.approvals(id));
  }

  async list(
    scope: Scope,
    f: { state?: string | undefined; walletId?: string | undefined; limit?: number | undefined },
  ): Promise<TransactionView[]> {
    const repo = new TransactionRepository(this.db);
    const rows = await repo.list(scope, { state: f.state, walletId: f.walletId, limit: f.limit ?? 100 });
    const out: TransactionView[] = [];
    for (const r of rows) out.push(this.#view(r, await repo.approvals(r.id)));
    return out;
  }

  // ---------- approvals ----------

  async vote(
    p: Principal,
    ctx: RequestContext,
    id: string,
    decision: Decision,
    input: { intentHash: string; publicKey: string; signature: string },
  ): Promise<TransactionView> {
    if (p.userId === null || p.kind !== 'user') {
      throw new CustodyError('CUSTOS_APPROVAL_NOT_APPROVER', 'approvals are signed by people, not API keys');
    }
    const userId = p.userId;
    let kick = false;
    const view = await this.custody.write(async (trx) => {
      const repo = new TransactionRepository(trx);
      let tx = await repo.get(p, id, true);
      if (!tx) throw notFound();
      if (tx.state === 'expired')
        throw new CustodyError('CUSTOS_TRANSACTION_EXPIRED', 'the transaction expired');
      const existing = await repo.approvals(tx.id);
      if (existing.some((a) => a.user_id === userId)) {
        throw new CustodyError('CUSTOS_APPROVAL_DUPLICATE', 'you have already voted on this transaction');
      }
      assertTransition(tx.state, decision === 'approve' ? 'approved' : 'rejected');
      if (tx.state !== 'pending_approval') {
        throw new CustodyError('CUSTOS_ILLEGAL_TRANSITION', `a ${tx.state} transaction takes no votes`, {
          details: { state: tx.state },
        });
      }
      if (input.intentHash !== tx.intent_hash) {
        throw new CustodyError(
          'CUSTOS_APPROVAL_INTENT_MISMATCH',
          'the signed intentHash is not the transaction’s current intent; fetch it and sign again',
          { details: { intentHash: tx.intent_hash } },
        );
      }
      assertNotInitiator({ initiatorUserId: tx.initiator_user_id, approverUserId: userId });
      const keys = await new ApproverKeyRepository(trx).list(p.orgId, userId);
      const key = keys.find((k) => k.public_key === input.publicKey.toLowerCase() && k.status === 'active');
      if (!key) {
        throw new CustodyError(
          'CUSTOS_APPROVAL_NOT_APPROVER',
          'publicKey is not one of your active approver keys',
        );
      }
      if (
        !verifyEd25519(
          key.public_key,
          approvalMessage(decision, tx.intent_hash),
          input.signature.toLowerCase(),
        )
      ) {
        throw new CustodyError(
          'CUSTOS_APPROVAL_BAD_SIGNATURE',
          `signature is not a valid ${decision} of intentHash`,
        );
      }
      if (existing.some((a) => a.approver_key_id === key.id)) {
        throw new CustodyError('CUSTOS_APPROVAL_DUPLICATE', 'you have already voted on this transaction');
      }
      if (decision === 'approve' && !(await new EndorsementRepository(trx).get(key.id))) {
        throw new CustodyError(
          'CUSTOS_APPROVAL_NOT_ENDORSED',
          'your approver key has no owner endorsement yet (POST /v1/approver-keys/{id}/endorsement)',
        );
      }
      if (tx.expires_at.getTime() <= Date.now()) {
        await this.#transition(trx, tx, 'expired', WORKER, ctx.requestId);
        return null;
      }
      const row = await repo.insertApproval({
        id: `apv_${randomUUID().replaceAll('-', '').slice(0, 20)}`,
        transaction_id: tx.id,
        org_id: p.orgId,
        intent_hash: tx.intent_hash,
        approver_key_id: key.id,
        public_key: key.public_key,
        user_id: userId,
        decision,
        signature: input.signature.toLowerCase(),
      });
      await this.audit.append(trx, {
        orgId: p.orgId,
        actor: p.actor,
        action: decision === 'approve' ? 'transaction.approval' : 'transaction.rejection',
        target: { type: 'transaction', id: tx.id },
        requestId: ctx.requestId,
        details: { intentHash: tx.intent_hash, approverKeyId: key.id, approvalId: row.id },
      });
      const votes = [...existing, row];
      if (decision === 'reject') {
        tx = await this.#transition(trx, tx, 'rejected', p.actor, ctx.requestId, { by: userId });
      } else {
        const valid = votes.filter((a) => a.decision === 'approve' && a.intent_hash === tx!.intent_hash);
        if (valid.length >= tx.required_approvals) {
          tx = await this.#transition(
            trx,
            tx,
            'approved',
            { type: 'service', id: 'approvals' },
            ctx.requestId,
            {
              approvals: valid.length,
            },
          );
          kick = true;
        }
      }
      return this.#view(tx, votes);
    });
    if (view === null) throw new CustodyError('CUSTOS_TRANSACTION_EXPIRED', 'the transaction expired');
    if (kick) this.kick(id);
    return view;
  }

  async cancel(p: Principal, ctx: RequestContext, id: string): Promise<TransactionView> {
    return this.custody.write(async (trx) => {
      const repo = new TransactionRepository(trx);
      const tx = await repo.get(p, id, true);
      if (!tx) throw notFound();
      const exported = tx.state === 'pending_signature' ? await this.#releaseUnsigned(trx, tx) : undefined;
      const next = await this.#transition(
        trx,
        tx,
        'cancelled',
        p.actor,
        ctx.requestId,
        exported !== undefined ? { signingRequestExported: exported } : {},
      );
      return this.#view(next, await repo.approvals(id));
    });
  }

  /**
   * Expires every pending_approval/approved transaction past its expiry, and every cold-vault one
   * still waiting for offline signatures (the offline nodes refuse an expired intent anyway).
   */
  async expireDue(now = new Date()): Promise<number> {
    const states = ['pending_approval', 'approved', 'pending_signature'];
    const due = await new TransactionRepository(this.db).dueToExpire(states, now);
    let n = 0;
    for (const t of due) {
      await this.custody.write(async (trx) => {
        const tx = await new TransactionRepository(trx).getById(t.id, true);
        if (tx && states.includes(tx.state)) {
          const exported =
            tx.state === 'pending_signature' ? await this.#releaseUnsigned(trx, tx) : undefined;
          await this.#transition(
            trx,
            tx,
            'expired',
            WORKER,
            null,
            exported !== undefined ? { signingRequestExported: exported } : {},
          );
          n++;
        }
      });
    }
    return n;
  }

  /**
   * A withdrawal that will never be signed on line gives its transaction's nonce (EVM) back. Returns
   * whether its signing request was ever exported — then the offline cluster may have signed it,
   * and a signatures file for it is a signed transaction someone holds (docs/custody.md).
   */
  async #releaseUnsigned(trx: Transaction<Database>, tx: TransactionRow): Promise<boolean> {
    if (tx.unsigned_tx) {
      const chain = this.custody.chain(tx.network);
      await withNonceTransaction(trx, () =>
        chain.releaseTransfer(fromJsonSafe<UnsignedTransaction>(tx.unsigned_tx)),
      );
    }
    return new AuditRepository(trx).recorded(SIGNING_REQUEST_ACTION, tx.id);
  }

  // ---------- cold vaults: offline signing ----------

  /**
   * The signing request of a cold-vault withdrawal waiting in pending_signature: the digests, the
   * source key and path, and the evidence the offline nodes check themselves. Every export is
   * audited (no audit entry, no export).
   */
  async signingRequest(p: Principal, ctx: RequestContext, id: string): Promise<SigningRequest> {
    const repo = new TransactionRepository(this.db);
    const waiting = (tx: TransactionRow | undefined): TransactionRow => {
      if (!tx) throw notFound();
      if (tx.state !== 'pending_signature' || !tx.unsigned_tx) {
        throw new CustodyError(
          'CUSTOS_ILLEGAL_TRANSITION',
          `a ${tx.state} transaction has no offline signing request (only a cold vault's approved withdrawal waits for one)`,
          { details: { state: tx.state } },
        );
      }
      return tx;
    };
    // Assembled from plain reads (the evidence reads approvals and endorsements), then the export is
    // audited in a transaction that finds the withdrawal still waiting — or nothing is handed out.
    const tx = waiting(await repo.get(p, id));
    const found = await repo.getForSigning(id);
    if (!found) throw notFound();
    const { vault } = found;
    const w = { key_id: found.keyId, scheme: found.scheme };
    const intent = tx.intent as unknown as Intent;
    const unsigned = fromJsonSafe<UnsignedTransaction>(tx.unsigned_tx);
    const request = buildSigningRequest({
      transactionId: tx.id,
      orgId: tx.org_id,
      vaultId: tx.vault_id,
      network: tx.network,
      keyId: w.key_id,
      scheme: w.scheme as SchemeName,
      derivationPath: intent.source.path,
      signingPublicKey: await this.custody.derivePublicKey(w, intent.source.path),
      digests: unsigned.digests.map((d) => d.digest),
      evidence: await this.evidence(tx, unsigned, vault),
    });
    await this.custody.write(async (trx) => {
      const now = waiting(await new TransactionRepository(trx).get(p, id, true));
      if (now.intent_hash !== tx.intent_hash) throw notFound();
      await this.audit.append(trx, {
        orgId: tx.org_id,
        actor: p.actor,
        action: SIGNING_REQUEST_ACTION,
        target: { type: 'transaction', id: tx.id },
        requestId: ctx.requestId,
        details: {
          intentHash: tx.intent_hash,
          keyId: w.key_id,
          digests: request.digests,
          approvals: request.evidence.approvals.length,
        },
      });
    });
    return request;
  }

  /**
   * Imports the offline cluster's signatures for a pending_signature withdrawal: they must be for
   * this transaction, intent, key and path, over its digests in order, and verify under its source
   * address's key (nothing in the file is trusted); then pending_signature → signing (audited with
   * the importer) and the transaction is broadcast.
   */
  async importSignatures(
    p: Principal,
    ctx: RequestContext,
    id: string,
    doc: OfflineSignatures,
  ): Promise<TransactionView> {
    const tx = await this.custody.write(async (trx) => {
      const repo = new TransactionRepository(trx);
      const t = await repo.get(p, id, true);
      if (!t) throw notFound();
      if (t.state !== 'pending_signature' || !t.unsigned_tx) {
        throw new CustodyError(
          'CUSTOS_ILLEGAL_TRANSITION',
          `a ${t.state} transaction takes no offline signatures`,
          { details: { state: t.state } },
        );
      }
      const found = await repo.getForSigning(id);
      if (!found) throw notFound();
      const intent = t.intent as unknown as Intent;
      const unsigned = fromJsonSafe<UnsignedTransaction>(t.unsigned_tx);
      const signingPublicKey = await this.custody.derivePublicKey(
        { key_id: found.keyId, scheme: found.scheme },
        intent.source.path,
        trx,
      );
      const signatures = await verifyOfflineSignatures(doc, {
        transactionId: t.id,
        intentHash: t.intent_hash,
        keyId: found.keyId,
        derivationPath: intent.source.path,
        scheme: found.scheme,
        signingPublicKey,
        digests: unsigned.digests.map((d) => d.digest),
      });
      const signed = this.custody.chain(t.network).attachSignatures(unsigned, signatures);
      return this.#transition(
        trx,
        t,
        'signing',
        p.actor,
        ctx.requestId,
        { offline: true, chainTxId: signed.txId, ...(doc.signers ? { signers: doc.signers } : {}) },
        { signed_raw: signed.raw, chain_tx_id: signed.txId },
      );
    });
    await this.#broadcast(tx);
    return this.get(p, id);
  }

  // ---------- signing and broadcast ----------

  /** Starts processing an approved transaction in the background (at most once at a time per id). */
  kick(id: string): void {
    if (this.#stopped || this.#inflight.has(id)) return;
    this.#inflight.add(id);
    this.process(id)
      .catch((err) => this.log.error({ err, transactionId: id }, 'custody: processing failed'))
      .finally(() => {
        this.#inflight.delete(id);
        if (this.#inflight.size === 0) for (const f of this.#idle) f();
      });
  }

  /** Resolves when no transaction is being processed (tests, shutdown). */
  idle(): Promise<void> {
    if (this.#inflight.size === 0) return Promise.resolve();
    return new Promise((resolve) => {
      const f = () => {
        this.#idle.delete(f);
        resolve();
      };
      this.#idle.add(f);
    });
  }

  stop(): Promise<void> {
    this.#stopped = true;
    return this.idle();
  }

  /**
   * After a restart: picks up approved transactions, re-broadcasts signed ones, and fails the
   * `signing` ones that never got a signature. Another replica may be signing such a row right now,
   * so a row is failed only once it has not moved for longer than a signing can take (younger ones
   * are looked at again when that time is up); and whoever is signing checks, before it broadcasts,
   * that the row is still `signing` — a signature for a row failed meanwhile never reaches the chain.
   */
  async resume(): Promise<void> {
    const repo = new TransactionRepository(this.db);
    for (const t of await repo.inStates(['approved'])) this.kick(t.id);
    for (const t of await repo.inStates(['signing'])) await this.#settleInterrupted(t);
  }

  /** How long a signing may take before a `signing` row without a signature counts as abandoned. */
  #signingGraceMs(): number {
    return 3 * (this.settings.signTimeoutMs ?? 30_000) + 5_000;
  }

  async #settleInterrupted(t: TransactionRow, abandoned = false): Promise<void> {
    if (this.#stopped || t.state !== 'signing' || this.#inflight.has(t.id)) return;
    if (t.signed_raw) {
      await this.#broadcast(t.id);
      return;
    }
    const wait = t.updated_at.getTime() + this.#signingGraceMs() - Date.now();
    if (!abandoned && wait > 0) {
      setTimeout(async () => {
        const again = await new TransactionRepository(this.db).getById(t.id).catch(() => undefined);
        // Still untouched since we looked: abandoned. (Moved on: someone is working on it.)
        if (again && again.updated_at.getTime() === t.updated_at.getTime())
          await this.#settleInterrupted(again, true).catch((err) =>
            this.log.error({ err, txId: t.id }, 'settling an interrupted withdrawal'),
          );
      }, wait).unref();
      return;
    }
    if (t.unsigned_tx) {
      // Its nonce (EVM) goes back to the pool: this transaction will never be signed.
      const chain = this.custody.chain(t.network);
      await chain.releaseTransfer(fromJsonSafe<UnsignedTransaction>(t.unsigned_tx)).catch(() => {});
    }
    await this.#fail(t.id, 'interrupted while signing (no signature was stored)');
  }

  async process(id: string): Promise<void> {
    // approved → signing, with the unsigned transaction stored. The row is read locked, with the
    // wallet's key and the vault's signed policy (the evidence) in the same statement.
    const prepared = await this.custody.write(async (trx) => {
      const found = await new TransactionRepository(trx).getForSigning(id);
      if (found?.tx.state !== 'approved') return null;
      const { tx, keyId, scheme, vault } = found;
      if (tx.expires_at.getTime() <= Date.now()) {
        await this.#transition(trx, tx, 'expired', WORKER, null);
        return null;
      }
      const intent = tx.intent as unknown as Intent;
      const chain = this.custody.chain(tx.network);
      // Registers the source key with the adapter (address ↔ public key) and proves the path.
      const derived = chain.deriveAddress(
        await this.custody.derivePublicKey({ key_id: keyId, scheme }, intent.source.path, trx),
      );
      if (derived !== intent.source.address) {
        await this.#transition(trx, tx, 'failed', WORKER, null, {
          reason: 'source address derivation mismatch',
        });
        return null;
      }
      // A cold withdrawal is signed offline and broadcast later: it gets the whole approved fee
      // budget as its EIP-1559 ceiling and (Tron) a lifetime up to the intent's expiry (≤ 24 h).
      const cold = vault.tier === 'cold';
      let unsigned: UnsignedTransaction;
      try {
        // A nonce reserved in a PostgreSQL-backed store commits or rolls back with this transaction.
        unsigned = await withNonceTransaction(trx, () =>
          chain.buildTransfer({
            from: intent.source.address,
            to: intent.destination,
            asset: this.#intentAsset(chain.network, intent),
            amount: BigInt(intent.amount),
            fee: { speed: intent.feePolicy.speed, ...(cold ? { budget: tx.fee_reserved } : {}) },
            ...(intent.memo ? { memo: intent.memo } : {}),
            ...(cold ? { validForMs: tx.expires_at.getTime() - Date.now() } : {}),
          }),
        );
      } catch (e) {
        await this.#transition(
          trx,
          tx,
          'failed',
          WORKER,
          null,
          { reason: (e as Error).message },
          {
            failure: `build: ${(e as Error).message}`,
          },
        );
        return null;
      }
      if (unsigned.fee.max > tx.fee_reserved) {
        await withNonceTransaction(trx, () => chain.releaseTransfer(unsigned));
        await this.#transition(
          trx,
          tx,
          'failed',
          WORKER,
          null,
          { reason: 'fee above the reserved maximum' },
          {
            failure: 'fee rose above the reserved maximum',
          },
        );
        return null;
      }
      const digests = unsigned.digests.map((d) => Buffer.from(d.digest).toString('hex'));
      if (cold) {
        // Signed offline: the request is exported (signingRequest) and the signatures imported.
        await this.#transition(
          trx,
          tx,
          'pending_signature',
          WORKER,
          null,
          { digests, offline: true },
          { unsigned_tx: JSON.stringify(toJsonSafe(unsigned)) },
        );
        return null;
      }
      const next = await this.#transition(
        trx,
        tx,
        'signing',
        WORKER,
        null,
        { digests },
        { unsigned_tx: JSON.stringify(toJsonSafe(unsigned)) },
      );
      return { tx: next, unsigned, intent, keyId, vault };
    });
    if (!prepared) return;
    const { tx, unsigned, intent, keyId, vault } = prepared;
    const chain = this.custody.chain(tx.network);

    let signed: { raw: string; txId: string };
    try {
      const evidence = await this.evidence(tx, unsigned, vault);
      const signatures: ChainSignature[] = [];
      for (const d of unsigned.digests) {
        const r = await this.custody.deps.coordinator.sign(keyId, d.digest, {
          path: intent.source.path,
          authorization: evidence,
          ...(this.settings.signTimeoutMs ? { timeoutMs: this.settings.signTimeoutMs } : {}),
        });
        signatures.push({
          signature: new Uint8Array(Buffer.from(r.signature, 'hex')),
          ...(r.recovery !== undefined ? { recovery: r.recovery } : {}),
        });
      }
      signed = chain.attachSignatures(unsigned, signatures);
      // Stored before it is broadcast, so a restart re-broadcasts it (resume) rather than failing a
      // transaction that may be on chain. Not a state transition (no audit entry, no ledger rows):
      // a single-row update of a row no other writer moves while it is `signing`.
      const stored = await new TransactionRepository(this.db).updateIfState(tx.id, 'signing', {
        signed_raw: signed.raw,
        chain_tx_id: signed.txId,
      });
      if (!stored) {
        // Failed meanwhile (a restarted replica took it for abandoned) and its funds released: this
        // signature must never reach the chain. The nonce went back with the failure.
        this.log.warn({ txId: tx.id }, 'withdrawal left signing while it was signed; signature discarded');
        return;
      }
    } catch (e) {
      await chain.releaseTransfer(unsigned).catch(() => {});
      await this.#fail(tx.id, `signing: ${(e as Error).message}`);
      return;
    }
    await this.#broadcast({ ...tx, signed_raw: signed.raw, chain_tx_id: signed.txId });
  }

  /** The evidence the MPC nodes verify (see src/mpc/authorizers/custody-approvals.ts). */
  async evidence(
    tx: TransactionRow,
    unsigned: UnsignedTransaction,
    vaultRow?: Pick<VaultRow, 'id' | 'policy' | 'policy_signature' | 'policy_signer_key'>,
  ): Promise<CustodyEvidence> {
    const vault = vaultRow ?? (await this.custody.vaultRow(scopeOf(tx), tx.vault_id));
    if (!vault.policy_signature || !vault.policy_signer_key) {
      throw new CustodyError(
        'CUSTOS_VAULT_POLICY_UNSIGNED',
        `vault ${vault.id}: the policy has no owner signature`,
      );
    }
    const approvals: CustodyEvidence['approvals'] = [];
    const endorsements = new EndorsementRepository(this.db);
    // A transaction screened to need no approvals never took votes (it was never pending_approval).
    const votes = tx.required_approvals > 0 ? await new TransactionRepository(this.db).approvals(tx.id) : [];
    for (const a of votes) {
      if (a.decision !== 'approve' || a.intent_hash !== tx.intent_hash) continue;
      const e = await endorsements.get(a.approver_key_id);
      if (!e) continue;
      approvals.push({
        publicKey: a.public_key,
        signature: a.signature,
        endorsement: {
          statement: e.statement as unknown as EndorsementStatement,
          signature: e.signature,
          ownerPublicKey: e.owner_public_key,
        },
      });
    }
    const intent = tx.intent as unknown as Intent;
    const asset = await this.custody.assetEndorsement(tx.network, intent.asset.symbol);
    return {
      kind: CUSTODY_EVIDENCE_KIND,
      intent,
      intentHash: tx.intent_hash,
      unsignedTx: toJsonSafe(unsigned),
      ...(asset ? { asset } : {}),
      policy: {
        statement: vault.policy as unknown as VaultPolicyStatement,
        signature: vault.policy_signature,
        ownerPublicKey: vault.policy_signer_key,
      },
      approvals,
    };
  }

  /** Broadcasts a signed transaction and moves it signing → broadcast (given its id, or its row). */
  async #broadcast(row: string | TransactionRow): Promise<void> {
    const tx = typeof row === 'string' ? await new TransactionRepository(this.db).getById(row) : row;
    if (tx?.state !== 'signing' || !tx.signed_raw || !tx.chain_tx_id) return;
    const id = tx.id;
    const chain = this.custody.chain(tx.network);
    const unsigned = fromJsonSafe<UnsignedTransaction>(tx.unsigned_tx);
    try {
      await chain.broadcast({
        network: tx.network,
        family: chain.family,
        txId: tx.chain_tx_id,
        raw: tx.signed_raw,
        summary: unsigned.summary,
      });
    } catch (e) {
      await this.#fail(id, `broadcast: ${(e as Error).message}`);
      return;
    }
    await this.custody.write(async (trx) => {
      await this.#transitionIf(trx, id, 'signing', 'broadcast', WORKER, null, { chainTxId: tx.chain_tx_id });
    });
  }

  async #fail(id: string, reason: string): Promise<void> {
    await this.custody.write(async (trx) => {
      const t = await new TransactionRepository(trx).getById(id, true);
      if (t && !['completed', 'failed', 'rejected', 'cancelled', 'expired'].includes(t.state)) {
        await this.#transition(
          trx,
          t,
          'failed',
          WORKER,
          null,
          { reason: reason.slice(0, 300) },
          {
            failure: reason.slice(0, 1000),
          },
        );
      }
    });
  }

  // ---------- confirmations (called by the chain watcher) ----------

  /**
   * Follows a broadcast/confirming withdrawal on chain (given its id, or the row the watcher just
   * read). Nothing is written unless the chain moved it; returns true when its state changed.
   */
  async advance(row: string | TransactionRow): Promise<boolean> {
    const t0 = typeof row === 'string' ? await new TransactionRepository(this.db).getById(row) : row;
    if (!t0 || (t0.state !== 'broadcast' && t0.state !== 'confirming') || !t0.chain_tx_id) return false;
    const id = t0.id;
    const chain = this.custody.chain(t0.network);
    const status = await chain.getTransactionStatus({ txId: t0.chain_tx_id });
    // A confirming withdrawal whose block is no longer canonical (back in the mempool, or unknown to
    // the node after a reorg): back to broadcast, audited, confirmations reset; it is rebroadcast
    // below (or on the next pass) and completes only once it is mined again and deep enough. The
    // funds stay reserved throughout, so the ledger needs no correction.
    if (
      t0.state === 'confirming' &&
      ((status.state === 'pending' && status.confirmations === 0) || status.state === 'dropped')
    ) {
      const moved = await this.custody.write(async (trx) =>
        this.#transitionIf(
          trx,
          id,
          'confirming',
          'broadcast',
          WATCHER,
          null,
          { reason: 'reorg: its block is no longer canonical', chainState: status.state },
          { confirmations: 0 },
        ),
      );
      if (!moved) return false;
      this.log.warn(
        { transactionId: id, txId: t0.chain_tx_id },
        'custody: withdrawal reorganised out of its block',
      );
      if (status.state === 'pending') return true;
      return (await this.advance(id)) || true; // dropped: rebroadcast now
    }
    if (status.state === 'pending' && status.confirmations === 0) return false;
    if (status.state === 'dropped') {
      if (!status.nonceConsumed && t0.signed_raw) {
        const unsigned = fromJsonSafe<UnsignedTransaction>(t0.unsigned_tx);
        await chain
          .broadcast({
            network: t0.network,
            family: chain.family,
            txId: t0.chain_tx_id,
            raw: t0.signed_raw,
            summary: unsigned.summary,
          })
          .catch((err) => this.log.warn({ err, transactionId: id }, 'custody: rebroadcast failed'));
      }
      return false;
    }
    if (
      t0.state === 'confirming' &&
      status.state === 'pending' &&
      status.confirmations === t0.confirmations
    ) {
      return false; // nothing new on chain
    }
    return this.custody.write(async (trx) => {
      const from = t0.state as 'broadcast' | 'confirming';
      if (status.state === 'failed') {
        const fee = status.fee ?? 0n;
        const tx = await this.#transitionIf(
          trx,
          id,
          from,
          'failed',
          WATCHER,
          null,
          { reason: status.reason ?? 'failed on chain' },
          {
            failure: status.reason ?? 'failed on chain',
            fee_paid: fee,
          },
        );
        if (tx && fee > 0n) {
          const nativeId = this.#nativeId(tx.network);
          await this.#ledger.post(trx, {
            orgId: tx.org_id,
            kind: 'withdrawal.fee',
            ref: { type: 'transaction', id: tx.id },
            postings: [
              {
                account: addressAccount(tx.org_id, nativeId, 'available', tx.wallet_id, tx.address_id),
                amount: -fee,
              },
              { account: orgAccount(tx.org_id, nativeId, 'fees'), amount: fee },
            ],
          });
        }
        return tx !== undefined;
      }
      let tx: TransactionRow | undefined;
      if (from === 'broadcast') {
        tx = await this.#transitionIf(
          trx,
          id,
          'broadcast',
          'confirming',
          WATCHER,
          null,
          {
            blockNumber: status.blockNumber?.toString() ?? null,
            confirmations: status.confirmations,
          },
          { confirmations: status.confirmations },
        );
        if (!tx) return false;
      }
      if (status.state === 'confirmed') {
        return this.#complete(trx, tx ?? t0, status.fee ?? t0.fee_reserved, status.confirmations);
      }
      if (!tx) {
        // Still confirming, with more confirmations than recorded: not a transition.
        await new TransactionRepository(trx).updateIfState(id, 'confirming', {
          confirmations: status.confirmations,
        });
      }
      return tx !== undefined;
    });
  }

  async #complete(
    trx: Transaction<Database>,
    t: TransactionRow,
    feePaid: bigint,
    confirmations: number,
  ): Promise<boolean> {
    const fee = feePaid > t.fee_reserved ? t.fee_reserved : feePaid;
    const tx = await this.#transitionIf(
      trx,
      t.id,
      'confirming',
      'completed',
      WATCHER,
      null,
      { confirmations, feePaid: fee.toString() },
      {
        fee_paid: fee,
        confirmations,
      },
    );
    if (!tx) return false;
    const nativeId = this.#nativeId(tx.network);
    const acct = (asset: string, kind: 'available' | 'reserved') =>
      addressAccount(tx.org_id, asset, kind, tx.wallet_id, tx.address_id);
    await this.#ledger.post(trx, {
      orgId: tx.org_id,
      kind: 'withdrawal.settle',
      ref: { type: 'transaction', id: tx.id },
      postings: [
        { account: acct(tx.asset_id, 'reserved'), amount: -tx.amount },
        { account: orgAccount(tx.org_id, tx.asset_id, 'external'), amount: tx.amount },
        { account: acct(nativeId, 'reserved'), amount: -tx.fee_reserved },
        { account: orgAccount(tx.org_id, nativeId, 'fees'), amount: fee },
        { account: acct(nativeId, 'available'), amount: tx.fee_reserved - fee },
      ],
    });
    return true;
  }
}

class IdempotencyRace extends Error {}
