// EVM adapter against a real anvil node: deposits of ETH and the test ERC-20 sent by an independent
// viem client to an address derived from a DKLs23 threshold key are scanned and confirmed;
// withdrawals built by the adapter are signed by the 2-of-3 MPC nodes (nodes 1 and 3 of an in-process
// cluster, test/helpers/mpc-signer.ts) through the coordinator — no single-key signer in the path —
// broadcast, mined and change the recipient's on-chain balance.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createWalletClient, type Hex, http, parseEther } from 'viem';
import { anvil as anvilChain } from 'viem/chains';
import {
  type Anvil,
  anvilNetwork,
  deployTestToken,
  faucet,
  startAnvil,
  TEST_TOKEN,
} from '../src/chains/devnet/anvil.ts';
import { createEvmAdapter, type EvmAdapter } from '../src/chains/evm/adapter.ts';
import { ERC20_ABI } from '../src/chains/evm/transfer.ts';
import { type EvmNetworkConfig, resolveNetwork } from '../src/chains/networks.ts';
import type { ScanCursor, UnsignedTransaction } from '../src/chains/types.ts';
import { ChainError } from '../src/errors.ts';
import { type MpcSigner, startMpcSigner } from './helpers/mpc-signer.ts';

let anvil: Anvil;
let signer: MpcSigner;
let adapter: EvmAdapter;
const PATH = 'm/0/1';
let ours: string;

function sign(tx: UnsignedTransaction, path = PATH) {
  return Promise.all(tx.digests.map((d) => signer.sign(d.digest, path)));
}

before(async () => {
  anvil = await startAnvil();
  await deployTestToken(anvil);
  signer = await startMpcSigner({ signers: [1, 3] });
  adapter = createEvmAdapter({ network: resolveNetwork(anvilNetwork(anvil)) as EvmNetworkConfig });
  ours = adapter.deriveAddress(signer.publicKey(PATH));
});

after(async () => {
  await signer?.stop();
  await anvil?.stop();
});

