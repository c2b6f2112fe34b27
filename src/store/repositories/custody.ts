// Custody rows: assets, vaults and keys, wallets, addresses, ledger accounts and journal entries,
// deposits, withdrawals and approvals, chain cursors. Thin: one query per method, the caller passes
// the transaction; row locks (`forUpdate`) are taken where a read decides a write.
import { type Insertable, type Kysely, type Selectable, sql, type Transaction } from 'kysely';
import type {
  AddressTable,
  AssetTable,
  Database,
  DepositTable,
  LedgerAccountTable,
  TransactionApprovalTable,
  TransactionTable,
  VaultKeyTable,
  VaultTable,
  WalletTable,
} from '../schema.ts';

type Db = Kysely<Database> | Transaction<Database>;

/**
 * Whose data: an organisation and one of its environments. Vaults, wallets (and what hangs off
 * them) and withdrawals are read only within one; a Principal is a Scope.
 */
export interface Scope {
  orgId: string;
  environment: 'sandbox' | 'production';
}

/** The scope a stored row (vault, wallet, transaction) belongs to. */
export function scopeOf(row: { org_id: string; environment: string }): Scope {
  if (row.environment !== 'sandbox' && row.environment !== 'production')
    throw new Error(`row of org ${row.org_id} has environment ${row.environment}`);
  return { orgId: row.org_id, environment: row.environment };
}

export type AssetRow = Selectable<AssetTable>;
export type VaultRow = Selectable<VaultTable>;
export type VaultKeyRow = Selectable<VaultKeyTable>;
export type WalletRow = Selectable<WalletTable>;
export type AddressRow = Selectable<AddressTable>;
export type LedgerAccountRow = Selectable<LedgerAccountTable>;
export type DepositRow = Selectable<DepositTable>;
export type TransactionRow = Selectable<TransactionTable>;
export type ApprovalRow = Selectable<TransactionApprovalTable>;

export class AssetRepository {
  constructor(private readonly db: Db) {}
  /** The configured assets and those `orgId` registered. */
  list(orgId: string, network?: string): Promise<AssetRow[]> {
    let q = this.db
      .selectFrom('assets')
      .selectAll()
      .where((eb) => eb.or([eb('org_id', 'is', null), eb('org_id', '=', orgId)]))
      .orderBy('network')
      .orderBy('symbol');
    if (network) q = q.where('network', '=', network);
    return q.execute();
  }
  get(id: string): Promise<AssetRow | undefined> {
    return this.db.selectFrom('assets').selectAll().where('id', '=', id).executeTakeFirst();
  }
  /** Inserts unless (network, symbol) exists; returns whether it was new. */
  async insertIfMissing(row: Insertable<AssetTable>): Promise<boolean> {
    const r = await this.db
      .insertInto('assets')
      .values(row)
      .onConflict((oc) => oc.doNothing())
      .executeTakeFirst();
    return (r.numInsertedOrUpdatedRows ?? 0n) > 0n;
  }
}

