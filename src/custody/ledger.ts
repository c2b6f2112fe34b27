// The double-entry ledger. Amounts are bigint base units; every journal entry's postings sum to
// zero per asset; entries and postings are immutable (the database refuses UPDATE/DELETE), so a
// correction is a new entry. Accounts:
//   per address × asset   available  spendable
//                         pending    deposits seen on chain, not yet deep enough
//                         reserved   withdrawals in flight (amount + maximum fee)
//   per org × asset       external   the outside world (deposits come from it, withdrawals go to it)
//                         fees       network fees paid
// So deposit detected: external → pending; confirmed: pending → available; withdrawal created:
// available → reserved; completed: reserved → external (+ fees, and any unused fee back to
// available); failed/cancelled/rejected/expired: reserved → available. The sum of all balances of
// an organisation is always zero.
import { randomUUID } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import { CustosError } from '../errors.ts';
import { type AccountKind, LedgerRepository } from '../store/repositories/custody.ts';
import type { Database } from '../store/schema.ts';

export interface AccountRef {
  orgId: string;
  assetId: string;
  kind: AccountKind;
  walletId: string | null;
  addressId: string | null;
}

export interface Posting {
  account: AccountRef;
  /** Signed amount; the postings of one entry sum to zero per asset. */
  amount: bigint;
}

export interface JournalInput {
  orgId: string;
  kind: string;
  ref: { type: string; id: string };
  postings: Posting[];
}

export function addressAccount(
  orgId: string,
  assetId: string,
  kind: 'available' | 'pending' | 'reserved',
  walletId: string,
  addressId: string,
): AccountRef {
  return { orgId, assetId, kind, walletId, addressId };
}

export function orgAccount(orgId: string, assetId: string, kind: 'external' | 'fees'): AccountRef {
  return { orgId, assetId, kind, walletId: null, addressId: null };
}

export function ledgerAccountId(a: AccountRef): string {
  return `la_${a.orgId}_${a.assetId}_${a.kind}_${a.addressId ?? 'org'}`;
}

/** A guarded posting would have left an account below zero; the caller's transaction rolls back. */
export class LedgerOverdraw extends Error {
  constructor(readonly accountId: string) {
    super(`ledger: account ${accountId} would go below zero`);
  }
}

export class Ledger {
  /**
   * Writes one balanced, immutable entry inside `trx` and updates the cached balances. With
   * `nonNegative`, those accounts' balances after the entry must be ≥ 0, or it throws LedgerOverdraw:
   * the balance update takes the row locks and the check sees the latest committed balance, so this
   * is a reservation in one statement (no separate SELECT … FOR UPDATE held across the transaction).
   */
  async post(
    trx: Transaction<Database>,
    input: JournalInput,
    opts: { nonNegative?: AccountRef[] } = {},
  ): Promise<string> {
    const sums = new Map<string, bigint>();
    for (const p of input.postings) {
      if (typeof p.amount !== 'bigint') throw new TypeError('ledger: amounts are bigint');
      sums.set(p.account.assetId, (sums.get(p.account.assetId) ?? 0n) + p.amount);
    }
    for (const [asset, s] of sums) {
      if (s !== 0n) {
        throw new CustosError(
          'CUSTOS_INTERNAL',
          `ledger: entry ${input.kind} does not balance for ${asset} (${s})`,
        );
      }
    }
    const repo = new LedgerRepository(trx);
    const id = `je_${randomUUID()}`;
    const deltas = new Map<string, bigint>();
    const accounts = new Map<string, AccountRef>();
    const rows: { accountId: string; amount: bigint }[] = [];
    for (const p of input.postings) {
      if (p.amount === 0n) continue;
      const accountId = ledgerAccountId(p.account);
      accounts.set(accountId, p.account);
      rows.push({ accountId, amount: p.amount });
      deltas.set(accountId, (deltas.get(accountId) ?? 0n) + p.amount);
    }
    if (rows.length === 0) {
      await repo.insertEntry({
        id,
        orgId: input.orgId,
        kind: input.kind,
        refType: input.ref.type,
        refId: input.ref.id,
      });
      return id;
    }
    // Two statements per entry: (1) the balances — missing accounts created, row locks taken in
    // account-id order in every transaction that moves money (no deadlocks); (2) the entry and its
    // postings (which reference the accounts, so they come second).
    const after = await repo.upsertBalances(
      [...deltas.keys()].sort().map((accountId) => ({
        id: accountId,
        ...accounts.get(accountId)!,
        delta: deltas.get(accountId)!,
      })),
    );
    if (opts.nonNegative?.length) {
      const balances = new Map(after.map((r) => [r.id, BigInt(r.balance)]));
      for (const a of opts.nonNegative) {
        const id = ledgerAccountId(a);
        const b = balances.get(id);
        if (b !== undefined && b < 0n) throw new LedgerOverdraw(id);
      }
    }
    await repo.insertEntryWithPostings(
      { id, orgId: input.orgId, kind: input.kind, refType: input.ref.type, refId: input.ref.id },
      rows,
    );
    return id;
  }

  /** Unlocked read of cached balances (missing accounts are 0): a hint, never a decision. */
  async peekBalances(db: Kysely<Database>, accounts: AccountRef[]): Promise<bigint[]> {
    const ids = accounts.map(ledgerAccountId);
    const found = await new LedgerRepository(db).balancesOf([...new Set(ids)]);
    return ids.map((id) => found.get(id) ?? 0n);
  }

  /** Locks the accounts that exist, in id order, until the transaction ends; missing ones are 0. */
  async lockBalances(trx: Transaction<Database>, accounts: AccountRef[]): Promise<bigint[]> {
    const ids = accounts.map(ledgerAccountId);
    const found = await new LedgerRepository(trx).lockBalances([...new Set(ids)]);
    return ids.map((id) => found.get(id) ?? 0n);
  }
}

export interface BalanceView {
  assetId: string;
  available: string;
  pending: string;
  reserved: string;
  total: string;
}

/** Sums per asset of accounts (address accounts of a wallet, or one address). */
export function balanceViews(
  rows: { asset_id: string; kind: string; balance: bigint; address_id: string | null }[],
  addressId?: string,
): BalanceView[] {
  const by = new Map<string, { available: bigint; pending: bigint; reserved: bigint }>();
  for (const r of rows) {
    if (addressId && r.address_id !== addressId) continue;
    if (r.kind !== 'available' && r.kind !== 'pending' && r.kind !== 'reserved') continue;
    const b = by.get(r.asset_id) ?? { available: 0n, pending: 0n, reserved: 0n };
    b[r.kind] += r.balance;
    by.set(r.asset_id, b);
  }
  return [...by.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([assetId, b]) => ({
      assetId,
      available: b.available.toString(),
      pending: b.pending.toString(),
      reserved: b.reserved.toString(),
      total: (b.available + b.pending + b.reserved).toString(),
    }));
}
