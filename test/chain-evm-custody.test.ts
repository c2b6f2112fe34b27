// Custody on a real EVM node (anvil) through the REST API: a 2-of-3 hot vault, a wallet on 'anvil',
// an EIP-55 address derived from the vault's threshold key; ETH and USDT-TEST deposits sent by an
// independent viem client are detected (pending), confirmed and credited (available); withdrawals
// are built by the EVM adapter, signed by the in-process MPC nodes through the coordinator (each
// node decodes the transaction itself), broadcast, mined, and completed — the recipient's on-chain
// balance changes and the ledger matches the chain. A reorg (evm_snapshot/evm_revert) puts a
// credited deposit back to pending and corrects the ledger; two watchers on one database never
// double-credit (PostgreSQL lease per network).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  createPublicClient,
  createWalletClient,
  getAddress,
  type Hex,
  http,
  isAddress,
  parseEther,
} from 'viem';
import { generatePrivateKey, privateKeyToAddress } from 'viem/accounts';
import { anvil as anvilChain } from 'viem/chains';
import { custodyRoutes } from '../src/api/routes/custody/routes.ts';
import { AuditLog } from '../src/audit/log.ts';
import {
  type Anvil,
  anvilNetwork,
  deployTestToken,
  faucet,
  startAnvil,
  TEST_TOKEN,
} from '../src/chains/devnet/anvil.ts';
import { ERC20_ABI } from '../src/chains/evm/transfer.ts';
import type { ChainAdapter, UnsignedTransaction } from '../src/chains/types.ts';
import { custodyChains, nodeChainDecoders } from '../src/custody/chains.ts';
import { type Custody, createCustody } from '../src/custody/runtime.ts';
import { ChainWatcher } from '../src/custody/watcher.ts';
import {
  generateApproverKey,
  signApproverProof,
  signWithApproverKey,
} from '../src/identity/approver-keys.ts';
import { custodyApprovalAuthorizer, MemoryOwnerTrust } from '../src/mpc/authorizers/custody-approvals.ts';
import {
  approvalMessage,
  type CustodyEvidence,
  fromJsonSafe,
  statementMessage,
} from '../src/mpc/authorizers/custody-evidence.ts';
import { type InProcessCluster, startInProcessCluster } from '../src/mpc/local.ts';
import { type DatabaseHandle, openDatabase } from '../src/store/database.ts';
import { TransactionRepository } from '../src/store/repositories/custody.ts';
import {
  makeOrg,
  type SecurityApp,
  startSecurityApp,
  type TestOrg,
  testConfig,
  testKeys,
} from './helpers/identity-harness.ts';
import { captureLogger } from './helpers/log-capture.ts';
import { offlineKeyOf } from './helpers/offline-keys.ts';

let anvil: Anvil;
let db: DatabaseHandle;
let cluster: InProcessCluster;
let custody: Custody;
let security: SecurityApp;
let org: TestOrg;
let chain: ChainAdapter;
let dir: string;
// biome-ignore lint/suspicious/noExplicitAny: JSON bodies in tests
type Json = any;
let call: (
  method: 'GET' | 'POST',
  url: string,
  body?: unknown,
  headers?: Record<string, string>,
) => Promise<{ status: number; body: Json }>;
let walletId: string;
let ownerKeyRef: ReturnType<typeof generateApproverKey>;
let nodeTrust: MemoryOwnerTrust;
let ours: Hex;

const pub = () => createPublicClient({ chain: anvilChain, transport: http(anvil.rpcUrl) });
const sender = () =>
  createWalletClient({ account: anvil.accounts[1]!, chain: anvilChain, transport: http(anvil.rpcUrl) });
const mine = (n = 1) => anvil.rpc('anvil_mine', [`0x${n.toString(16)}`]);