export class VaultRepository {
  constructor(private readonly db: Db) {}
  insert(row: Insertable<VaultTable>): Promise<VaultRow> {
    return this.db.insertInto('vaults').values(row).returningAll().executeTakeFirstOrThrow();
  }
  get(scope: Scope, id: string): Promise<VaultRow | undefined> {
    return this.db
      .selectFrom('vaults')
      .selectAll()
      .where('org_id', '=', scope.orgId)
      .where('environment', '=', scope.environment)
      .where('id', '=', id)
      .executeTakeFirst();
  }
  list(scope: Scope): Promise<VaultRow[]> {
    return this.db
      .selectFrom('vaults')
      .selectAll()
      .where('org_id', '=', scope.orgId)
      .where('environment', '=', scope.environment)
      .orderBy('created_at')
      .execute();
  }
  setPolicySignature(id: string, signature: string, signerKey: string): Promise<VaultRow> {
    return this.db
      .updateTable('vaults')
      .set({ policy_signature: signature, policy_signer_key: signerKey })
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirstOrThrow();
  }
  insertKey(row: Insertable<VaultKeyTable>): Promise<VaultKeyRow> {
    return this.db.insertInto('vault_keys').values(row).returningAll().executeTakeFirstOrThrow();
  }
  keys(vaultId: string): Promise<VaultKeyRow[]> {
    return this.db
      .selectFrom('vault_keys')
      .selectAll()
      .where('vault_id', '=', vaultId)
      .orderBy('scheme')
      .execute();
  }
  /** Every vault key, with its vault's tier. */
  allKeys(): Promise<(VaultKeyRow & { tier: string })[]> {
    return this.db
      .selectFrom('vault_keys')
      .innerJoin('vaults', 'vaults.id', 'vault_keys.vault_id')
      .selectAll('vault_keys')
      .select('vaults.tier')
      .execute();
  }
  key(scope: Scope, keyId: string): Promise<VaultKeyRow | undefined> {
    return this.db
      .selectFrom('vault_keys')
      .innerJoin('vaults', 'vaults.id', 'vault_keys.vault_id')
      .selectAll('vault_keys')
      .where('vault_keys.org_id', '=', scope.orgId)
      .where('vaults.environment', '=', scope.environment)
      .where('vault_keys.key_id', '=', keyId)
      .executeTakeFirst();
  }
  listKeys(scope: Scope): Promise<VaultKeyRow[]> {
    return this.db
      .selectFrom('vault_keys')
      .innerJoin('vaults', 'vaults.id', 'vault_keys.vault_id')
      .selectAll('vault_keys')
      .where('vault_keys.org_id', '=', scope.orgId)
      .where('vaults.environment', '=', scope.environment)
      .orderBy('vault_keys.created_at')
      .execute();
  }
  updateKey(
    keyId: string,
    set: { threshold: number; parties: number[]; generation: number },
  ): Promise<VaultKeyRow> {
    return this.db
      .updateTable('vault_keys')
      .set({
        threshold: set.threshold,
        parties: JSON.stringify(set.parties),
        generation: set.generation,
        updated_at: new Date(),
      })
      .where('key_id', '=', keyId)
      .returningAll()
      .executeTakeFirstOrThrow();
  }
  insertCeremony(row: {
    id: string;
    orgId: string;
    keyId: string;
    kind: string;
    details: Record<string, unknown>;
    actorId: string | null;
  }): Promise<unknown> {
    return this.db
      .insertInto('key_ceremonies')
      .values({
        id: row.id,
        org_id: row.orgId,
        key_id: row.keyId,
        kind: row.kind,
        details: JSON.stringify(row.details),
        actor_id: row.actorId,
      })
      .execute();
  }
}

export class EndorsementRepository {
  constructor(private readonly db: Db) {}
  upsert(row: {
    approverKeyId: string;
    orgId: string;
    statement: Record<string, unknown>;
    signature: string;
    ownerPublicKey: string;
  }): Promise<unknown> {
    const v = {
      approver_key_id: row.approverKeyId,
      org_id: row.orgId,
      statement: JSON.stringify(row.statement),
      signature: row.signature,
      owner_public_key: row.ownerPublicKey,
    };
    return this.db
      .insertInto('approver_endorsements')
      .values(v)
      .onConflict((oc) => oc.column('approver_key_id').doUpdateSet(v))
      .execute();
  }
  get(approverKeyId: string) {
    return this.db
      .selectFrom('approver_endorsements')
      .selectAll()
      .where('approver_key_id', '=', approverKeyId)
      .executeTakeFirst();
  }
}