describe('evm on anvil', () => {
  test('the derived address is EIP-55 and validates; a wrong checksum does not', () => {
    assert.match(ours, /^0x[0-9a-fA-F]{40}$/);
    assert.equal(adapter.validateAddress(ours.toLowerCase()).address, ours);
    const flipped = ours.replace(/[a-f]/, (c) => c.toUpperCase());
    assert.equal(adapter.validateAddress(flipped).valid, flipped === ours);
  });

  test('deposits of ETH and USDT-TEST from an independent client are scanned and confirmed', async () => {
    const wallet = createWalletClient({
      account: anvil.accounts[1]!,
      transport: http(anvil.rpcUrl),
      chain: anvilChain,
    });
    const start = BigInt(await anvil.rpc<string>('eth_blockNumber')) + 1n;
    const ethHash = await wallet.sendTransaction({ to: ours as Hex, value: parseEther('1.5') });
    await faucet(anvil, anvil.accounts[1]!, 'USDT-TEST', 5_000_000n);
    const tokenHash = await wallet.writeContract({
      address: TEST_TOKEN.address,
      abi: ERC20_ABI,
      functionName: 'transfer',
      args: [ours as Hex, 1_234_567n],
    });
    const r1 = await adapter.scanDeposits({ addresses: [ours], cursor: null, startBlock: start });
    assert.equal(r1.reorg, null);
    const eth = r1.deposits.find((d) => d.asset.symbol === 'ETH');
    const usdt = r1.deposits.find((d) => d.asset.symbol === 'USDT-TEST');
    assert.ok(eth && usdt, 'both deposits found');
    assert.equal(eth.txId, ethHash);
    assert.equal(eth.amount, parseEther('1.5'));
    assert.equal(eth.to, ours);
    assert.equal(eth.from, anvil.accounts[1]);
    assert.equal(usdt.txId, tokenHash);
    assert.equal(usdt.amount, 1_234_567n);
    assert.ok(usdt.index >= 0);
    assert.equal(r1.deposits.length, 2, 'the mint to the sender is not ours');
    assert.equal(r1.cursor.blockNumber, r1.head);
    // Confirmations grow with new blocks; the depth for 'anvil' is 2.
    const s0 = await adapter.getTransactionStatus({ txId: tokenHash, knownBlockHash: usdt.blockHash });
    assert.equal(s0.state, 'pending');
    assert.equal(s0.confirmations, 1);
    await anvil.rpc('anvil_mine', ['0x2']);
    const s1 = await adapter.getTransactionStatus({ txId: tokenHash, knownBlockHash: usdt.blockHash });
    assert.equal(s1.state, 'confirmed');
    assert.equal(s1.confirmations, 3);
    // Resuming from the cursor finds nothing new.
    const r2 = await adapter.scanDeposits({ addresses: [ours], cursor: r1.cursor });
    assert.equal(r2.deposits.length, 0);
    assert.equal(r2.cursor.blockNumber, r1.cursor.blockNumber + 2n);
    assert.equal(await adapter.getBalance(ours, adapter.asset('USDT-TEST')), 1_234_567n);
  });

  test('withdrawals (ETH and USDT-TEST) signed by 2-of-3 threshold parties are mined', async () => {
    await faucet(anvil, ours, 'ETH', parseEther('2'));
    await faucet(anvil, ours, 'USDT-TEST', 10_000_000n);
    const recipient = anvil.accounts[5]!;
    const ethBefore = await adapter.getBalance(recipient, adapter.asset('ETH'));
    const tokBefore = await adapter.getBalance(recipient, adapter.asset('USDT-TEST'));

    for (const [symbol, amount] of [
      ['ETH', parseEther('0.25')],
      ['USDT-TEST', 2_500_000n],
    ] as const) {
      const tx = await adapter.buildTransfer({
        from: ours,
        to: recipient,
        asset: adapter.asset(symbol),
        amount,
      });
      const summary = adapter.explainTransaction(tx);
      assert.equal(summary.to, recipient);
      assert.equal(summary.amount, amount);
      assert.equal(summary.asset.symbol, symbol);
      const sigs = await sign(tx);
      // The chain node is the independent verifier: it recovers the sender from (r, s, yParity).
      const signed = adapter.attachSignatures(tx, sigs);
      const res = await adapter.broadcast(signed);
      assert.equal(res.txId, signed.txId);
      // A retry after a lost reply is not an error.
      const again = await adapter.broadcast(signed);
      assert.equal(again.alreadyKnown, true);
      await anvil.rpc('anvil_mine', ['0x2']);
      const st = await adapter.getTransactionStatus({ txId: signed.txId });
      assert.equal(st.state, 'confirmed');
      assert.ok(st.fee! > 0n && st.fee! <= tx.fee.max, `fee ${st.fee} max ${tx.fee.max}`);
    }
    assert.equal(await adapter.getBalance(recipient, adapter.asset('ETH')), ethBefore + parseEther('0.25'));
    assert.equal(await adapter.getBalance(recipient, adapter.asset('USDT-TEST')), tokBefore + 2_500_000n);
  });

  test('a signature from another key or for another digest is refused before broadcast', async () => {
    const tx = await adapter.buildTransfer({
      from: ours,
      to: anvil.accounts[6]!,
      asset: adapter.asset('ETH'),
      amount: 1n,
    });
    const wrongPath = await sign(tx, 'm/0/2');
    assert.throws(
      () => adapter.attachSignatures(tx, wrongPath),
      (e: unknown) => e instanceof ChainError && e.code === 'CUSTOS_CHAIN_SIGNATURE_MISMATCH',
    );
    const other = await signer.sign(new Uint8Array(32).fill(7), PATH);
    assert.throws(() => adapter.attachSignatures(tx, [other]), /does not recover/);
    // A tampered payload no longer matches its digest.
    const tampered = { ...tx, payload: tx.payload.replace(/..$/, '00') };
    assert.throws(() => adapter.explainTransaction(tampered), ChainError);
    await adapter.releaseTransfer(tx);
  });

  test('token transfer above the balance fails estimation; fees above the cap fail', async () => {
    await assert.rejects(
      adapter.buildTransfer({
        from: ours,
        to: anvil.accounts[6]!,
        asset: adapter.asset('USDT-TEST'),
        amount: 10n ** 30n,
      }),
      (e: unknown) => e instanceof ChainError && /ESTIMATE_FAILED|INSUFFICIENT_FUNDS/.test(e.code),
    );
    const capped = createEvmAdapter({
      network: resolveNetwork(anvilNetwork(anvil, { fees: { maxFeePerGasCap: '1000' } })) as EvmNetworkConfig,
    });
    await assert.rejects(
      capped.buildTransfer({ from: ours, to: anvil.accounts[6]!, asset: capped.asset('ETH'), amount: 1n }),
      (e: unknown) => e instanceof ChainError && e.code === 'CUSTOS_CHAIN_FEE_CAP_EXCEEDED',
    );
  });

  test('a reverted transaction is pending until the confirmation depth, then failed', async () => {
    // An independent client sends a token transfer above its balance with a fixed gas limit (no
    // estimation), so it is mined and reverts.
    const wallet = createWalletClient({
      account: anvil.accounts[2]!,
      transport: http(anvil.rpcUrl),
      chain: anvilChain,
    });
    const hash = await wallet.writeContract({
      address: TEST_TOKEN.address,
      abi: ERC20_ABI,
      functionName: 'transfer',
      args: [ours as Hex, 10n ** 30n],
      gas: 100_000n,
    });
    const s0 = await adapter.getTransactionStatus({ txId: hash });
    assert.equal(s0.confirmations, 1);
    assert.equal(s0.state, 'pending', 'a revert in a block that may still be reorganised is not final');
    assert.equal(s0.reason, 'reverted');
    assert.ok((s0.fee ?? 0n) > 0n);
    await anvil.rpc('anvil_mine', ['0x1']);
    const s1 = await adapter.getTransactionStatus({ txId: hash, knownBlockHash: s0.blockHash! });
    assert.equal(s1.confirmations, 2);
    assert.equal(s1.state, 'failed');
    assert.equal(s1.reason, 'reverted');
  });

  test('scan cursor survives JSON round trip', async () => {
    const { encodeCursor, decodeCursor } = await import('../src/chains/types.ts');
    const c: ScanCursor = { blockNumber: 5n, blockHash: '0xab', recent: [{ number: 4n, hash: '0xaa' }] };
    assert.deepEqual(decodeCursor(encodeCursor(c)), c);
  });
});
