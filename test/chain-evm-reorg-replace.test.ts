// Reorgs and stuck transactions on a real anvil node; every transaction of ours is signed by the
// 2-of-3 MPC nodes of an in-process cluster through its coordinator (test/helpers/mpc-signer.ts).
// Reorg: blocks holding a deposit and a threshold-signed withdrawal are orphaned with
// anvil_snapshot/anvil_revert; the scanner reports the fork point, the withdrawal's status becomes
// 'reorged', and rebroadcasting the same signed bytes gets it mined again. Replacement: with
// automine off and the base fee pushed above a pending transaction's fee cap, a same-nonce speed-up
// (or cancel) with bumped fees is mined instead.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createWalletClient, type Hex, http, parseEther } from 'viem';
import { anvil as anvilChain } from 'viem/chains';
import { type Anvil, anvilNetwork, deployTestToken, faucet, startAnvil } from '../src/chains/devnet/anvil.ts';
import { createEvmAdapter, type EvmAdapter } from '../src/chains/evm/adapter.ts';
import { type EvmNetworkConfig, resolveNetwork } from '../src/chains/networks.ts';
import type { UnsignedTransaction } from '../src/chains/types.ts';
import { ChainError } from '../src/errors.ts';
import { type MpcSigner, startMpcSigner } from './helpers/mpc-signer.ts';

let anvil: Anvil;
let signer: MpcSigner;
let adapter: EvmAdapter;
const PATH = 'm/7/0';
let ours: string;

const signed = async (tx: UnsignedTransaction) =>
  adapter.attachSignatures(tx, await Promise.all(tx.digests.map((d) => signer.sign(d.digest, PATH))));

before(async () => {
  anvil = await startAnvil();
  await deployTestToken(anvil);
  signer = await startMpcSigner();
  adapter = createEvmAdapter({ network: resolveNetwork(anvilNetwork(anvil)) as EvmNetworkConfig });
  ours = adapter.deriveAddress(signer.publicKey(PATH));
  await faucet(anvil, ours, 'ETH', parseEther('10'));
});

after(async () => {
  await signer?.stop();
  await anvil?.stop();
});

describe('reorgs', () => {
  test('orphaned deposit and withdrawal: fork point reported, status reorged, rebroadcast mines again', async () => {
    const wallet = createWalletClient({
      account: anvil.accounts[2]!,
      transport: http(anvil.rpcUrl),
      chain: anvilChain,
    });
    const first = await adapter.scanDeposits({ addresses: [ours], cursor: null });
    const forkAt = first.cursor.blockNumber;
    const snapshot = await anvil.rpc<string>('evm_snapshot');

    const depositHash = await wallet.sendTransaction({ to: ours as Hex, value: parseEther('0.5') });
    const w = await signed(
      await adapter.buildTransfer({
        from: ours,
        to: anvil.accounts[3]!,
        asset: adapter.asset('ETH'),
        amount: 12345n,
      }),
    );
    await adapter.broadcast(w);
    await anvil.rpc('anvil_mine', ['0x1']);
    const seen = await adapter.scanDeposits({ addresses: [ours], cursor: first.cursor });
    assert.equal(seen.deposits.length, 1);
    assert.equal(seen.deposits[0]!.txId, depositHash);
    const mined = await adapter.getTransactionStatus({ txId: w.txId });
    assert.ok(mined.blockHash);

    // The chain forgets those blocks and grows a longer, different branch.
    assert.equal(await anvil.rpc('evm_revert', [snapshot]), true);
    await anvil.rpc('anvil_mine', ['0x5']);

    const r = await adapter.scanDeposits({ addresses: [ours], cursor: seen.cursor });
    assert.ok(r.reorg, 'reorg reported');
    assert.equal(r.reorg.forkBlockNumber, forkAt);
    assert.equal(r.reorg.deep, false);
    assert.deepEqual(
      r.reorg.orphaned.map((b) => b.number),
      Array.from({ length: Number(seen.cursor.blockNumber - forkAt) }, (_, i) => forkAt + 1n + BigInt(i)),
    );
    assert.equal(r.deposits.length, 0);
    assert.equal(r.cursor.blockNumber, forkAt);

    // Rescanning the new branch: the deposit is gone (it was never re-sent).
    const again = await adapter.scanDeposits({ addresses: [ours], cursor: r.cursor });
    assert.equal(again.reorg, null);
    assert.equal(again.deposits.length, 0);
    assert.equal(again.cursor.blockNumber, again.head);

    // The withdrawal left the chain: reorged, its nonce free again.
    const st = await adapter.getTransactionStatus({
      txId: w.txId,
      from: ours,
      nonce: w.summary.nonce!,
      knownBlockHash: mined.blockHash,
    });
    assert.equal(st.state, 'reorged');
    assert.equal(st.nonceConsumed, false);
    // The same signed bytes go out again (no new signature needed) and are mined in a new block.
    await adapter.broadcast(w);
    await anvil.rpc('anvil_mine', ['0x2']);
    const back = await adapter.getTransactionStatus({ txId: w.txId, knownBlockHash: mined.blockHash });
    assert.equal(back.state, 'reorged', 'still reported against the old block');
    const now = await adapter.getTransactionStatus({ txId: w.txId, knownBlockHash: back.blockHash! });
    assert.equal(now.state, 'confirmed');
    assert.notEqual(now.blockHash, mined.blockHash);
  });

  test('a reorg deeper than the cursor history is reported as deep', async () => {
    const start = await adapter.scanDeposits({ addresses: [ours], cursor: null });
    const snapshot = await anvil.rpc<string>('evm_snapshot');
    await anvil.rpc('anvil_mine', ['0x6']);
    const shallow = await adapter.scanDeposits({ addresses: [ours], cursor: start.cursor, maxBlocks: 6 });
    // Forget the history to simulate a reorg deeper than what the cursor remembers.
    const truncated = { ...shallow.cursor, recent: shallow.cursor.recent.slice(-2) };
    await anvil.rpc('evm_revert', [snapshot]);
    await anvil.rpc('anvil_mine', ['0x7']);
    const r = await adapter.scanDeposits({ addresses: [ours], cursor: truncated });
    assert.ok(r.reorg?.deep);
    assert.ok(r.cursor.blockNumber < truncated.recent[0]!.number);
  });
});