export class WalletRepository {
  constructor(private readonly db: Db) {}
  /** The org's HD branch, allocated on first use (max + 1, retried by the caller on conflict). */
  async orgBranch(orgId: string): Promise<number> {
    await this.db
      .insertInto('org_branches')
      .values({
        org_id: orgId,
        branch: sql<number>`(select coalesce(max(branch), -1) + 1 from org_branches)`,
      })
      .onConflict((oc) => oc.column('org_id').doNothing())
      .execute();
    const r = await this.db
      .selectFrom('org_branches')
      .select('branch')
      .where('org_id', '=', orgId)
      .executeTakeFirstOrThrow();
    return r.branch;
  }
  nextAccount(orgId: string): Promise<{ n: number }> {
    return this.db
      .selectFrom('wallets')
      .select(sql<number>`coalesce(max(account), -1) + 1`.as('n'))
      .where('org_id', '=', orgId)
      .executeTakeFirstOrThrow();
  }
  insert(row: Insertable<WalletTable>): Promise<WalletRow> {
    return this.db.insertInto('wallets').values(row).returningAll().executeTakeFirstOrThrow();
  }
  get(scope: Scope, id: string): Promise<WalletRow | undefined> {
    return this.db
      .selectFrom('wallets')
      .selectAll()
      .where('org_id', '=', scope.orgId)
      .where('environment', '=', scope.environment)
      .where('id', '=', id)
      .executeTakeFirst();
  }
  list(scope: Scope, vaultId?: string): Promise<WalletRow[]> {
    let q = this.db
      .selectFrom('wallets')
      .selectAll()
      .where('org_id', '=', scope.orgId)
      .where('environment', '=', scope.environment);
    if (vaultId) q = q.where('vault_id', '=', vaultId);
    return q.orderBy('created_at').execute();
  }
  /** Atomically takes the next address index (the row update serialises concurrent callers). */
  async allocateIndex(walletId: string): Promise<number> {
    const r = await this.db
      .updateTable('wallets')
      .set({ next_index: sql`next_index + 1` })
      .where('id', '=', walletId)
      .returning(sql<number>`next_index - 1`.as('index'))
      .executeTakeFirstOrThrow();
    return Number(r.index);
  }
  insertAddress(row: Insertable<AddressTable>): Promise<AddressRow> {
    return this.db.insertInto('addresses').values(row).returningAll().executeTakeFirstOrThrow();
  }
  addresses(walletId: string): Promise<AddressRow[]> {
    return this.db
      .selectFrom('addresses')
      .selectAll()
      .where('wallet_id', '=', walletId)
      .orderBy('index')
      .execute();
  }
  address(id: string): Promise<AddressRow | undefined> {
    return this.db.selectFrom('addresses').selectAll().where('id', '=', id).executeTakeFirst();
  }
  addressesOnNetwork(network: string): Promise<AddressRow[]> {
    return this.db.selectFrom('addresses').selectAll().where('network', '=', network).execute();
  }
  addressByValue(network: string, address: string): Promise<AddressRow | undefined> {
    return this.db
      .selectFrom('addresses')
      .selectAll()
      .where('network', '=', network)
      .where('address', '=', address)
      .executeTakeFirst();
  }
}

export type AccountKind = 'available' | 'pending' | 'reserved' | 'external' | 'fees';

