// EVM deposit scanning benchmark on a local anvil node:
// 1. backlog — 1,000 blocks, each with an ETH deposit, a test-ERC-20 deposit (to 50 addresses
//    derived from a DKLs23 threshold key) and an unrelated transfer, scanned from a cursor in
//    `maxBlocks` chunks: deposits detected per second and blocks per second;
// 2. live — a loop calling the adapter's scanDeposits, sleeping POLL ms between calls: time from a
//    block being mined (evm_mine returned) to the adapter returning its deposit. No database, no
//    ledger: the adapter alone.
// 3. credited — the real custody runtime (PGlite + migrations, three in-process MPC nodes, a 2-of-3
//    hot vault, a wallet on 'anvil', ADDRESSES_CUSTODY addresses, createCustody with its chain
//    watcher on its production timer, setInterval every POLL ms; `custos api` uses 1000 ms,
//    src/roles/api.ts, and `custos chain-watcher` 2000 ms, --interval-ms). Anvil automines: each ETH
//    deposit (eth_sendTransaction from a dev account) gets its own block, mined just after the
//    transaction enters the pool — usually, not always, before the send returns. Measured, per
//    sample, with performance.now():
//    - block → pending: from the moment the block is known to exist — the first answer of
//      eth_getTransactionReceipt that has the receipt, asked back to back right after the send (so
//      the block was mined at most one receipt call, ~1–2 ms, earlier) — until a query of the
//      deposits table shows the deposit row `pending`: the row, its ledger entry (external →
//      pending) and its audit entry are one transaction, so a visible row means the ledger has the
//      pending credit;
//    - depth → available: then the blocks up to the network's confirmation depth (anvil preset: 2,
//      i.e. one more block) are mined with evm_mine, the last one after a random 0..POLL ms pause
//      (else it would land inside the pass that has just recorded the deposit); from the moment the
//      last one's evm_mine returned (evm_mine answers once the block is mined) until the row shows
//      `credited` (same transaction as the pending → available ledger entry).
//    The bench polls the row every DB_POLL ms (resolution), on the same PGlite as the watcher.
//    A random 0..POLL ms pause between samples spreads them over the watcher's timer phase.
// Run: node --import tsx bench/chain-evm.ts [--blocks 1000] [--poll 100]
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeFunctionData, type Hex } from 'viem';
import { anvilNetwork, deployTestToken, faucet, startAnvil, TEST_TOKEN } from '../src/chains/devnet/anvil.ts';
import { LocalThresholdSigner } from '../src/chains/devnet/threshold-signer.ts';
import { createEvmAdapter } from '../src/chains/evm/adapter.ts';
import { ERC20_ABI } from '../src/chains/evm/transfer.ts';
import { type EvmNetworkConfig, resolveNetwork } from '../src/chains/networks.ts';
import { decodeCursor, type ScanCursor } from '../src/chains/types.ts';
import { loadConfig } from '../src/config.ts';
import { custodyChains, nodeChainDecoders } from '../src/custody/chains.ts';
import { createCustody } from '../src/custody/runtime.ts';
import type { Principal } from '../src/identity/principal.ts';
import { permissionsOf } from '../src/identity/rbac.ts';
import { createSecurityServices } from '../src/identity/services.ts';
import { createLogger } from '../src/log/logger.ts';
import { custodyApprovalAuthorizer, MemoryOwnerTrust } from '../src/mpc/authorizers/custody-approvals.ts';
import { startInProcessCluster } from '../src/mpc/local.ts';
import { openDatabase } from '../src/store/database.ts';
import { CursorRepository } from '../src/store/repositories/custody.ts';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const BLOCKS = arg('--blocks', 1000);
const POLL = arg('--poll', 100);
const SAMPLES = 40;
const ADDRESSES = 50;
const ADDRESSES_CUSTODY = 10;
/** How often phase 3 reads the deposit row (the resolution of its latencies), ms. */
const DB_POLL = 2;
const tStart = performance.now();
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};
const r2 = (x: number) => Math.round(x * 100) / 100;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const anvil = await startAnvil();
try {
  await deployTestToken(anvil);
  const signer = LocalThresholdSigner.create();
  const adapter = createEvmAdapter({ network: resolveNetwork(anvilNetwork(anvil)) as EvmNetworkConfig });
  const ours = Array.from({ length: ADDRESSES }, (_, i) =>
    adapter.deriveAddress(signer.publicKey(`m/0/${i}`)),
  );
  const [, ethSender, tokenSender, noise] = anvil.accounts as [Hex, Hex, Hex, Hex];
  const mint = await faucet(anvil, tokenSender, 'USDT-TEST', 10n ** 15n);
  if (!mint) throw new Error('mint failed');

  // --- backlog ---------------------------------------------------------------------------------
  await anvil.rpc('evm_setAutomine', [false]);
  const first = BigInt(await anvil.rpc<string>('eth_blockNumber')) + 1n;
  const tBuild = performance.now();
  for (let i = 0; i < BLOCKS; i++) {
    const data = encodeFunctionData({
      abi: ERC20_ABI,
      functionName: 'transfer',
      args: [ours[(i + 1) % ADDRESSES] as Hex, 1000n + BigInt(i)],
    });
    // Sequential per sender keeps nonces in order; the three senders go in parallel.
    await Promise.all([
      anvil.rpc('eth_sendTransaction', [
        { from: ethSender, to: ours[i % ADDRESSES], value: `0x${(10n ** 15n + BigInt(i)).toString(16)}` },
      ]),
      anvil.rpc('eth_sendTransaction', [{ from: tokenSender, to: TEST_TOKEN.address, data }]),
      anvil.rpc('eth_sendTransaction', [{ from: noise, to: anvil.accounts[9], value: '0x1' }]),
    ]);
    await anvil.rpc('evm_mine');
  }
  const buildMs = performance.now() - tBuild;
  const head = BigInt(await anvil.rpc<string>('eth_blockNumber'));

  const t0 = performance.now();
  let cursor: ScanCursor | null = null;
  let found = 0;
  let calls = 0;
  for (;;) {
    const r = await adapter.scanDeposits({
      addresses: ours,
      cursor,
      ...(cursor ? {} : { startBlock: first }),
      maxBlocks: 500,
    });
    calls++;
    found += r.deposits.length;
    cursor = r.cursor;
    if (cursor.blockNumber >= head) break;
  }
  const scanMs = performance.now() - t0;
  if (found !== BLOCKS * 2) throw new Error(`expected ${BLOCKS * 2} deposits, found ${found}`);

  // --- live ------------------------------------------------------------------------------------
  const mined = new Map<string, number>();
  const latencies: number[] = [];
  const scanCalls: number[] = [];
  let live: ScanCursor = cursor;
  let running = true;
  const watcher = (async () => {
    while (running) {
      const t = performance.now();
      const r = await adapter.scanDeposits({ addresses: ours, cursor: live });
      scanCalls.push(performance.now() - t);
      live = r.cursor;
      const now = performance.now();
      for (const d of r.deposits) {
        const at = mined.get(d.txId);
        if (at !== undefined) latencies.push(now - at);
      }
      await sleep(POLL);
    }
  })();
  for (let i = 0; i < SAMPLES; i++) {
    const hash = await anvil.rpc<string>('eth_sendTransaction', [
      { from: ethSender, to: ours[i % ADDRESSES], value: '0x2386f26fc10000' },
    ]);
    await anvil.rpc('evm_mine');
    mined.set(hash, performance.now());
    await sleep(POLL * 1.37);
  }
  await sleep(POLL * 3);
  running = false;
  await watcher;

  // --- credited: through the custody runtime ---------------------------------------------------
  const tSetup = performance.now();
  await anvil.rpc('evm_setAutomine', [true]);
  const dir = mkdtempSync(join(tmpdir(), 'custos-bench-evm-'));
  const handle = await openDatabase({});
  await handle.migrate();
  const net = anvilNetwork(anvil);
  const trust = new MemoryOwnerTrust();
  // No withdrawal is signed here: no presignature pools (they would only be background CPU load).
  const cluster = await startInProcessCluster({
    dir,
    kdf: { memoryCost: 1024, timeCost: 1 },
    poolSize: 0,
    nodeOptions: () => ({
      authorizers: [custodyApprovalAuthorizer({ trust, chains: nodeChainDecoders([net]) })],
    }),
  });
  const config = loadConfig({
    env: { CUSTOS_ENV: 'test', CUSTOS_ARGON2_MEMORY_KIB: '1024', CUSTOS_ARGON2_TIME_COST: '1' },
    cwd: '/nonexistent',
  });
  const logger = createLogger({ level: 'error', format: 'json', destination: process.stderr });
  const services = await createSecurityServices(config, handle.db, logger, {
    keys: {
      identityKek: randomBytes(32),
      auditHmacKey: randomBytes(32),
      auditCheckpointKey: randomBytes(32),
      generated: [],
    },
  });
  const custody = await createCustody({
    db: handle.db,
    audit: services.audit,
    coordinator: cluster.coordinator,
    chains: custodyChains({ db: handle.db, networks: [net] }),
    logger,
    watchIntervalMs: POLL,
  });
  const chainWatcher = custody.watchers.get('anvil');
  if (!chainWatcher) throw new Error('no watcher for anvil');
  const creditedPending: number[] = [];
  const depthToAvailable: number[] = [];
  const sendToMined: number[] = [];
  const receiptRoundTrip: number[] = [];
  let receiptLate = 0;
  const idlePass: number[] = [];
  let catchUpMs = 0;
  let setupMs = 0;
  let samplesMs = 0;
  let ledger: { available: string; pending: string } | undefined;
  const confirmations = (resolveNetwork(net) as EvmNetworkConfig).confirmations;
  const amount = 10n ** 16n;
  try {
    // Until the samples start, passes run by hand: the watcher's first pass scans its look-back
    // (1,000 blocks of phases 1 and 2, none of them to the custody addresses).
    await chainWatcher.stop();
    const b = await services.identity.bootstrap({
      orgName: `bench-${randomUUID().slice(0, 6)}`,
      email: 'o@bench.test',
    });
    const owner: Principal = {
      kind: 'user',
      orgId: b.org.id,
      environment: 'production',
      userId: b.user.id,
      role: 'owner',
      apiKeyId: null,
      sessionId: null,
      permissions: permissionsOf('owner'),
      mfa: true,
      rateLimit: null,
      actor: { type: 'user', id: b.user.id },
    };
    const ctx = { requestId: null, ip: null };
    const vault = await custody.service.createVault(owner, ctx, {
      name: 'evm-hot',
      tier: 'hot',
      threshold: 2,
      parties: 3,
    });
    const wallet = await custody.service.createWallet(owner, ctx, { vaultId: vault.id, network: 'anvil' });
    const addrs: string[] = [];
    for (let i = 0; i < ADDRESSES_CUSTODY; i++) {
      addrs.push((await custody.service.createAddress(owner, ctx, wallet.id, {})).address);
    }
    setupMs = performance.now() - tSetup;
    const tCatch = performance.now();
    const chainHead = async () => BigInt(await anvil.rpc<string>('eth_blockNumber'));
    for (;;) {
      await chainWatcher.tick();
      const c = await new CursorRepository(handle.db).get('anvil');
      if (c && decodeCursor(c).blockNumber >= (await chainHead())) break;
    }
    catchUpMs = performance.now() - tCatch;
    for (let i = 0; i < 20; i++) {
      const t = performance.now();
      await chainWatcher.tick();
      idlePass.push(performance.now() - t);
    }
    chainWatcher.start();

    const status = async (txId: string) =>
      (
        await handle.db
          .selectFrom('deposits')
          .select('status')
          .where('network', '=', 'anvil')
          .where('tx_id', '=', txId)
          .executeTakeFirst()
      )?.status;
    const until = async (txId: string, want: string) => {
      const deadline = performance.now() + 30_000;
      for (;;) {
        const s = await status(txId);
        if (s === want) return performance.now();
        if (performance.now() > deadline) throw new Error(`${txId}: still ${s ?? 'unseen'}, not ${want}`);
        await sleep(DB_POLL);
      }
    };
    const tSamples = performance.now();
    for (let i = 0; i < SAMPLES; i++) {
      await sleep(Math.random() * POLL);
      const tSend = performance.now();
      const hash = await anvil.rpc<string>('eth_sendTransaction', [
        { from: ethSender, to: addrs[i % ADDRESSES_CUSTODY], value: `0x${amount.toString(16)}` },
      ]);
      // Automine mines right after the transaction enters the pool, not always before the send
      // returns: the receipt is asked for back to back until it exists; tMined = that answer.
      let receipt: { blockNumber: Hex; status: Hex } | null = null;
      let asks = 0;
      for (;;) {
        const tAsk = performance.now();
        receipt = await anvil.rpc<{ blockNumber: Hex; status: Hex } | null>('eth_getTransactionReceipt', [
          hash,
        ]);
        asks++;
        if (receipt) {
          receiptRoundTrip.push(performance.now() - tAsk);
          break;
        }
        if (performance.now() - tSend > 10_000) throw new Error(`${hash}: not mined`);
      }
      const tMined = performance.now();
      if (asks > 1) receiptLate++;
      sendToMined.push(tMined - tSend);
      if (receipt.status !== '0x1') throw new Error(`${hash}: reverted`);
      creditedPending.push((await until(hash, 'pending')) - tMined);
      // Mine up to the depth: head − block + 1 ≥ confirmations; the last evm_mine is timed. The
      // pass that recorded the deposit is still running (it checks pending deposits next): mined at
      // once, the last block would nearly always land in that pass. A random 0..POLL ms pause first
      // puts it at a random point of the watcher's cycle, as a real block would be.
      let have = Number((await chainHead()) - BigInt(receipt.blockNumber) + 1n);
      let tDepth = performance.now();
      while (have < confirmations) {
        if (have === confirmations - 1) await sleep(Math.random() * POLL);
        await anvil.rpc('evm_mine');
        tDepth = performance.now();
        have++;
      }
      depthToAvailable.push((await until(hash, 'credited')) - tDepth);
    }
    samplesMs = performance.now() - tSamples;
    const bal = (await custody.service.walletBalances(owner, wallet.id)).find(
      (x) => x.assetId === 'anvil:ETH',
    );
    ledger = bal && { available: bal.available, pending: bal.pending };
    if (ledger?.available !== (amount * BigInt(SAMPLES)).toString() || ledger.pending !== '0') {
      throw new Error(`ledger: ${JSON.stringify(ledger)}`);
    }
  } finally {
    await custody.stop();
    services.stop();
    await cluster.stop();
    await handle.close();
    rmSync(dir, { recursive: true, force: true });
  }

  const result = {
    node: process.version,
    date: new Date().toISOString(),
    anvil: 'automine off, blocks mined on demand; JSON-RPC over HTTP with batching',
    backlog: {
      blocks: BLOCKS,
      watchedAddresses: ADDRESSES,
      transactionsPerBlock: 3,
      deposits: found,
      scanCalls: calls,
      buildBacklogMs: Math.round(buildMs),
      scanMs: Math.round(scanMs),
      depositsPerSecond: Math.round((found / scanMs) * 1000),
      blocksPerSecond: Math.round((BLOCKS / scanMs) * 1000),
    },
    live: {
      pollIntervalMs: POLL,
      samples: latencies.length,
      blockToDetectedP50Ms: r2(pct(latencies, 50)),
      blockToDetectedP99Ms: r2(pct(latencies, 99)),
      scanCallP50Ms: r2(pct(scanCalls, 50)),
      note: 'credited as available after confirmations (anvil preset: 2) x block time more',
    },
    credited: {
      runtime:
        'createCustody on PGlite, 3 in-process MPC nodes, 2-of-3 hot vault; chain watcher on its timer',
      anvil: 'automine (one block per deposit), evm_mine for the confirmation blocks',
      watchIntervalMs: POLL,
      confirmations,
      watchedAddresses: ADDRESSES_CUSTODY,
      samples: creditedPending.length,
      dbPollMs: DB_POLL,
      blockToPendingP50Ms: r2(pct(creditedPending, 50)),
      blockToPendingP99Ms: r2(pct(creditedPending, 99)),
      depthToAvailableP50Ms: r2(pct(depthToAvailable, 50)),
      depthToAvailableP99Ms: r2(pct(depthToAvailable, 99)),
      sendToReceiptP50Ms: r2(pct(sendToMined, 50)),
      receiptCallP50Ms: r2(pct(receiptRoundTrip, 50)),
      receiptMissingRightAfterSend: receiptLate,
      idleWatcherPassP50Ms: r2(pct(idlePass, 50)),
      setupMs: Math.round(setupMs),
      catchUpMs: Math.round(catchUpMs),
      samplesMs: Math.round(samplesMs),
      ledgerEth: ledger,
      note:
        'block → pending: first eth_getTransactionReceipt answer with the receipt (asked back to back after ' +
        'the send) → deposit row pending; ' +
        'depth → available: evm_mine of the last block to the depth returned → row credited',
    },
    totalSeconds: 0,
  };
  console.table({
    'backlog scan': {
      blocks: BLOCKS,
      deposits: found,
      ms: result.backlog.scanMs,
      'deposits/s': result.backlog.depositsPerSecond,
      'blocks/s': result.backlog.blocksPerSecond,
    },
  });
  console.table({
    'block → detected': {
      'poll ms': POLL,
      samples: latencies.length,
      'p50 ms': result.live.blockToDetectedP50Ms,
      'p99 ms': result.live.blockToDetectedP99Ms,
      'scan call p50 ms': result.live.scanCallP50Ms,
    },
  });
  console.table({
    'block → pending (ledger)': {
      'poll ms': POLL,
      samples: result.credited.samples,
      'p50 ms': result.credited.blockToPendingP50Ms,
      'p99 ms': result.credited.blockToPendingP99Ms,
      'idle pass p50 ms': result.credited.idleWatcherPassP50Ms,
    },
    'depth → available (ledger)': {
      'poll ms': POLL,
      samples: depthToAvailable.length,
      'p50 ms': result.credited.depthToAvailableP50Ms,
      'p99 ms': result.credited.depthToAvailableP99Ms,
      'idle pass p50 ms': result.credited.idleWatcherPassP50Ms,
    },
  });
  result.totalSeconds = Math.round((performance.now() - tStart) / 100) / 10;
  console.log(`bench took ${result.totalSeconds} s`);
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/chain-evm.json', `${JSON.stringify(result, null, 2)}\n`);
  console.log('wrote bench/results/chain-evm.json');
} finally {
  await anvil.stop();
}
