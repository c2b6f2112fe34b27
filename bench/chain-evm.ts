// EVM deposit scanning benchmark on a local anvil node:
// 1. backlog — 1,000 blocks, each with an ETH deposit, a test-ERC-20 deposit (to 50 addresses
//    derived from a DKLs23 threshold key) and an unrelated transfer, scanned from a cursor in
//    `maxBlocks` chunks: deposits detected per second and blocks per second;
// 2. live — a watcher polling every POLL ms: time from a block being mined to its deposit being
//    detected (credited as pending). Crediting as available adds confirmations × block time.
// Run: node --import tsx bench/chain-evm.ts [--blocks 1000] [--poll 100]
import { mkdirSync, writeFileSync } from 'node:fs';
import { encodeFunctionData, type Hex } from 'viem';
import { anvilNetwork, deployTestToken, faucet, startAnvil, TEST_TOKEN } from '../src/chains/devnet/anvil.ts';
import { LocalThresholdSigner } from '../src/chains/devnet/threshold-signer.ts';
import { createEvmAdapter } from '../src/chains/evm/adapter.ts';
import { ERC20_ABI } from '../src/chains/evm/transfer.ts';
import { type EvmNetworkConfig, resolveNetwork } from '../src/chains/networks.ts';
import type { ScanCursor } from '../src/chains/types.ts';

const arg = (name: string, dflt: number) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const BLOCKS = arg('--blocks', 1000);
const POLL = arg('--poll', 100);
const SAMPLES = 40;
const ADDRESSES = 50;
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
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/chain-evm.json', `${JSON.stringify(result, null, 2)}\n`);
  console.log('wrote bench/results/chain-evm.json');
} finally {
  await anvil.stop();
}