export class LedgerRepository {
  constructor(private readonly db: Db) {}
  /** Finds or creates an account; with `lock`, the row stays locked until the transaction ends. */
  async account(
    a: {
      orgId: string;
      assetId: string;
      kind: AccountKind;
      walletId: string | null;
      addressId: string | null;
    },
    lock = false,
  ): Promise<LedgerAccountRow> {
    const id = `la_${a.orgId}_${a.assetId}_${a.kind}_${a.addressId ?? 'org'}`; // = ledgerAccountId
    await this.db
      .insertInto('ledger_accounts')
      .values({
        id,
        org_id: a.orgId,
        asset_id: a.assetId,
        kind: a.kind,
        wallet_id: a.walletId,
        address_id: a.addressId,
      })
      .onConflict((oc) => oc.doNothing())
      .execute();
    let q = this.db.selectFrom('ledger_accounts').selectAll().where('id', '=', id);
    if (lock) q = q.forUpdate();
    return q.executeTakeFirstOrThrow();
  }
  /**
   * Adds each delta to its account's cached balance, creating missing accounts with the delta as
   * their balance (one statement). Rows are taken in the order given — callers pass them sorted by
   * id, so every transaction that moves money locks accounts in the same order (no deadlocks).
   */
  upsertBalances(
    rows: {
      id: string;
      orgId: string;
      assetId: string;
      kind: AccountKind;
      walletId: string | null;
      addressId: string | null;
      delta: bigint;
    }[],
  ): Promise<{ id: string; balance: bigint }[]> {
    if (rows.length === 0) return Promise.resolve([]);
    return this.db
      .insertInto('ledger_accounts')
      .values(
        rows.map((a) => ({
          id: a.id,
          org_id: a.orgId,
          asset_id: a.assetId,
          kind: a.kind,
          wallet_id: a.walletId,
          address_id: a.addressId,
          balance: a.delta,
        })),
      )
      .onConflict((oc) =>
        oc.column('id').doUpdateSet({ balance: sql`ledger_accounts.balance + excluded.balance` }),
      )
      .returning(['id', 'balance'])
      .execute();
  }
  /** Inserts a journal entry and its postings (one statement). */
  insertEntryWithPostings(
    e: { id: string; orgId: string; kind: string; refType: string; refId: string },
    rows: { accountId: string; amount: bigint }[],
  ): Promise<unknown> {
    const values = sql.join(rows.map((r) => sql`(${r.accountId}, ${r.amount.toString()}::numeric)`));
    return sql`with e as (
        insert into journal_entries (id, org_id, kind, ref_type, ref_id)
        values (${e.id}, ${e.orgId}, ${e.kind}, ${e.refType}, ${e.refId}) returning id)
      insert into postings (entry_id, account_id, amount)
        select e.id, v.account_id, v.amount from e, (values ${values}) as v(account_id, amount)`.execute(
      this.db,
    );
  }
  /** Cached balances of accounts, without locks (a hint; decisions are made under lock). */
  async balancesOf(ids: string[]): Promise<Map<string, bigint>> {
    if (ids.length === 0) return new Map();
    const rows = await this.db
      .selectFrom('ledger_accounts')
      .select(['id', 'balance'])
      .where('id', 'in', ids)
      .execute();
    return new Map(rows.map((r) => [r.id, r.balance]));
  }
  /** Locks the given accounts (those that exist) in id order and returns their balances. */
  async lockBalances(ids: string[]): Promise<Map<string, bigint>> {
    const rows = await this.db
      .selectFrom('ledger_accounts')
      .select(['id', 'balance'])
      .where('id', 'in', ids)
      .orderBy('id')
      .forUpdate()
      .execute();
    return new Map(rows.map((r) => [r.id, r.balance]));
  }
  insertEntry(e: {
    id: string;
    orgId: string;
    kind: string;
    refType: string;
    refId: string;
  }): Promise<unknown> {
    return this.db
      .insertInto('journal_entries')
      .values({ id: e.id, org_id: e.orgId, kind: e.kind, ref_type: e.refType, ref_id: e.refId })
      .execute();
  }
  accountsOfWallet(walletId: string): Promise<LedgerAccountRow[]> {
    return this.db.selectFrom('ledger_accounts').selectAll().where('wallet_id', '=', walletId).execute();
  }
  accountsOfOrg(orgId: string): Promise<LedgerAccountRow[]> {
    return this.db.selectFrom('ledger_accounts').selectAll().where('org_id', '=', orgId).execute();
  }
  /** Each account's cached balance next to the sum of its postings. */
  sums(orgId: string): Promise<{ id: string; balance: bigint; sum: bigint }[]> {
    return this.db
      .selectFrom('ledger_accounts as a')
      .leftJoin('postings as p', 'p.account_id', 'a.id')
      .select(['a.id', 'a.balance', sql<bigint>`coalesce(sum(p.amount), 0)::numeric(78,0)`.as('sum')])
      .where('a.org_id', '=', orgId)
      .groupBy(['a.id', 'a.balance'])
      .execute();
  }
  entries(refType: string, refId: string) {
    return this.db
      .selectFrom('journal_entries')
      .selectAll()
      .where('ref_type', '=', refType)
      .where('ref_id', '=', refId)
      .orderBy('created_at')
      .execute();
  }
}

