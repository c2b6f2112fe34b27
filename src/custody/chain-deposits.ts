// Deposit corrections for real chains (reorgs), used by the chain watcher (./watcher.ts):
//   reorgDeposits   a scan reported a reorg at fork block F: every deposit above F goes back to
//                   `pending` — a credited one is debited from `available` back to `pending`
//                   (entry `deposit.reorged`) — and waits to be found again;
//   redetectDeposit the scan found a deposit we already know: if it had been orphaned it is
//                   credited to `pending` again; if it moved to another block, the block is updated;
//   orphanDeposit   a pending deposit hit by a reorg whose transaction the chain no longer knows
//                   (dropped), or one that failed: pending → external (entry `deposit.orphaned`), status `orphaned`.
// Each ledger entry is written with its audit entry in one transaction, under the deposit's row lock.
import type { Transaction } from 'kysely';
import type { Deposit } from '../chains/types.ts';
import type { DepositRow } from '../store/repositories/custody.ts';
import type { Database } from '../store/schema.ts';
import { addressAccount, Ledger, orgAccount } from './ledger.ts';
import type { CustodyService } from './service.ts';
import { WATCHER } from './withdrawals.ts';

const ledger = new Ledger();

function lockDeposit(trx: Transaction<Database>, id: string): Promise<DepositRow | undefined> {
  return trx.selectFrom('deposits').selectAll().where('id', '=', id).forUpdate().executeTakeFirst();
}

/** Deposits above the fork block go back to pending; returns how many were affected. */
export async function reorgDeposits(
  custody: CustodyService,
  network: string,
  forkBlockNumber: bigint,
): Promise<number> {
  const rows = await custody.db
    .selectFrom('deposits')
    .select('id')
    .where('network', '=', network)
    .where('block_number', '>', forkBlockNumber)
    .where('status', 'in', ['pending', 'credited'])
    .execute();
  let n = 0;
  for (const { id } of rows) {
    await custody.write(async (trx) => {
      const d = await lockDeposit(trx, id);
      if (!d || (d.status !== 'pending' && d.status !== 'credited')) return;
      if (d.status === 'credited') {
        await ledger.post(trx, {
          orgId: d.org_id,
          kind: 'deposit.reorged',
          ref: { type: 'deposit', id: d.id },
          postings: [
            {
              account: addressAccount(d.org_id, d.asset_id, 'available', d.wallet_id, d.address_id),
              amount: -d.amount,
            },
            {
              account: addressAccount(d.org_id, d.asset_id, 'pending', d.wallet_id, d.address_id),
              amount: d.amount,
            },
          ],
        });
      }
      // block_hash '' = "not in a canonical block we know of": set again when the scan re-finds it.
      await trx
        .updateTable('deposits')
        .set({ status: 'pending', credited_at: null, block_hash: '' })
        .where('id', '=', d.id)
        .execute();
      await custody.deps.audit.append(trx, {
        orgId: d.org_id,
        actor: WATCHER,
        action: 'deposit.reorged',
        target: { type: 'deposit', id: d.id },
        details: {
          network,
          txId: d.tx_id,
          blockNumber: d.block_number.toString(),
          forkBlockNumber: forkBlockNumber.toString(),
          was: d.status,
        },
      });
      n++;
    });
  }
  return n;
}

/**
 * A deposit found again by a scan (same network, tx and index). Returns 'redetected' when an
 * orphaned one is credited to pending again, 'moved' when it now sits in another block, else null.
 */
export async function redetectDeposit(
  custody: CustodyService,
  trx: Transaction<Database>,
  dep: Deposit,
): Promise<'redetected' | 'moved' | null> {
  const d = await trx
    .selectFrom('deposits')
    .selectAll()
    .where('network', '=', dep.network)
    .where('tx_id', '=', dep.txId)
    .where('idx', '=', dep.index)
    .forUpdate()
    .executeTakeFirst();
  if (!d) return null;
  const sameBlock = d.block_hash.toLowerCase() === dep.blockHash.toLowerCase();
  if (d.status === 'orphaned') {
    await ledger.post(trx, {
      orgId: d.org_id,
      kind: 'deposit.detected',
      ref: { type: 'deposit', id: d.id },
      postings: [
        { account: orgAccount(d.org_id, d.asset_id, 'external'), amount: -d.amount },
        {
          account: addressAccount(d.org_id, d.asset_id, 'pending', d.wallet_id, d.address_id),
          amount: d.amount,
        },
      ],
    });
  } else if (sameBlock) {
    return null;
  }
  await trx
    .updateTable('deposits')
    .set({
      status: d.status === 'orphaned' ? 'pending' : d.status,
      block_number: dep.blockNumber,
      block_hash: dep.blockHash,
    })
    .where('id', '=', d.id)
    .execute();
  await custody.deps.audit.append(trx, {
    orgId: d.org_id,
    actor: WATCHER,
    action: d.status === 'orphaned' ? 'deposit.detected' : 'deposit.moved',
    target: { type: 'deposit', id: d.id },
    details: {
      network: dep.network,
      txId: dep.txId,
      blockNumber: dep.blockNumber.toString(),
      previousBlockNumber: d.block_number.toString(),
    },
  });
  return d.status === 'orphaned' ? 'redetected' : 'moved';
}

/** A pending deposit whose transaction is gone: its pending credit is reversed. */
export async function orphanDeposit(custody: CustodyService, id: string, reason: string): Promise<boolean> {
  return custody.write(async (trx) => {
    const d = await lockDeposit(trx, id);
    if (d?.status !== 'pending') return false;
    await ledger.post(trx, {
      orgId: d.org_id,
      kind: 'deposit.orphaned',
      ref: { type: 'deposit', id: d.id },
      postings: [
        {
          account: addressAccount(d.org_id, d.asset_id, 'pending', d.wallet_id, d.address_id),
          amount: -d.amount,
        },
        { account: orgAccount(d.org_id, d.asset_id, 'external'), amount: d.amount },
      ],
    });
    await trx.updateTable('deposits').set({ status: 'orphaned' }).where('id', '=', d.id).execute();
    await custody.deps.audit.append(trx, {
      orgId: d.org_id,
      actor: WATCHER,
      action: 'deposit.orphaned',
      target: { type: 'deposit', id: d.id },
      details: { network: d.network, txId: d.tx_id, amount: d.amount.toString(), reason },
    });
    return true;
  });
}
