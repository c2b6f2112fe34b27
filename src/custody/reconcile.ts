// Reconciliation: the ledger against itself and against the chains.
//   ledger integrity   every account's cached balance equals the sum of its postings, and the
//                      balances of an organisation sum to zero per asset (double entry);
//   ledger vs chain    per address and asset, available + pending + reserved minus withdrawals
//                      already mined but not yet completed (they left the address on chain, the
//                      ledger still holds them in `reserved`) must equal the chain's balance.
// Differences are reported (and logged by the periodic job), never "fixed" silently.
import type { Logger } from '../log/logger.ts';
import {
  LedgerRepository,
  type Scope,
  TransactionRepository,
  WalletRepository,
} from '../store/repositories/custody.ts';
import { assetId, type CustodyService } from './service.ts';

export interface ReconciliationDifference {
  network: string;
  address: string;
  asset: string;
  ledger: string;
  chain: string;
  difference: string;
}

export interface ReconciliationReport {
  checkedAt: string;
  addresses: number;
  differences: ReconciliationDifference[];
  ledger: { ok: boolean; accounts: number; mismatched: string[]; unbalancedAssets: string[] };
}

/**
 * Ledger integrity is checked organisation-wide (external and fee accounts belong to no
 * environment); the ledger-vs-chain comparison covers the wallets of `environment`, or of both when
 * it is omitted (the periodic job).
 */
export async function reconcile(
  custody: CustodyService,
  orgId: string,
  environment?: Scope['environment'],
): Promise<ReconciliationReport> {
  const db = custody.db;
  const ledger = new LedgerRepository(db);
  const sums = await ledger.sums(orgId);
  const mismatched = sums.filter((s) => BigInt(s.balance) !== BigInt(s.sum)).map((s) => s.id);
  const accounts = await ledger.accountsOfOrg(orgId);
  const perAsset = new Map<string, bigint>();
  for (const a of accounts) perAsset.set(a.asset_id, (perAsset.get(a.asset_id) ?? 0n) + a.balance);
  const unbalancedAssets = [...perAsset].filter(([, v]) => v !== 0n).map(([k]) => k);

  const inflight = (await new TransactionRepository(db).inStates(['confirming'])).filter(
    (t) => t.org_id === orgId,
  );
  const differences: ReconciliationDifference[] = [];
  let n = 0;
  const wallets = new WalletRepository(db);
  const environments = environment ? [environment] : (['production', 'sandbox'] as const);
  const inScope = (
    await Promise.all(environments.map((e) => wallets.list({ orgId, environment: e })))
  ).flat();
  for (const w of inScope) {
    const chain = custody.deps.chains.get(w.network);
    if (!chain) continue;
    const native = chain.assets.find((a) => a.kind === 'native') ?? chain.assets[0]!;
    const accts = accounts.filter((a) => a.wallet_id === w.id);
    for (const addr of await new WalletRepository(db).addresses(w.id)) {
      n++;
      for (const asset of chain.assets) {
        const aid = assetId(w.network, asset.symbol);
        let expected = accts
          .filter((a) => a.address_id === addr.id && a.asset_id === aid)
          .reduce((s, a) => s + a.balance, 0n);
        for (const t of inflight) {
          if (t.address_id !== addr.id) continue;
          if (t.asset_id === aid) expected -= t.amount;
          if (asset.symbol === native.symbol) expected -= t.fee_reserved;
        }
        const onChain = await chain.getBalance(addr.address, asset);
        if (onChain !== expected) {
          differences.push({
            network: w.network,
            address: addr.address,
            asset: asset.symbol,
            ledger: expected.toString(),
            chain: onChain.toString(),
            difference: (onChain - expected).toString(),
          });
        }
      }
    }
  }
  return {
    checkedAt: new Date().toISOString(),
    addresses: n,
    differences,
    ledger: {
      ok: mismatched.length === 0 && unbalancedAssets.length === 0,
      accounts: sums.length,
      mismatched,
      unbalancedAssets,
    },
  };
}

/** Runs `reconcile` for every organisation with wallets every `intervalMs`; logs differences. */
export function startReconciliationJob(
  custody: CustodyService,
  logger: Logger,
  intervalMs: number,
): () => void {
  const run = async () => {
    const orgs = await custody.db.selectFrom('wallets').select('org_id').distinct().execute();
    for (const { org_id } of orgs) {
      const r = await reconcile(custody, org_id);
      if (r.differences.length > 0 || !r.ledger.ok) {
        logger.warn(
          { orgId: org_id, differences: r.differences, ledger: r.ledger },
          'reconciliation: differences',
        );
      }
    }
  };
  const t = setInterval(() => {
    run().catch((err) => logger.error({ err }, 'reconciliation failed'));
  }, intervalMs);
  t.unref();
  return () => clearInterval(t);
}
