// 200 concurrent withdrawals from one address on anvil: built concurrently (nonce reservation under
// contention), signed concurrently by the 2-of-3 MPC nodes of an in-process cluster through its
// coordinator (test/helpers/mpc-signer.ts; DKLs23 — the nodes' background presignature pools cover at
// most a few, the rest are presigned inline in their signing request), broadcast concurrently — 200
// consecutive nonces, all mined, every one the transaction we signed.
// Plus nonce release and restart behaviour against the chain.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { parseEther } from 'viem';
import { type Anvil, anvilNetwork, faucet, startAnvil } from '../src/chains/devnet/anvil.ts';
import { createEvmAdapter, type EvmAdapter } from '../src/chains/evm/adapter.ts';
import { MemoryNonceStore } from '../src/chains/evm/nonce.ts';
import { type EvmNetworkConfig, resolveNetwork } from '../src/chains/networks.ts';
import { type MpcSigner, startMpcSigner } from './helpers/mpc-signer.ts';

const N = 200;
const PATH = 'm/3/9';
/** Presignatures each signing node keeps ready in the background (the test does not wait for them). */
const POOL = 8;
let anvil: Anvil;
let signer: MpcSigner;
let adapter: EvmAdapter;
let ours: string;

before(async () => {
  anvil = await startAnvil();
  // 200 sessions at once on one event loop: each waits for the others, so allow more than signMs.
  signer = await startMpcSigner({ poolSize: POOL, timeoutMs: 120_000 });
  adapter = createEvmAdapter({ network: resolveNetwork(anvilNetwork(anvil)) as EvmNetworkConfig });
  ours = adapter.deriveAddress(signer.publicKey(PATH));
  await faucet(anvil, ours, 'ETH', parseEther('100'));
});

after(async () => {
  await signer?.stop();
  await anvil?.stop();
});

describe('nonces', () => {
  test(`${N} concurrent withdrawals get ${N} consecutive nonces and are all mined`, async (t) => {
    const t0 = performance.now();
    const start = await adapter.client.getTransactionCount({
      address: ours as `0x${string}`,
      blockTag: 'pending',
    });
    const recipients = anvil.accounts.slice(1);
    const built = await Promise.all(
      Array.from({ length: N }, (_, i) =>
        adapter.buildTransfer({
          from: ours,
          to: recipients[i % recipients.length]!,
          asset: adapter.asset('ETH'),
          amount: BigInt(1000 + i),
        }),
      ),
    );
    const nonces = built.map((t) => t.summary.nonce!).sort((a, b) => a - b);
    assert.deepEqual(
      nonces,
      Array.from({ length: N }, (_, i) => start + i),
    );
    // Signing requests arrive concurrently; each is one threshold signing session.
    const signedTxs = await Promise.all(
      built.map(async (tx) => {
        await Promise.resolve();
        return adapter.attachSignatures(
          tx,
          await Promise.all(tx.digests.map((d) => signer.sign(d.digest, PATH))),
        );
      }),
    );
    const tSigned = performance.now();
    const results = await Promise.all(signedTxs.map((s) => adapter.broadcast(s)));
    assert.equal(new Set(results.map((r) => r.txId)).size, N);
    await anvil.rpc('anvil_mine', ['0x2']);
    const statuses = await Promise.all(signedTxs.map((s) => adapter.getTransactionStatus({ txId: s.txId })));
    assert.deepEqual(
      statuses.map((s) => s.state),
      Array(N).fill('confirmed'),
    );
    assert.equal(
      await adapter.client.getTransactionCount({ address: ours as `0x${string}`, blockTag: 'latest' }),
      start + N,
    );
    assert.equal(signer.signatureCount, N);
    const t1 = performance.now();
    t.diagnostic(
      `build+sign: ${(tSigned - t0).toFixed(0)} ms (presignatures ${JSON.stringify(signer.presignatureSources)}); broadcast+mine: ${(t1 - tSigned).toFixed(0)} ms`,
    );
  });

  test('a released nonce is reused; a new process continues from the chain', async () => {
    const req = { from: ours, to: anvil.accounts[1]!, asset: adapter.asset('ETH'), amount: 1n };
    const a = await adapter.buildTransfer(req);
    const b = await adapter.buildTransfer(req);
    assert.equal(b.summary.nonce, a.summary.nonce! + 1);
    await adapter.releaseTransfer(a); // a was never signed: its nonce goes back
    const c = await adapter.buildTransfer(req);
    assert.equal(c.summary.nonce, a.summary.nonce);
    for (const tx of [b, c]) {
      await adapter.broadcast(
        adapter.attachSignatures(tx, await Promise.all(tx.digests.map((d) => signer.sign(d.digest, PATH)))),
      );
    }
    // "Restart": a fresh store knows nothing and starts from the chain's pending count.
    const restarted = createEvmAdapter({ network: adapter.config, nonceStore: new MemoryNonceStore() });
    const d = await restarted.buildTransfer(req);
    assert.equal(d.summary.nonce, b.summary.nonce! + 1);
  });
});