export class DepositRepository {
  constructor(private readonly db: Db) {}
  /** Inserts unless (network, tx_id, idx) exists: a deposit is recorded once. */
  async insertIfNew(row: Insertable<DepositTable>): Promise<DepositRow | undefined> {
    return this.db
      .insertInto('deposits')
      .values(row)
      .onConflict((oc) => oc.columns(['network', 'tx_id', 'idx']).doNothing())
      .returningAll()
      .executeTakeFirst();
  }
  /** Locks a pending deposit for crediting; undefined if it is not pending any more. */
  lockPending(id: string): Promise<DepositRow | undefined> {
    return this.db
      .selectFrom('deposits')
      .selectAll()
      .where('id', '=', id)
      .where('status', '=', 'pending')
      .forUpdate()
      .executeTakeFirst();
  }
  markCredited(id: string, at: Date): Promise<unknown> {
    return this.db
      .updateTable('deposits')
      .set({ status: 'credited', credited_at: at })
      .where('id', '=', id)
      .execute();
  }
  pending(network: string): Promise<DepositRow[]> {
    return this.db
      .selectFrom('deposits')
      .selectAll()
      .where('network', '=', network)
      .where('status', '=', 'pending')
      .execute();
  }
  list(scope: Scope, walletId?: string): Promise<DepositRow[]> {
    let q = this.db
      .selectFrom('deposits')
      .innerJoin('wallets', 'wallets.id', 'deposits.wallet_id')
      .selectAll('deposits')
      .where('deposits.org_id', '=', scope.orgId)
      .where('wallets.environment', '=', scope.environment);
    if (walletId) q = q.where('deposits.wallet_id', '=', walletId);
    return q.orderBy('deposits.created_at', 'desc').limit(500).execute();
  }
}

