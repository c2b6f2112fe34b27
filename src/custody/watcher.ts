// The chain watcher for one network: each tick it
//   1. scans new blocks for deposits to our addresses (resumable from the cursor stored in
//      chain_cursors) and records each once — (network, txId, index) is unique — crediting it to
//      `pending` (external → pending);
//   2. moves pending deposits to `available` once the chain's confirmation depth is reached;
//   3. advances broadcast/confirming withdrawals (broadcast → confirming → completed | failed);
//   4. expires withdrawals whose intent ran out.
// Every ledger entry is written with its audit entry in one transaction. The same watcher serves the
// test chain and real networks (EVM, Tron): a ScanResult with `reorg` set moves deposits above the
// fork back to pending (./chain-deposits.ts), a pending deposit whose transaction vanished is
// orphaned, one found again is re-credited. Each pass first takes (or renews) the PostgreSQL lease
// `chain-watcher:<network>` (./leases.ts), so several watchers on one database — `custos dev`,
// `custos chain-watcher` replicas — never work the same network at once.
import { randomUUID } from 'node:crypto';
import { type ChainAdapter, decodeCursor, encodeCursor } from '../chains/types.ts';
import type { Logger } from '../log/logger.ts';
import {
  CursorRepository,
  DepositRepository,
  type DepositRow,
  TransactionRepository,
  WalletRepository,
} from '../store/repositories/custody.ts';
import { orphanDeposit, redetectDeposit, reorgDeposits } from './chain-deposits.ts';
import { leaseHolderId, PgLease } from './leases.ts';
import { addressAccount, Ledger, orgAccount } from './ledger.ts';
import { assetId, type CustodyService } from './service.ts';
import { WATCHER, type WithdrawalService } from './withdrawals.ts';

export interface TickResult {
  detected: number;
  credited: number;
  advanced: number;
  expired: number;
  /** Deposits moved back to pending by a reorg, or orphaned because their transaction vanished. */
  reorged?: number;
  orphaned?: number;
  /** False when another watcher holds this network's lease (nothing was done). */
  leased?: boolean;
}

export interface ChainWatcherOptions {
  intervalMs: number;
  /** Lease lifetime (default max(30 s, 10 × intervalMs)); renewed at every pass. */
  leaseTtlMs?: number;
  /** Lease holder id (default: role@host:pid:random). */
  holder?: string;
  /** First block to scan when no cursor is stored (default: head − lookbackBlocks; the test chain: 0). */
  startBlock?: bigint;
  /** Default 1000. */
  lookbackBlocks?: number;
  /** In-flight withdrawals followed at once in a pass (default 8). */
  advanceConcurrency?: number;
}

const ADVANCE_CONCURRENCY = 8;

/** Runs `fn` over `items`, at most `limit` at a time; every item is tried, then the first error is thrown. */
async function forEachConcurrently<T>(
  items: T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const errors: unknown[] = [];
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++]!;
      try {
        await fn(item);
      } catch (e) {
        errors.push(e);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(Math.max(1, limit), items.length) }, worker));
  if (errors.length > 0) throw errors[0];
}

const EXPIRY_EVERY_MS = 1000;

export class ChainWatcher {
  readonly #ledger = new Ledger();
  #lastExpiry = 0;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<TickResult> | undefined;
  readonly #log: Logger;
  readonly lease: PgLease;

  constructor(
    private readonly custody: CustodyService,
    private readonly withdrawals: WithdrawalService,
    readonly chain: ChainAdapter,
    private readonly opts: ChainWatcherOptions = { intervalMs: 1000 },
  ) {
    this.#log = custody.deps.logger.child({ component: 'chain-watcher', network: chain.network });
    this.lease = new PgLease(
      custody.db,
      `chain-watcher:${chain.network}`,
      opts.holder ?? leaseHolderId('chain-watcher'),
      opts.leaseTtlMs ?? Math.max(30_000, 10 * opts.intervalMs),
    );
  }