async function balances(): Promise<Record<string, { available: string; pending: string; reserved: string }>> {
  const r = await call('GET', `/v1/wallets/${walletId}/balances`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return Object.fromEntries(
    (r.body.balances as { assetId: string; available: string; pending: string; reserved: string }[]).map(
      (b) => [b.assetId, b],
    ),
  );
}

async function withdraw(asset: string, destination: string, amount: bigint, key: string) {
  const t = await call(
    'POST',
    '/v1/transactions',
    { walletId, asset, destination, amount: amount.toString() },
    { 'idempotency-key': key },
  );
  assert.equal(t.status, 201, JSON.stringify(t.body));
  assert.equal(t.body.state, 'approved', JSON.stringify(t.body));
  await custody.withdrawals.idle();
  let tx = await call('GET', `/v1/transactions/${t.body.id}`);
  assert.equal(tx.body.state, 'broadcast', JSON.stringify(tx.body));
  assert.match(tx.body.chainTxId, /^0x[0-9a-f]{64}$/);
  // Mined (anvil automines): one confirmation, then the depth (2).
  await custody.tick();
  tx = await call('GET', `/v1/transactions/${t.body.id}`);
  assert.equal(tx.body.state, 'confirming', JSON.stringify(tx.body));
  await mine(1);
  await custody.tick();
  tx = await call('GET', `/v1/transactions/${t.body.id}`);
  assert.equal(tx.body.state, 'completed', JSON.stringify(tx.body));
  const receipt = await pub().getTransactionReceipt({ hash: tx.body.chainTxId });
  assert.equal(receipt.status, 'success');
  assert.equal(receipt.from.toLowerCase(), ours.toLowerCase());
  assert.equal(BigInt(tx.body.feePaid), receipt.gasUsed * receipt.effectiveGasPrice);
  return tx.body;
}

before(async () => {
  anvil = await startAnvil();
  await deployTestToken(anvil);
  db = await openDatabase({});
  await db.migrate();
  dir = mkdtempSync(join(tmpdir(), 'custos-evm-custody-'));
  const net = anvilNetwork(anvil);
  const trust = new MemoryOwnerTrust();
  nodeTrust = trust;
  cluster = await startInProcessCluster({
    dir,
    kdf: { memoryCost: 1024, timeCost: 1 },
    poolSize: 2,
    // Each node decodes with its own adapter instances (nothing shared with the control plane).
    nodeOptions: () => ({
      authorizers: [custodyApprovalAuthorizer({ trust, chains: nodeChainDecoders([net]) })],
    }),
  });
  const keys = testKeys();
  const log = captureLogger('info');
  const config = testConfig();
  const chains = custodyChains({ db: db.db, networks: [net] });
  chain = chains.find((c) => c.network === 'anvil')!;
  custody = await createCustody({
    db: db.db,
    audit: new AuditLog({
      hmacKey: keys.auditHmacKey,
      checkpointKey: keys.auditCheckpointKey,
      checkpointEvery: config.auditCheckpointEvery,
    }),
    coordinator: cluster.coordinator,
    chains,
    logger: log.logger,
  });
  security = await startSecurityApp({ db, keys, logger: log, routes: [custodyRoutes(custody)] });
  org = await makeOrg(security.services, 'evm');
  const token = org.users.owner.token;
  call = async (method, url, body, headers = {}) => {
    const r = await security.app.inject({
      method,
      url,
      headers: { authorization: `Bearer ${token}`, ...headers },
      ...(body !== undefined ? { payload: body as Record<string, unknown> } : {}),
    });
    return { status: r.statusCode, body: r.json() };
  };
  // The owner's key: registered, trusted by the nodes, signs the vault policy below.
  const ownerKey = generateApproverKey();
  ownerKeyRef = ownerKey;
  const reg = await call('POST', '/v1/approver-keys', {
    publicKey: ownerKey.publicKey,
    label: 'owner',
    proof: signApproverProof(ownerKey, org.orgId, org.users.owner.id),
  });
  assert.equal(reg.status, 201, JSON.stringify(reg.body));
  trust.trust(org.orgId, ownerKey.publicKey);

  const v = await call('POST', '/v1/vaults', { name: 'evm-hot', tier: 'hot', threshold: 2, parties: 3 });
  assert.equal(v.status, 201, JSON.stringify(v.body));
  const key = v.body.keys.find((k: { scheme: string }) => k.scheme === 'ecdsa-secp256k1');
  assert.equal(key.threshold, 2);
  assert.equal(key.parties.length, 3);
  const signed = await call('POST', `/v1/vaults/${v.body.id}/policy-signature`, {
    publicKey: ownerKey.publicKey,
    signature: signWithApproverKey(ownerKey, statementMessage(v.body.policy)),
  });
  assert.equal(signed.status, 200, JSON.stringify(signed.body));
  const w = await call('POST', '/v1/wallets', { vaultId: v.body.id, network: 'anvil' });
  assert.equal(w.status, 201, JSON.stringify(w.body));
  walletId = w.body.id;
});

after(async () => {
  await custody?.stop();
  await security?.close();
  await cluster?.stop();
  await db?.close();
  await anvil?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('custody on anvil through the REST API (PGlite, 2-of-3 MPC nodes)', () => {
  test('assets are seeded for the anvil network', async () => {
    const r = await call('GET', '/v1/assets?network=anvil');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const ids = (r.body.assets as { id: string }[]).map((a) => a.id).sort();
    assert.deepEqual(ids, ['anvil:ETH', 'anvil:USDT-TEST']);
  });

  test('an address is EIP-55, derived from the vault key at its HD path', async () => {
    const a = await call('POST', `/v1/wallets/${walletId}/addresses`, { label: 'main' });
    assert.equal(a.status, 201, JSON.stringify(a.body));
    ours = a.body.address;
    assert.equal(isAddress(ours, { strict: true }), true);
    assert.equal(getAddress(ours.toLowerCase()), ours);
    assert.match(a.body.path, /^m\/\d+\/\d+\/0$/);
  });

  test('ETH and USDT-TEST deposits from an independent client: pending, then credited at depth 2', async () => {
    const w = sender();
    await faucet(anvil, anvil.accounts[1]!, 'USDT-TEST', 1_000_000_000n); // the sender's own tokens
    const ethTx = await w.sendTransaction({ to: ours, value: parseEther('2') });
    const tokTx = await w.writeContract({
      address: TEST_TOKEN.address,
      abi: ERC20_ABI,
      functionName: 'transfer',
      args: [ours, 250_000_000n],
    });
    await pub().waitForTransactionReceipt({ hash: tokTx });
    await custody.tick();
    let b = await balances();
    // The token transfer is the head block: 1 confirmation; the ETH one may already have 2.
    assert.equal(b['anvil:USDT-TEST']?.pending, '250000000');
    assert.equal(b['anvil:USDT-TEST']?.available, '0');
    await mine(1);
    await custody.tick();
    b = await balances();
    assert.equal(b['anvil:ETH']?.available, parseEther('2').toString());
    assert.equal(b['anvil:ETH']?.pending, '0');
    assert.equal(b['anvil:USDT-TEST']?.available, '250000000');
    const deps = await call('GET', '/v1/deposits');
    const mine_ = (deps.body.deposits as { txId: string; status: string; from: string }[]).filter((d) =>
      [ethTx, tokTx].includes(d.txId as Hex),
    );
    assert.equal(mine_.length, 2);
    assert.ok(mine_.every((d) => d.status === 'credited' && d.from === anvil.accounts[1]));
    // Scanning again records nothing twice.
    await custody.tick();
    assert.equal((await call('GET', '/v1/deposits')).body.deposits.length, 2);
  });

  test('ETH withdrawal: signed by the MPC nodes, mined, recipient paid, completed; ledger = chain', async () => {
    const to = privateKeyToAddress(generatePrivateKey());
    const amount = parseEther('0.5');
    const tx = await withdraw('ETH', to, amount, 'evm-eth-1');
    assert.equal(await pub().getBalance({ address: to }), amount);
    const b = await balances();
    const onChain = await pub().getBalance({ address: ours });
    assert.equal(BigInt(b['anvil:ETH']!.available), onChain);
    assert.equal(BigInt(b['anvil:ETH']!.available), parseEther('2') - amount - BigInt(tx.feePaid));
    assert.equal(b['anvil:ETH']?.reserved, '0');
  });

  test('USDT-TEST withdrawal: token transfer mined, recipient token balance changed, completed', async () => {
    const to = privateKeyToAddress(generatePrivateKey());
    await withdraw('USDT-TEST', to, 40_000_000n, 'evm-usdt-1');
    const bal = (a: Hex) =>
      pub().readContract({
        address: TEST_TOKEN.address,
        abi: ERC20_ABI,
        functionName: 'balanceOf',
        args: [a],
      });
    assert.equal(await bal(to), 40_000_000n);
    const b = await balances();
    assert.equal(b['anvil:USDT-TEST']?.available, '210000000');
    assert.equal(BigInt(b['anvil:USDT-TEST']!.available), await bal(ours));
    assert.equal(BigInt(b['anvil:ETH']!.available), await pub().getBalance({ address: ours }));
    // Nonces came from the PostgreSQL store: two withdrawals, 0 and 1.
    assert.equal(await pub().getTransactionCount({ address: ours }), 2);
    const row = await db.db.selectFrom('evm_nonces').selectAll().where('network', '=', 'anvil').execute();
    assert.equal(row.length, 1);
    assert.equal(Number(row[0]!.next), 2);
    const rec = await call('GET', '/v1/reconciliation');
    assert.equal(rec.status, 200, JSON.stringify(rec.body));
    assert.equal(rec.body.ledger.ok, true, JSON.stringify(rec.body));
    assert.deepEqual(rec.body.differences, [], JSON.stringify(rec.body.differences));
  });

  test('reorg: a credited deposit whose block disappears goes back to pending; the ledger follows the chain', async () => {
    const before_ = await balances();
    const snap = await anvil.rpc<string>('evm_snapshot');
    const hash = await sender().sendTransaction({ to: ours, value: parseEther('1') });
    await pub().waitForTransactionReceipt({ hash });
    await mine(1);
    await custody.tick();
    await custody.tick();
    let b = await balances();
    assert.equal(
      BigInt(b['anvil:ETH']!.available),
      BigInt(before_['anvil:ETH']!.available) + parseEther('1'),
    );
    // The chain forgets those blocks; a longer fork replaces them.
    await anvil.rpc('evm_revert', [snap]);
    await mine(4);
    await custody.tick();
    b = await balances();
    assert.equal(b['anvil:ETH']?.available, before_['anvil:ETH']?.available, 'credit taken back');
    const dep = () =>
      db.db.selectFrom('deposits').selectAll().where('tx_id', '=', hash).executeTakeFirstOrThrow();
    assert.equal((await dep()).status === 'pending' || (await dep()).status === 'orphaned', true);
    const reorged = await db.db
      .selectFrom('audit_log')
      .select('action')
      .where('action', '=', 'deposit.reorged')
      .execute();
    assert.equal(reorged.length, 1);
    // Whatever the node did with the transaction (gone, or mined again), the ledger ends equal to
    // the chain and the deposit is credited at most once.
    for (let i = 0; i < 3; i++) {
      await mine(1);
      await custody.tick();
    }
    b = await balances();
    assert.equal(
      BigInt(b['anvil:ETH']!.available) + BigInt(b['anvil:ETH']!.pending),
      await pub().getBalance({ address: ours }),
    );
    const status = (await dep()).status;
    assert.ok(['orphaned', 'credited'].includes(status), status);
    const rec = await call('GET', '/v1/reconciliation');
    assert.equal(rec.body.ledger.ok, true, JSON.stringify(rec.body));
    assert.deepEqual(rec.body.differences, [], JSON.stringify(rec.body.differences));
  });

  test('two watchers on one database: one holds the lease, the deposit is credited once', async () => {
    const primary = custody.watchers.get('anvil')!;
    const second = new ChainWatcher(custody.service, custody.withdrawals, chain, { intervalMs: 1000 });
    const hash = await sender().sendTransaction({ to: ours, value: parseEther('0.25') });
    await pub().waitForTransactionReceipt({ hash });
    await mine(2);
    const before_ = await balances();
    const results = [];
    for (let i = 0; i < 3; i++) results.push(...(await Promise.all([primary.tick(), second.tick()])));
    assert.ok(
      results.every((r, i) => r.leased === (i % 2 === 0)),
      JSON.stringify(results),
    );
    const credited = results.reduce((n, r) => n + r.credited, 0);
    assert.equal(credited, 1);
    const rows = await db.db.selectFrom('deposits').selectAll().where('tx_id', '=', hash).execute();
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!.status, 'credited');
    const b = await balances();
    assert.equal(
      BigInt(b['anvil:ETH']!.available) + BigInt(b['anvil:ETH']!.pending),
      BigInt(before_['anvil:ETH']!.available) + BigInt(before_['anvil:ETH']!.pending) + parseEther('0.25'),
    );
    // The holder stops (lease released): the other takes over at once.
    await primary.stop();
    assert.equal((await second.tick()).leased, true);
    await second.stop();
    assert.equal((await primary.tick()).leased, true);
  });

  test('200 concurrent withdrawals through the API from one address: 200 consecutive nonces, all mined, none replaced', async (t) => {
    const N = 200;
    await faucet(anvil, ours, 'ETH', parseEther('10'));
    await mine(2);
    await custody.tick();
    const n0 = await pub().getTransactionCount({ address: ours, blockTag: 'pending' });
    const to = privateKeyToAddress(generatePrivateKey());
    const t0 = performance.now();
    const created = await Promise.all(
      Array.from({ length: N }, (_, i) =>
        call(
          'POST',
          '/v1/transactions',
          { walletId, asset: 'ETH', destination: to, amount: (1_000_000n + BigInt(i)).toString() },
          { 'idempotency-key': `evm-200-${i}` },
        ),
      ),
    );
    assert.ok(
      created.every((c) => c.status === 201),
      JSON.stringify(created.find((c) => c.status !== 201)),
    );
    const ids = created.map((c) => c.body.id as string);
    // Signed by the MPC nodes and broadcast (anvil mines each at once), then confirmed and completed.
    let states: { state: string; chainTxId: Hex }[] = [];
    for (let round = 0; round < 60; round++) {
      await custody.withdrawals.idle();
      await mine(1);
      await custody.tick();
      states = await Promise.all(ids.map(async (id) => (await call('GET', `/v1/transactions/${id}`)).body));
      if (states.every((s) => s.state === 'completed')) break;
    }
    const elapsed = performance.now() - t0;
    assert.deepEqual(
      [...new Set(states.map((s) => s.state))],
      ['completed'],
      JSON.stringify(states.filter((s) => s.state !== 'completed').slice(0, 3)),
    );
    const hashes = states.map((s) => s.chainTxId);
    assert.equal(new Set(hashes).size, N, 'one transaction each');
    const mined = await Promise.all(hashes.map((hash) => pub().getTransaction({ hash })));
    assert.deepEqual(
      mined.map((m) => m.nonce).sort((a, b) => a - b),
      Array.from({ length: N }, (_, i) => n0 + i),
      'consecutive nonces, no gap, no reuse',
    );
    assert.ok(mined.every((m) => m.from.toLowerCase() === ours.toLowerCase() && m.blockNumber !== null));
    // Nothing else was sent from the address: none of the 200 was replaced by another transaction.
    assert.equal(await pub().getTransactionCount({ address: ours, blockTag: 'latest' }), n0 + N);
    assert.equal(await pub().getBalance({ address: to }), BigInt(N) * 1_000_000n + BigInt((N * (N - 1)) / 2));
    const rec = await call('GET', '/v1/reconciliation');
    assert.equal(rec.body.ledger.ok, true, JSON.stringify(rec.body));
    assert.deepEqual(rec.body.differences, [], JSON.stringify(rec.body.differences));
    t.diagnostic(`${N} withdrawals created → completed in ${(elapsed / 1000).toFixed(1)} s`);
  });
  test('a token registered at run time (POST /v1/assets) is scanned, credited and withdrawn like a configured one', async () => {
    const USDX = {
      symbol: 'USDX',
      name: 'Registered Dollar',
      decimals: 6,
      address: '0x5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d' as Hex,
    };
    const contract = await deployTestToken(anvil, USDX);
    // Unknown before registration: a withdrawal is refused, nothing is reserved.
    const early = await call(
      'POST',
      '/v1/transactions',
      { walletId, asset: 'USDX', destination: privateKeyToAddress(generatePrivateKey()), amount: '1' },
      { 'idempotency-key': 'evm-usdx-early' },
    );
    assert.equal(early.status, 404, JSON.stringify(early.body));
    const reg = await call('POST', '/v1/assets', {
      network: 'anvil',
      symbol: 'USDX',
      decimals: 6,
      contract: contract.toLowerCase(),
    });
    assert.equal(reg.status, 201, JSON.stringify(reg.body));
    assert.equal(reg.body.contract, contract, 'stored in EIP-55 form');
    // The same contract under another name is refused.
    const dup = await call('POST', '/v1/assets', { network: 'anvil', symbol: 'USDY', decimals: 6, contract });
    assert.equal(dup.status, 409, JSON.stringify(dup.body));

    // A deposit from an independent client: minted to the sender, transferred to our address.
    const MINT = [
      {
        type: 'function',
        name: 'mint',
        stateMutability: 'nonpayable',
        inputs: [
          { name: 'to', type: 'address' },
          { name: 'amount', type: 'uint256' },
        ],
        outputs: [{ name: '', type: 'bool' }],
      },
    ] as const;
    const minter = createWalletClient({
      account: anvil.accounts[0]!,
      chain: anvilChain,
      transport: http(anvil.rpcUrl),
    });
    await pub().waitForTransactionReceipt({
      hash: await minter.writeContract({
        address: contract,
        abi: MINT,
        functionName: 'mint',
        args: [anvil.accounts[1]!, 10_000_000n],
      }),
    });
    const dep = await sender().writeContract({
      address: contract,
      abi: ERC20_ABI,
      functionName: 'transfer',
      args: [ours, 7_000_000n],
    });
    await pub().waitForTransactionReceipt({ hash: dep });
    await custody.tick();
    await mine(1);
    await custody.tick();
    let b = await balances();
    assert.equal(b['anvil:USDX']?.available, '7000000', JSON.stringify(b));
    const deps = (await call('GET', '/v1/deposits')).body.deposits as {
      txId: string;
      status: string;
      assetId?: string;
    }[];
    assert.equal(deps.filter((d) => d.txId === dep && d.status === 'credited').length, 1);

    // Not endorsed by an owner yet: the withdrawal is refused up front, nothing reserved.
    const to = privateKeyToAddress(generatePrivateKey());
    const refused = await call(
      'POST',
      '/v1/transactions',
      { walletId, asset: 'USDX', destination: to, amount: '1' },
      { 'idempotency-key': 'evm-usdx-unendorsed' },
    );
    assert.equal(refused.status, 409, JSON.stringify(refused.body));
    assert.equal(refused.body.error.code, 'CUSTOS_ASSET_NOT_ENDORSED');
    assert.equal((await balances())['anvil:USDX']?.reserved, '0');

    // The owner signs the token's definition; the nodes verify it against the owner keys they trust.
    const st = await call('GET', '/v1/assets/anvil:USDX/endorsement-statement');
    assert.equal(st.status, 200, JSON.stringify(st.body));
    assert.deepEqual(
      {
        network: st.body.network,
        symbol: st.body.symbol,
        decimals: st.body.decimals,
        contract: st.body.contract,
      },
      { network: 'anvil', symbol: 'USDX', decimals: 6, contract },
    );
    const bad = await call('POST', '/v1/assets/anvil:USDX/endorsement', {
      publicKey: ownerKeyRef.publicKey,
      signature: signWithApproverKey(ownerKeyRef, statementMessage({ ...st.body, decimals: 18 })),
    });
    assert.equal(bad.status, 400, JSON.stringify(bad.body));
    const end = await call('POST', '/v1/assets/anvil:USDX/endorsement', {
      publicKey: ownerKeyRef.publicKey,
      signature: signWithApproverKey(ownerKeyRef, statementMessage(st.body)),
    });
    assert.equal(end.status, 200, JSON.stringify(end.body));
    assert.equal(end.body.endorsed, true);

    // Withdrawal: the EVM adapter builds an ERC-20 transfer to the registered contract; each node
    // decodes it with its own adapter plus the endorsed token, signs, and the recipient is paid.
    await withdraw('USDX', to, 2_500_000n, 'evm-usdx-1');
    const bal = (a: Hex) =>
      pub().readContract({ address: contract, abi: ERC20_ABI, functionName: 'balanceOf', args: [a] });
    assert.equal(await bal(to), 2_500_000n);
    b = await balances();
    assert.equal(b['anvil:USDX']?.available, '4500000');
    assert.equal(BigInt(b['anvil:USDX']!.available), await bal(ours));

    // What the nodes check, on the very evidence the control plane sent for that withdrawal: the
    // genuine one is allowed; without the endorsement, with a non-owner's, or with one for another
    // contract, the node's own decoder does not know the token and refuses.
    const done = (await call('GET', '/v1/transactions')).body.transactions.find(
      (t: { asset: string; state: string }) => t.asset === 'USDX' && t.state === 'completed',
    );
    const row = (await new TransactionRepository(db.db).getById(done.id))!;
    const unsigned = fromJsonSafe<UnsignedTransaction>(row.unsigned_tx);
    const genuine = await custody.withdrawals.evidence(row, unsigned);
    assert.ok(genuine.asset, 'evidence carries the endorsement');
    const authorize = custodyApprovalAuthorizer({
      trust: nodeTrust,
      chains: nodeChainDecoders([anvilNetwork(anvil)]),
    });
    const ask = (authorization: CustodyEvidence) =>
      authorize({
        type: 'sign',
        requestId: 'r',
        sessionId: 's',
        nodeId: 1,
        keyId: genuine.policy.statement.keyIds[0]!,
        message: unsigned.digests[0]!.digest,
        derivationPath: (row.intent as { source: { path: string } }).source.path,
        authorization: authorization as unknown as Record<string, unknown> & { kind: string },
      });
    assert.deepEqual(ask(genuine), { decision: 'allow', by: 'custody-approvals' });
    const { asset: _dropped, ...withoutEndorsement } = genuine;
    assert.match(String((ask(withoutEndorsement) as { reason: string }).reason), /does not decode/);
    const cpKey = generateApproverKey();
    const forged = {
      ...genuine,
      asset: {
        ...genuine.asset,
        signature: signWithApproverKey(cpKey, statementMessage(genuine.asset.statement)),
        ownerPublicKey: cpKey.publicKey,
      },
    };
    assert.match(
      String((ask(forged) as { reason: string }).reason),
      /not signed by an owner this node trusts/,
    );
    const otherContract = { ...genuine.asset.statement, contract: TEST_TOKEN.address };
    const other = {
      ...genuine,
      asset: {
        ...genuine.asset,
        statement: otherContract,
        signature: signWithApproverKey(ownerKeyRef, statementMessage(otherContract)),
      },
    };
    assert.match(String((ask(other) as { reason: string }).reason), /not the intent asset/);
  });
  test('reorg of a confirming withdrawal: back to broadcast (audited), rebroadcast, mined again, completed once', async () => {
    const to = privateKeyToAddress(generatePrivateKey());
    const snap = await anvil.rpc<string>('evm_snapshot');
    const t = await call(
      'POST',
      '/v1/transactions',
      { walletId, asset: 'ETH', destination: to, amount: '12345' },
      { 'idempotency-key': 'evm-reorg-wd' },
    );
    assert.equal(t.status, 201, JSON.stringify(t.body));
    await custody.withdrawals.idle();
    await custody.tick();
    const get = async () => (await call('GET', `/v1/transactions/${t.body.id}`)).body;
    const first = await get();
    assert.equal(first.state, 'confirming', JSON.stringify(first));
    // The block holding it disappears (and anvil forgets the transaction).
    await anvil.rpc('evm_revert', [snap]);
    assert.equal(await pub().getBalance({ address: to }), 0n);
    await custody.tick();
    const back = await get();
    // Rebroadcast at once (anvil mines it again on arrival); never completed from the lost block.
    assert.ok(['broadcast', 'confirming'].includes(back.state), JSON.stringify(back));
    const audit = await db.db
      .selectFrom('audit_log')
      .select(['action', 'details'])
      .where('target_id', '=', t.body.id)
      .orderBy('seq')
      .execute();
    const moves = audit.map((a) => `${a.action}`);
    assert.ok(
      moves.some((m) => m.includes('broadcast')) &&
        audit.some((a) => JSON.stringify(a.details).includes('reorg')),
      JSON.stringify(audit),
    );
    for (let i = 0; i < 3 && (await get()).state !== 'completed'; i++) {
      await mine(1);
      await custody.tick();
    }
    const done = await get();
    assert.equal(done.state, 'completed', JSON.stringify(done));
    assert.equal(done.chainTxId, first.chainTxId, 'the same signed transaction, not a new one');
    assert.equal(await pub().getBalance({ address: to }), 12345n);
    const rec = await call('GET', '/v1/reconciliation');
    assert.equal(rec.body.ledger.ok, true, JSON.stringify(rec.body));
    assert.deepEqual(rec.body.differences, [], JSON.stringify(rec.body.differences));
  });
  test('cold vault on anvil: approved on line, signed by an offline cluster, imported, mined from the cold address', async () => {
    // The offline cluster: its own nodes, secrets and bus; each node with the offline authoriser
    // (cold vaults only) and its own decoder for the anvil network.
    const offDir = mkdtempSync(join(tmpdir(), 'custos-evm-cold-'));
    const net = anvilNetwork(anvil);
    const offline = await startInProcessCluster({
      dir: offDir,
      kdf: { memoryCost: 1024, timeCost: 1 },
      poolSize: 0,
      nodeOptions: () => ({
        authorizers: [
          custodyApprovalAuthorizer({ trust: nodeTrust, chains: nodeChainDecoders([net]), offline: true }),
        ],
      }),
    });
    try {
      const k = await offline.coordinator.createKey('ecdsa-secp256k1', 2, 3);
      const as = async (token: string, method: 'GET' | 'POST', url: string, body?: unknown, headers = {}) => {
        const r = await security.app.inject({
          method,
          url,
          headers: { authorization: `Bearer ${token}`, ...headers },
          ...(body !== undefined ? { payload: body as Record<string, unknown> } : {}),
        });
        return { status: r.statusCode, body: r.json() as Json };
      };
      const v = await call('POST', '/v1/vaults', {
        name: 'evm-cold',
        tier: 'cold',
        requiredApprovals: 1,
        offlineKeys: [offlineKeyOf(k)],
      });
      assert.equal(v.status, 201, JSON.stringify(v.body));
      const ps = await call('POST', `/v1/vaults/${v.body.id}/policy-signature`, {
        publicKey: ownerKeyRef.publicKey,
        signature: signWithApproverKey(ownerKeyRef, statementMessage(v.body.policy)),
      });
      assert.equal(ps.status, 200, JSON.stringify(ps.body));
      const w = await call('POST', '/v1/wallets', { vaultId: v.body.id, network: 'anvil' });
      const a = await call('POST', `/v1/wallets/${w.body.id}/addresses`, {});
      const cold = a.body.address as Hex;
      await sender().sendTransaction({ to: cold, value: parseEther('1') });
      for (let i = 0; i < 3; i++) {
        await mine(1);
        await custody.tick();
      }
      // An approver with an owner-endorsed key; an operator initiates.
      const approverKey = generateApproverKey();
      const reg = await as(org.users.approver.token, 'POST', '/v1/approver-keys', {
        publicKey: approverKey.publicKey,
        label: 'cold',
        proof: signApproverProof(approverKey, org.orgId, org.users.approver.id),
      });
      assert.equal(reg.status, 201, JSON.stringify(reg.body));
      const st = await call('GET', `/v1/approver-keys/${reg.body.id}/endorsement-statement`);
      await call('POST', `/v1/approver-keys/${reg.body.id}/endorsement`, {
        publicKey: ownerKeyRef.publicKey,
        signature: signWithApproverKey(ownerKeyRef, statementMessage(st.body)),
      });
      const to = privateKeyToAddress(generatePrivateKey());
      const t = await as(
        org.users.operator.token,
        'POST',
        '/v1/transactions',
        { walletId: w.body.id, asset: 'ETH', destination: to, amount: parseEther('0.3').toString() },
        { 'idempotency-key': 'evm-cold-1' },
      );
      assert.equal(t.status, 201, JSON.stringify(t.body));
      assert.equal(t.body.state, 'pending_approval');
      // The base fee falls before the approval: today's estimate would now be below the budget.
      const base = (await pub().getBlock()).baseFeePerGas!;
      await anvil.rpc('anvil_setNextBlockBaseFeePerGas', [`0x${(base / 4n).toString(16)}`]);
      await mine(1);
      const vote = await as(org.users.approver.token, 'POST', `/v1/transactions/${t.body.id}/approvals`, {
        intentHash: t.body.intentHash,
        publicKey: approverKey.publicKey,
        signature: signWithApproverKey(approverKey, approvalMessage('approve', t.body.intentHash)),
      });
      assert.equal(vote.status, 201, JSON.stringify(vote.body));
      await custody.withdrawals.idle();
      const req = await as(org.users.operator.token, 'GET', `/v1/transactions/${t.body.id}/signing-request`);
      assert.equal(req.status, 200, JSON.stringify(req.body));
      // Offline: each node decodes the EVM transaction itself and checks the approval.
      const signatures = [];
      for (const d of req.body.digests as string[]) {
        const r = await offline.coordinator.sign(req.body.keyId, Buffer.from(d, 'hex'), {
          path: req.body.derivationPath,
          authorization: req.body.evidence,
        });
        signatures.push({ digest: d, signature: r.signature, recovery: r.recovery });
      }
      const imp = await as(org.users.operator.token, 'POST', `/v1/transactions/${t.body.id}/signatures`, {
        kind: 'custos-offline-signatures/v1',
        transactionId: t.body.id,
        intentHash: t.body.intentHash,
        keyId: req.body.keyId,
        derivationPath: req.body.derivationPath,
        signatures,
      });
      assert.equal(imp.status, 200, JSON.stringify(imp.body));
      assert.equal(imp.body.state, 'broadcast');
      for (let i = 0; i < 3; i++) {
        await custody.tick();
        await mine(1);
      }
      await custody.tick();
      const done = await call('GET', `/v1/transactions/${t.body.id}`);
      assert.equal(done.body.state, 'completed', JSON.stringify(done.body));
      const receipt = await pub().getTransactionReceipt({ hash: done.body.chainTxId });
      assert.equal(receipt.status, 'success');
      assert.equal(receipt.from.toLowerCase(), cold.toLowerCase());
      assert.equal(await pub().getBalance({ address: to }), parseEther('0.3'));
      // Built for a late broadcast: the whole approved fee budget is the EIP-1559 ceiling (an online
      // withdrawal gets today's estimate), yet only base fee + tip were charged.
      const mined = await pub().getTransaction({ hash: done.body.chainTxId });
      const reserved = BigInt(done.body.feeReserved);
      assert.equal(mined.maxFeePerGas, reserved / mined.gas);
      assert.ok(BigInt(done.body.feePaid) <= reserved);
      assert.equal(BigInt(done.body.feePaid), receipt.gasUsed * receipt.effectiveGasPrice);
      const rec = await call('GET', '/v1/reconciliation');
      assert.equal(rec.body.ledger.ok, true, JSON.stringify(rec.body));
      assert.deepEqual(rec.body.differences, [], JSON.stringify(rec.body.differences));
    } finally {
      await offline.stop();
      rmSync(offDir, { recursive: true, force: true });
    }
  });
});