export class TransactionRepository {
  constructor(private readonly db: Db) {}
  insert(row: Insertable<TransactionTable>): Promise<TransactionRow> {
    return this.db.insertInto('transactions').values(row).returningAll().executeTakeFirstOrThrow();
  }
  get(scope: Scope, id: string, lock = false): Promise<TransactionRow | undefined> {
    let q = this.db
      .selectFrom('transactions')
      .selectAll()
      .where('org_id', '=', scope.orgId)
      .where('environment', '=', scope.environment)
      .where('id', '=', id);
    if (lock) q = q.forUpdate();
    return q.executeTakeFirst();
  }
  getById(id: string, lock = false): Promise<TransactionRow | undefined> {
    let q = this.db.selectFrom('transactions').selectAll().where('id', '=', id);
    if (lock) q = q.forUpdate();
    return q.executeTakeFirst();
  }
  list(
    scope: Scope,
    f: { state?: string | undefined; walletId?: string | undefined; limit: number },
  ): Promise<TransactionRow[]> {
    let q = this.db
      .selectFrom('transactions')
      .selectAll()
      .where('org_id', '=', scope.orgId)
      .where('environment', '=', scope.environment);
    if (f.state) q = q.where('state', '=', f.state);
    if (f.walletId) q = q.where('wallet_id', '=', f.walletId);
    return q.orderBy('created_at', 'desc').limit(f.limit).execute();
  }
  inStates(states: string[], network?: string): Promise<TransactionRow[]> {
    let q = this.db.selectFrom('transactions').selectAll().where('state', 'in', states);
    if (network) q = q.where('network', '=', network);
    return q.orderBy('created_at').limit(1000).execute();
  }
  update(id: string, set: Partial<Insertable<TransactionTable>>): Promise<TransactionRow> {
    return this.db
      .updateTable('transactions')
      .set({ ...set, updated_at: new Date() })
      .where('id', '=', id)
      .returningAll()
      .executeTakeFirstOrThrow();
  }
  /** Rows in `states` whose intent expired by `now`. */
  dueToExpire(states: string[], now: Date): Promise<TransactionRow[]> {
    return this.db
      .selectFrom('transactions')
      .selectAll()
      .where('state', 'in', states)
      .where('expires_at', '<=', now)
      .orderBy('created_at')
      .limit(1000)
      .execute();
  }
  /**
   * A transaction to sign, locked FOR UPDATE, with its wallet's key and its vault's signed policy
   * (one statement).
   */
  async getForSigning(id: string): Promise<
    | {
        tx: TransactionRow;
        keyId: string;
        scheme: string;
        vault: Pick<VaultRow, 'id' | 'tier' | 'policy' | 'policy_signature' | 'policy_signer_key'>;
      }
    | undefined
  > {
    const r = await this.db
      .selectFrom('transactions as t')
      .innerJoin('wallets as w', 'w.id', 't.wallet_id')
      .innerJoin('vaults as v', 'v.id', 't.vault_id')
      .selectAll('t')
      .select([
        'w.key_id as w_key_id',
        'w.scheme as w_scheme',
        'v.tier as v_tier',
        'v.policy as v_policy',
        'v.policy_signature as v_policy_signature',
        'v.policy_signer_key as v_policy_signer_key',
      ])
      .where('t.id', '=', id)
      .forUpdate('t')
      .executeTakeFirst();
    if (!r) return undefined;
    const { w_key_id, w_scheme, v_tier, v_policy, v_policy_signature, v_policy_signer_key, ...tx } = r;
    return {
      tx,
      keyId: w_key_id,
      scheme: w_scheme,
      vault: {
        id: tx.vault_id,
        tier: v_tier,
        policy: v_policy,
        policy_signature: v_policy_signature,
        policy_signer_key: v_policy_signer_key,
      },
    };
  }
  /** Updates the row only if it is in `state`; undefined otherwise (a state-checked transition). */
  updateIfState(
    id: string,
    state: string,
    set: Partial<Insertable<TransactionTable>>,
  ): Promise<TransactionRow | undefined> {
    return this.db
      .updateTable('transactions')
      .set({ ...set, updated_at: new Date() })
      .where('id', '=', id)
      .where('state', '=', state)
      .returningAll()
      .executeTakeFirst();
  }
  insertApproval(row: Insertable<TransactionApprovalTable>): Promise<ApprovalRow> {
    return this.db.insertInto('transaction_approvals').values(row).returningAll().executeTakeFirstOrThrow();
  }
  approvals(transactionId: string): Promise<ApprovalRow[]> {
    return this.db
      .selectFrom('transaction_approvals')
      .selectAll()
      .where('transaction_id', '=', transactionId)
      .orderBy('created_at')
      .execute();
  }
}

export class CursorRepository {
  constructor(private readonly db: Db) {}
  async get(network: string): Promise<string | undefined> {
    const r = await this.db
      .selectFrom('chain_cursors')
      .select('cursor')
      .where('network', '=', network)
      .executeTakeFirst();
    return r?.cursor;
  }
  set(network: string, cursor: string): Promise<unknown> {
    return this.db
      .insertInto('chain_cursors')
      .values({ network, cursor })
      .onConflict((oc) => oc.column('network').doUpdateSet({ cursor, updated_at: new Date() }))
      .execute();
  }
}