describe('stuck transactions', () => {
  test('speed-up and cancel at the same nonce with bumped fees', async () => {
    await anvil.rpc('evm_setAutomine', [false]);
    try {
      const recipient = anvil.accounts[4]!;
      const before = await adapter.getBalance(recipient, adapter.asset('ETH'));
      const block = await adapter.client.getBlock({ blockTag: 'latest' });
      const base = block.baseFeePerGas!;
      // Fee cap just at today's base fee, then the base fee jumps: the transaction is stuck.
      const low = await adapter.buildTransfer({
        from: ours,
        to: recipient,
        asset: adapter.asset('ETH'),
        amount: 1000n,
        fee: { maxFeePerGas: base + 1n, maxPriorityFeePerGas: 1n },
      });
      const lowSigned = await signed(low);
      await adapter.broadcast(lowSigned);
      // Nothing is mined until we say so: the transaction sits in the mempool like an underpriced
      // one on a busy network. (anvil evicts a transaction whose fee cap falls below the base fee
      // rather than keeping it queued, so the base fee is left alone here.)
      const stuck = await adapter.getTransactionStatus({ txId: lowSigned.txId });
      assert.equal(stuck.state, 'pending');
      assert.equal(stuck.confirmations, 0);

      await assert.rejects(
        adapter.buildReplacement(low, { mode: 'speed-up', bumpPercent: 5 }),
        (e: unknown) => e instanceof ChainError && e.code === 'CUSTOS_CHAIN_REPLACEMENT_UNDERPRICED',
      );
      const fast = await adapter.buildReplacement(low, { mode: 'speed-up' });
      assert.equal(fast.summary.nonce, low.summary.nonce);
      assert.equal(fast.summary.amount, 1000n);
      assert.ok(fast.fee.evm!.maxFeePerGas! >= (low.fee.evm!.maxFeePerGas! * 115n) / 100n);
      assert.ok(fast.fee.evm!.maxPriorityFeePerGas! >= (low.fee.evm!.maxPriorityFeePerGas! * 115n) / 100n);
      const fastSigned = await signed(fast);
      assert.notEqual(fastSigned.txId, lowSigned.txId);
      await adapter.broadcast(fastSigned);
      await anvil.rpc('evm_mine');
      await anvil.rpc('evm_mine');
      const ok = await adapter.getTransactionStatus({ txId: fastSigned.txId });
      assert.equal(ok.state, 'confirmed');
      const old = await adapter.getTransactionStatus({
        txId: lowSigned.txId,
        from: ours,
        nonce: low.summary.nonce!,
      });
      assert.equal(old.state, 'dropped');
      assert.equal(old.nonceConsumed, true);
      assert.equal(await adapter.getBalance(recipient, adapter.asset('ETH')), before + 1000n);

      // Cancel: the stuck transfer is replaced by 0 ETH to ourselves.
      const base2 = (await adapter.client.getBlock({ blockTag: 'latest' })).baseFeePerGas!;
      const low2 = await adapter.buildTransfer({
        from: ours,
        to: recipient,
        asset: adapter.asset('ETH'),
        amount: 5000n,
        fee: { maxFeePerGas: base2 + 1n, maxPriorityFeePerGas: 1n },
      });
      await adapter.broadcast(await signed(low2));
      const cancel = await adapter.buildReplacement(low2, { mode: 'cancel', bumpPercent: 50 });
      assert.equal(cancel.summary.to, ours);
      assert.equal(cancel.summary.amount, 0n);
      assert.equal(cancel.summary.nonce, low2.summary.nonce);
      const cancelSigned = await signed(cancel);
      await adapter.broadcast(cancelSigned);
      await anvil.rpc('evm_mine');
      await anvil.rpc('evm_mine');
      assert.equal((await adapter.getTransactionStatus({ txId: cancelSigned.txId })).state, 'confirmed');
      assert.equal(await adapter.getBalance(recipient, adapter.asset('ETH')), before + 1000n, 'cancelled');
    } finally {
      await anvil.rpc('evm_setAutomine', [true]);
    }
  });

  test('a different transaction at a used nonce is a nonce conflict, not a silent success', async () => {
    const tx = await adapter.buildTransfer({
      from: ours,
      to: anvil.accounts[5]!,
      asset: adapter.asset('ETH'),
      amount: 7n,
    });
    await adapter.broadcast(await signed(tx));
    // Same nonce, other recipient: the node says "nonce too low" and the hash is unknown.
    const clash = await adapter.buildReplacement(tx, { mode: 'cancel' });
    await assert.rejects(
      adapter.broadcast(await signed(clash)),
      (e: unknown) => e instanceof ChainError && e.code === 'CUSTOS_CHAIN_NONCE_CONFLICT',
    );
  });
});