  start(): void {
    if (this.#timer) return;
    this.#timer = setInterval(() => {
      if (this.#running) return;
      this.#pass(false).catch((err) => this.#log.error({ err }, 'chain watcher tick failed'));
    }, this.opts.intervalMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#running?.catch(() => undefined);
    await this.lease.release().catch(() => undefined);
  }

  /** One pass (expiry included); concurrent calls share the running one. */
  tick(): Promise<TickResult> {
    return this.#pass(true);
  }

  #pass(expire: boolean): Promise<TickResult> {
    this.#running ??= this.#tick(expire).finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  async #tick(expire: boolean): Promise<TickResult> {
    const db = this.custody.db;
    const network = this.chain.network;
    const out: TickResult = { detected: 0, credited: 0, advanced: 0, expired: 0, reorged: 0, orphaned: 0 };
    if (!(await this.lease.acquire())) return { ...out, leased: false };
    out.leased = true;

    // 1. Deposits. Tokens registered at run time (POST /v1/assets, maybe by another process) are
    // scanned too, and credited only to addresses of the organisation that registered them.
    const tokenOwners = await this.custody.syncRegisteredTokens(network);
    const addresses = await new WalletRepository(db).addressesOnNetwork(network);
    const byAddress = new Map(addresses.map((a) => [a.address, a]));
    const stored = await new CursorRepository(db).get(network);
    const scan = await this.chain.scanDeposits({
      addresses: byAddress.keys(),
      cursor: stored ? decodeCursor(stored) : null,
      startBlock: stored ? 0n : await this.#startBlock(),
    });
    if (scan.reorg) {
      out.reorged = await reorgDeposits(this.custody, network, scan.reorg.forkBlockNumber);
      this.#log.warn(
        {
          forkBlockNumber: scan.reorg.forkBlockNumber.toString(),
          orphanedBlocks: scan.reorg.orphaned.length,
          deep: scan.reorg.deep,
          deposits: out.reorged,
        },
        'chain reorganisation: deposits above the fork are pending again',
      );
    }
    for (const d of scan.deposits) {
      const a = byAddress.get(d.to);
      if (!a) continue;
      const owner = tokenOwners.get(d.asset.symbol);
      if (owner !== undefined && owner !== a.org_id) continue;
      const aid = assetId(network, d.asset.symbol);
      const row = await this.custody.write(async (trx) => {
        const inserted = await new DepositRepository(trx).insertIfNew({
          id: `dep_${randomUUID().replaceAll('-', '').slice(0, 20)}`,
          org_id: a.org_id,
          wallet_id: a.wallet_id,
          address_id: a.id,
          network,
          tx_id: d.txId,
          idx: d.index,
          asset_id: aid,
          amount: d.amount,
          from_address: d.from,
          block_number: d.blockNumber,
          block_hash: d.blockHash,
          status: 'pending',
          credited_at: null,
        });
        if (!inserted) {
          // Seen before: recorded once; but it may have been orphaned by a reorg, or moved block.
          return (await redetectDeposit(this.custody, trx, d)) === 'redetected' ? d : undefined;
        }
        await this.#ledger.post(trx, {
          orgId: a.org_id,
          kind: 'deposit.detected',
          ref: { type: 'deposit', id: inserted.id },
          postings: [
            { account: orgAccount(a.org_id, aid, 'external'), amount: -d.amount },
            { account: addressAccount(a.org_id, aid, 'pending', a.wallet_id, a.id), amount: d.amount },
          ],
        });
        await this.custody.deps.audit.append(trx, {
          orgId: a.org_id,
          actor: WATCHER,
          action: 'deposit.detected',
          target: { type: 'deposit', id: inserted.id },
          details: {
            network,
            txId: d.txId,
            address: d.to,
            asset: d.asset.symbol,
            amount: d.amount.toString(),
            blockNumber: d.blockNumber.toString(),
          },
        });
        return inserted;
      });
      if (row) out.detected++;
    }
    await new CursorRepository(db).set(network, encodeCursor(scan.cursor));

    // 2. Confirmations of pending deposits.
    for (const d of await new DepositRepository(db).pending(network)) {
      const s = await this.chain.getTransactionStatus({ txId: d.tx_id });
      // A reorg cleared block_hash (./chain-deposits.ts): credit only once the scan has found the
      // deposit again in a canonical block, and the status agrees on that block.
      const sameBlock =
        this.chain.family === 'test' || (s.blockHash ?? '').toLowerCase() === d.block_hash.toLowerCase();
      if (s.state === 'confirmed' && sameBlock) {
        if (await this.#credit(d, s.confirmations)) out.credited++;
      } else if (s.state === 'failed' || (s.state === 'dropped' && d.block_hash === '')) {
        // Its block was reorganised away and the chain no longer knows the transaction, or it
        // reverted: the pending credit is reversed (and restored if the scan finds it again).
        if (await orphanDeposit(this.custody, d.id, s.state)) out.orphaned = (out.orphaned ?? 0) + 1;
      }
    }

    // 3. Withdrawals in flight.
    // One query for all of them; a row is written only when the chain moved it (each write is a
    // state-checked transition, so a row another worker moved meanwhile is left alone). Several at
    // a time: each is its own transaction, and a pass must not take longer as more are in flight.
    const inFlight = await new TransactionRepository(db).inStates(['broadcast', 'confirming'], network);
    await forEachConcurrently(inFlight, this.opts.advanceConcurrency ?? ADVANCE_CONCURRENCY, async (t) => {
      if (await this.withdrawals.advance(t)) out.advanced++;
    });

    // 4. Expiry (intents live for hours: on the timer, once a second is plenty whatever the interval).
    const now = Date.now();
    if (expire || now - this.#lastExpiry >= EXPIRY_EVERY_MS) {
      this.#lastExpiry = now;
      out.expired = await this.withdrawals.expireDue();
    }
    return out;
  }

  async #startBlock(): Promise<bigint> {
    if (this.opts.startBlock !== undefined) return this.opts.startBlock;
    if (this.chain.family === 'test') return 0n;
    // Our addresses are fresh HD children, so nothing older than them can be a deposit; a bounded
    // look-back covers addresses created shortly before the first pass.
    const head = await this.chain.getHead();
    const back = BigInt(this.opts.lookbackBlocks ?? 1000);
    return head.number > back ? head.number - back : 0n;
  }

  async #credit(d: DepositRow, confirmations: number): Promise<boolean> {
    return this.custody.write(async (trx) => {
      const repo = new DepositRepository(trx);
      const row = await repo.lockPending(d.id);
      if (!row) return false;
      await this.#ledger.post(trx, {
        orgId: d.org_id,
        kind: 'deposit.credited',
        ref: { type: 'deposit', id: d.id },
        postings: [
          {
            account: addressAccount(d.org_id, d.asset_id, 'pending', d.wallet_id, d.address_id),
            amount: -d.amount,
          },
          {
            account: addressAccount(d.org_id, d.asset_id, 'available', d.wallet_id, d.address_id),
            amount: d.amount,
          },
        ],
      });
      await repo.markCredited(d.id, new Date());
      await this.custody.deps.audit.append(trx, {
        orgId: d.org_id,
        actor: WATCHER,
        action: 'deposit.credited',
        target: { type: 'deposit', id: d.id },
        details: { network: d.network, txId: d.tx_id, amount: d.amount.toString(), confirmations },
      });
      return true;
    });
  }
}
