// The Tron adapter over real HTTP against a local server that speaks the TronGrid / java-tron wire
// format (response shapes as recorded from api.trongrid.io: blocks, transaction infos with logs,
// broadcast results with hex-encoded messages, chain parameters, TronGrid v1 events). The server
// checks what a node checks, independently of our code: it rebuilds raw_data from the JSON with
// TronWeb, requires sha256(raw_data) = txID, recovers the signer with TronWeb and compares it to
// owner_address, checks TaPoS (ref block) and expiration, and refuses duplicates.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { sha256 } from '@noble/hashes/sha2.js';
import { utils as tronUtils } from 'tronweb';
import { resolveNetwork, type TronNetworkConfig } from '../src/chains/networks.ts';
import { createTronAdapter, type TronAdapter } from '../src/chains/tron/adapter.ts';
import { tronAddressBytes, tronAddressFromBytes } from '../src/chains/tron/address.ts';
import { parseJsonExact } from '../src/chains/tron/client.ts';
import { ChainError } from '../src/errors.ts';
import { type MpcSigner, startMpcSigner } from './helpers/mpc-signer.ts';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const TRANSFER_TOPIC = 'ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef';
const SOLID_LAG = 19n;

interface Json {
  [k: string]: unknown;
}

/** A tiny Tron "node": enough state to answer the endpoints the adapter uses, in recorded shapes. */
class FakeTronNode {
  blocks: Json[] = [];
  infos = new Map<string, Json>();
  trx = new Map<string, bigint>(); // 21-byte hex → sun
  token = new Map<string, bigint>(); // 21-byte hex → units
  pending: { tx: Json; info: Json; apply: () => void }[] = [];
  seen = new Set<string>();
  readonly tokenHex: string;
  server!: Server;
  url = '';
  requests = 0;

  constructor() {
    const t = randomBytes(21);
    t[0] = 0x41;
    this.tokenHex = hex(t);
    let parent = '00'.repeat(32);
    for (let i = 0; i < 30; i++) parent = this.#pushBlock(62_000_000n + BigInt(i), parent, []);
  }

  get head(): Json {
    return this.blocks[this.blocks.length - 1]!;
  }
  num(b: Json): bigint {
    return BigInt((b['block_header'] as { raw_data: { number: number } }).raw_data.number);
  }
  get headNumber(): bigint {
    return this.num(this.head);
  }

  #pushBlock(number: bigint, parentHash: string, txs: Json[], salt = ''): string {
    const n = Buffer.alloc(8);
    n.writeBigUInt64BE(number);
    const h = sha256(Buffer.from(`${parentHash}${number}${txs.map((t) => t['txID']).join()}${salt}`));
    const blockID = hex(n) + hex(h).slice(16);
    const ts = 1_716_000_000_000 + Number(number - 62_000_000n) * 3000;
    this.blocks.push({
      blockID,
      block_header: {
        raw_data: {
          number: Number(number),
          txTrieRoot: hex(sha256(Buffer.from(blockID))),
          witness_address: '41b487cdc02de90f15ac89a68c82f44cbfe3d915ea',
          parentHash,
          version: 31,
          timestamp: ts,
        },
        witness_signature: hex(randomBytes(65)),
      },
      ...(txs.length ? { transactions: txs } : {}),
    });
    return blockID;
  }

  mine(count = 1, salt = ''): void {
    for (let i = 0; i < count; i++) {
      const batch = this.pending.splice(0);
      const number = this.headNumber + 1n;
      const ts = 1_716_000_000_000 + Number(number - 62_000_000n) * 3000;
      for (const p of batch) {
        p.apply();
        Object.assign(p.info, { blockNumber: Number(number), blockTimeStamp: ts });
        this.infos.set(p.tx['txID'] as string, p.info);
      }
      this.#pushBlock(
        number,
        this.head['blockID'] as string,
        batch.map((p) => p.tx),
        salt,
      );
    }
  }

  /** Replaces the last `depth` blocks with a different branch (their transactions are lost). */
  reorg(depth: number): void {
    const dropped = this.blocks.splice(-depth);
    for (const b of dropped)
      for (const t of (b['transactions'] as Json[]) ?? []) this.infos.delete(t['txID'] as string);
    this.mine(depth + 1, 'fork');
  }

  /** A transaction from someone else, built with TronWeb (independent of our encoder). */
  inject(
    kind: 'trx' | 'trc20',
    from: string,
    to: string,
    amount: bigint,
    opts: { revert?: boolean } = {},
  ): string {
    const head = this.head;
    const id = head['blockID'] as string;
    const value: Json =
      kind === 'trx'
        ? { amount: Number(amount), owner_address: from, to_address: to }
        : {
            data: `a9059cbb${to.slice(2).padStart(64, '0')}${amount.toString(16).padStart(64, '0')}`,
            owner_address: from,
            contract_address: this.tokenHex,
          };
    const type = kind === 'trx' ? 'TransferContract' : 'TriggerSmartContract';
    const rawData: Json = {
      contract: [{ parameter: { value, type_url: `type.googleapis.com/protocol.${type}` }, type }],
      ref_block_bytes: id.slice(12, 16),
      ref_block_hash: id.slice(16, 32),
      expiration: 1_716_000_000_000 + 90_000_000,
      timestamp: 1_716_000_000_000,
      ...(kind === 'trc20' ? { fee_limit: 30_000_000 } : {}),
    };
    const pb = tronUtils.transaction.txJsonToPb({ raw_data: rawData, visible: false });
    const rawHex = tronUtils.transaction.txPbToRawDataHex(pb).toLowerCase();
    const txID = tronUtils.transaction.txPbToTxID(pb).replace(/^0x/, '');
    const tx = {
      ret: [{ contractRet: opts.revert ? 'REVERT' : 'SUCCESS' }],
      signature: [hex(randomBytes(65))],
      txID,
      raw_data: rawData,
      raw_data_hex: rawHex,
    };
    this.#enqueue(kind, tx, from, to, amount, opts.revert ?? false);
    return txID;
  }

  #enqueue(kind: 'trx' | 'trc20', tx: Json, from: string, to: string, amount: bigint, revert: boolean): void {
    const txID = tx['txID'] as string;
    this.seen.add(txID);
    const info: Json =
      kind === 'trx'
        ? { id: txID, fee: 0, contractResult: [''], receipt: { net_usage: 267 } }
        : {
            id: txID,
            fee: 6_153_000,
            contractResult: [revert ? '' : `${'0'.repeat(63)}1`],
            contract_address: this.tokenHex,
            receipt: {
              energy_fee: 6_153_000,
              energy_usage_total: 14_650,
              net_usage: 345,
              result: revert ? 'REVERT' : 'SUCCESS',
            },
            ...(revert
              ? { result: 'FAILED', resMessage: Buffer.from('REVERT opcode executed').toString('hex') }
              : {
                  log: [
                    {
                      address: this.tokenHex.slice(2),
                      topics: [
                        TRANSFER_TOPIC,
                        from.slice(2).padStart(64, '0'),
                        to.slice(2).padStart(64, '0'),
                      ],
                      data: amount.toString(16).padStart(64, '0'),
                    },
                  ],
                }),
          };
    const apply = () => {
      if (revert) return;
      const book = kind === 'trx' ? this.trx : this.token;
      book.set(from, (book.get(from) ?? 0n) - amount);
      book.set(to, (book.get(to) ?? 0n) + amount);
    };
    this.pending.push({ tx, info, apply });
  }

  async start(): Promise<void> {
    this.server = createServer((req, res) => void this.#handle(req, res));
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', () => r()));
    const a = this.server.address();
    this.url = `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    this.requests++;
    let body = '';
    for await (const c of req) body += c;
    const send = (o: unknown) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(o));
    };
    const url = new URL(req.url ?? '/', 'http://x');
    const q = (body ? parseJsonExact(body) : {}) as Json;
    const solid = this.blocks.find((b) => this.num(b) === this.headNumber - SOLID_LAG) ?? this.blocks[0]!;
    const b58 = (a: unknown) => hex(tronAddressBytes(String(a)));
    switch (url.pathname) {
      case '/wallet/getnowblock':
        return send(this.head);
      case '/walletsolidity/getnowblock':
        return send(solid);
      case '/wallet/getblockbynum':
        return send(this.blocks.find((b) => this.num(b) === BigInt(q['num'] as number)) ?? {});
      case '/wallet/gettransactioninfobyid':
        return send(this.infos.get(String(q['value'])) ?? {});
      case '/wallet/gettransactioninfobyblocknum': {
        const b = this.blocks.find((x) => this.num(x) === BigInt(q['num'] as number));
        return send(((b?.['transactions'] as Json[]) ?? []).map((t) => this.infos.get(t['txID'] as string)));
      }
      case '/wallet/getaccount': {
        const h = b58(q['address']);
        const bal = this.trx.get(h);
        return send(
          bal === undefined ? {} : { address: h, balance: Number(bal), create_time: 1_600_000_000_000 },
        );
      }
      case '/wallet/getaccountresource':
        return send({
          freeNetLimit: 600,
          freeNetUsed: 0,
          TotalNetLimit: 43_200_000_000,
          TotalEnergyLimit: 180_000_000_000,
        });
      case '/wallet/getchainparameters':
        return send({
          chainParameter: [
            { key: 'getMaintenanceTimeInterval', value: 21_600_000 },
            { key: 'getCreateAccountFee', value: 100_000 },
            { key: 'getTransactionFee', value: 1000 },
            { key: 'getCreateNewAccountFeeInSystemContract', value: 1_000_000 },
            { key: 'getEnergyFee', value: 210 },
            { key: 'getAllowTvmTransferTrc10' },
          ],
        });
      case '/wallet/triggerconstantcontract': {
        const owner = b58(q['owner_address']);
        const param = String(q['parameter']);
        if (q['function_selector'] === 'balanceOf(address)') {
          const who = `41${param.slice(-40)}`;
          return send({
            result: { result: true },
            energy_used: 935,
            constant_result: [(this.token.get(who) ?? 0n).toString(16).padStart(64, '0')],
          });
        }
        const amount = BigInt(`0x${param.slice(64)}`);
        if ((this.token.get(owner) ?? 0n) < amount) {
          return send({
            result: {
              code: 'CONTRACT_EXE_ERROR',
              message: Buffer.from('REVERT opcode executed').toString('hex'),
            },
            energy_used: 572,
          });
        }
        return send({
          result: { result: true },
          energy_used: 14_650,
          constant_result: [`${'0'.repeat(63)}1`],
        });
      }
      case '/wallet/broadcasttransaction':
        return send(this.#broadcast(JSON.parse(body) as Json));
    }
    const events = url.pathname.match(/^\/v1\/contracts\/([^/]+)\/events$/);
    if (events && req.method === 'GET') {
      const contract = hex(tronAddressBytes(decodeURIComponent(events[1]!)));
      const data = [];
      for (const [txId, info] of this.infos) {
        if (info['contract_address'] !== contract) continue;
        for (const [i, log] of ((info['log'] as Json[]) ?? []).entries()) {
          const topics = log['topics'] as string[];
          data.push({
            block_number: info['blockNumber'],
            block_timestamp: info['blockTimeStamp'],
            caller_contract_address: tronAddressFromBytes(Buffer.from(contract, 'hex')),
            contract_address: tronAddressFromBytes(Buffer.from(contract, 'hex')),
            event_index: i,
            event_name: 'Transfer',
            result: {
              '0': `0x${topics[1]!.slice(-40)}`,
              '1': `0x${topics[2]!.slice(-40)}`,
              '2': BigInt(`0x${log['data']}`).toString(),
              from: `0x${topics[1]!.slice(-40)}`,
              to: `0x${topics[2]!.slice(-40)}`,
              value: BigInt(`0x${log['data']}`).toString(),
            },
            result_type: { from: 'address', to: 'address', value: 'uint256' },
            event: 'Transfer(address indexed from, address indexed to, uint256 value)',
            transaction_id: txId,
          });
        }
      }
      return send({ data, success: true, meta: { at: Date.now(), page_size: data.length } });
    }
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found');
  }

  #broadcast(tx: Json): Json {
    const txID = String(tx['txID']);
    const fail = (code: string, message: string) => ({
      code,
      txid: txID,
      message: Buffer.from(message).toString('hex'),
    });
    const pb = tronUtils.transaction.txJsonToPb(tx);
    const id = tronUtils.transaction.txPbToTxID(pb).replace(/^0x/, '');
    if (id !== txID || tronUtils.transaction.txPbToRawDataHex(pb).toLowerCase() !== tx['raw_data_hex']) {
      return fail('SIGERROR', 'validate signature error: txID does not match raw_data');
    }
    const raw = tx['raw_data'] as Json;
    const c = (raw['contract'] as Json[])[0]!;
    const value = (c['parameter'] as Json)['value'] as Json;
    const owner = String(value['owner_address']);
    const sig = (tx['signature'] as string[])[0] ?? '';
    let signer = '';
    try {
      signer = tronUtils.crypto.ecRecover(txID, sig).toLowerCase();
    } catch {
      // leave empty
    }
    if (signer !== owner)
      return fail(
        'SIGERROR',
        `validate signature error ${sig} is signed by ${signer} but it is not contained of permission.`,
      );
    if (this.seen.has(txID)) return fail('DUP_TRANSACTION_ERROR', 'dup transaction');
    const headTime = Number((this.head['block_header'] as Json & { raw_data: Json }).raw_data['timestamp']);
    if (Number(raw['expiration']) <= headTime) {
      return fail('TRANSACTION_EXPIRATION_ERROR', 'Transaction expired');
    }
    // java-tron: at most MAXIMUM_TIME_UNTIL_EXPIRATION (24 h) after the head block.
    if (Number(raw['expiration']) > headTime + 24 * 3600_000) {
      return fail('TRANSACTION_EXPIRATION_ERROR', 'Transaction expiration time is more than one day');
    }
    const ref = this.blocks.find((b) => {
      const bid = b['blockID'] as string;
      return bid.slice(12, 16) === raw['ref_block_bytes'] && bid.slice(16, 32) === raw['ref_block_hash'];
    });
    if (!ref) return fail('TAPOS_ERROR', 'Tapos check error');
    if (c['type'] === 'TransferContract') {
      const amount = BigInt(value['amount'] as number);
      if ((this.trx.get(owner) ?? 0n) < amount) {
        return fail(
          'CONTRACT_VALIDATE_ERROR',
          'Contract validate error : Validate TransferContract error, balance is not sufficient.',
        );
      }
      this.#enqueue(
        'trx',
        { ...tx, ret: [{ contractRet: 'SUCCESS' }] },
        owner,
        String(value['to_address']),
        amount,
        false,
      );
    } else {
      const data = String(value['data']);
      const to = `41${data.slice(8 + 24, 8 + 64)}`;
      const amount = BigInt(`0x${data.slice(72)}`);
      const revert = (this.token.get(owner) ?? 0n) < amount;
      this.#enqueue(
        'trc20',
        { ...tx, ret: [{ contractRet: revert ? 'REVERT' : 'SUCCESS' }] },
        owner,
        to,
        amount,
        revert,
      );
    }
    return { result: true, txid: txID };
  }
}

let node: FakeTronNode;
let signer: MpcSigner;
let adapter: TronAdapter;
const PATH = 'm/44/195';
let ours: string;
let oursHex: string;
const outsider = () => {
  const a = randomBytes(21);
  a[0] = 0x41;
  return hex(a);
};

before(async () => {
  node = new FakeTronNode();
  await node.start();
  signer = await startMpcSigner();
  const net = resolveNetwork({
    id: 'tron-test',
    preset: 'tron',
    apiUrl: node.url,
    tokens: [
      { symbol: 'USDT', contract: tronAddressFromBytes(Buffer.from(node.tokenHex, 'hex')), decimals: 6 },
    ],
    rpcRetries: 1,
  }) as TronNetworkConfig;
  adapter = createTronAdapter({ network: net, now: () => 1_716_000_100_000 });
  ours = adapter.deriveAddress(signer.publicKey(PATH));
  oursHex = hex(tronAddressBytes(ours));
  node.trx.set(oursHex, 500_000_000n);
  node.token.set(oursHex, 80_000_000n);
});

after(async () => {
  await signer?.stop();
  await new Promise<void>((r) => node.server.close(() => r()));
});

describe('tron over the TronGrid HTTP wire format', () => {
  test('deposits: TRX and TRC-20 to our address found, failed and foreign ones ignored, confirmed when solidified', async () => {
    const start = await adapter.scanDeposits({ addresses: [ours], cursor: null });
    const ext = outsider();
    node.trx.set(ext, 10_000_000_000n);
    node.token.set(ext, 10_000_000n);
    const trxId = node.inject('trx', ext, oursHex, 7_500_000n);
    const usdtId = node.inject('trc20', ext, oursHex, 2_000_000n);
    node.inject('trc20', ext, oursHex, 99n, { revert: true });
    node.inject('trx', ext, outsider(), 1_000n);
    node.mine();
    const r = await adapter.scanDeposits({ addresses: [ours], cursor: start.cursor });
    assert.equal(r.reorg, null);
    assert.deepEqual(
      r.deposits.map((d) => [d.txId, d.asset.symbol, d.amount, d.to, d.confirmed]),
      [
        [trxId, 'TRX', 7_500_000n, ours, false],
        [usdtId, 'USDT', 2_000_000n, ours, false],
      ],
    );
    assert.equal(r.deposits[1]!.from, tronAddressFromBytes(Buffer.from(ext, 'hex')));
    const s0 = await adapter.getTransactionStatus({ txId: usdtId });
    assert.equal(s0.state, 'pending');
    assert.equal(s0.confirmations, 1);
    node.mine(Number(SOLID_LAG));
    const s1 = await adapter.getTransactionStatus({ txId: usdtId, knownBlockHash: r.deposits[1]!.blockHash });
    assert.equal(s1.state, 'confirmed');
    assert.equal(s1.fee, 6_153_000n);
    const r2 = await adapter.scanDeposits({ addresses: [ours], cursor: r.cursor });
    assert.equal(r2.deposits.length, 0);
    assert.equal(r2.cursor.blockNumber, node.headNumber);
    // TronGrid event query for the token shows the same transfer.
    const ev = await adapter.client.getTrc20Events(adapter.asset('USDT').contract!);
    assert.ok(ev.data.some((e) => e.transaction_id === usdtId && e.result['value'] === '2000000'));
  });

  test('TRX and TRC-20 withdrawals signed by the threshold scheme are accepted, mined and solidified', async () => {
    const to = outsider();
    const toAddr = tronAddressFromBytes(Buffer.from(to, 'hex'));
    for (const [symbol, amount] of [
      ['TRX', 3_000_000n],
      ['USDT', 1_500_000n],
    ] as const) {
      const tx = await adapter.buildTransfer({
        from: ours,
        to: toAddr,
        asset: adapter.asset(symbol),
        amount,
      });
      assert.equal(adapter.explainTransaction(tx).amount, amount);
      assert.equal(tx.txId, hex(sha256(Buffer.from(tx.payload, 'hex'))));
      if (symbol === 'TRX') assert.equal(tx.fee.tron!.activatesAccount, true);
      else {
        assert.equal(tx.fee.tron!.energy, 14_650n);
        assert.equal(tx.fee.tron!.feeLimit, (14_650n * 210n * 130n) / 100n);
      }
      const signed = adapter.attachSignatures(
        tx,
        await Promise.all(tx.digests.map((d) => signer.sign(d.digest, PATH))),
      );
      assert.deepEqual(await adapter.broadcast(signed), { txId: tx.txId, alreadyKnown: false });
      assert.equal((await adapter.broadcast(signed)).alreadyKnown, true);
      assert.equal((await adapter.getTransactionStatus({ txId: signed.txId })).state, 'pending');
      node.mine(1 + Number(SOLID_LAG));
      const st = await adapter.getTransactionStatus({ txId: signed.txId });
      assert.equal(st.state, 'confirmed');
    }
    assert.equal(node.trx.get(to), 3_000_000n);
    assert.equal(await adapter.getBalance(toAddr, adapter.asset('USDT')), 1_500_000n);
    assert.equal(
      await adapter.getBalance(ours, adapter.asset('TRX')),
      500_000_000n + 7_500_000n - 3_000_000n,
    );
  });

  test('validForMs (offline signing) lengthens the lifetime up to the 24 h the node accepts', async () => {
    const to = tronAddressFromBytes(Buffer.from(outsider(), 'hex'));
    const headTime = () =>
      Number((node.head['block_header'] as Json & { raw_data: Json }).raw_data['timestamp']);
    const build = (validForMs?: number) =>
      adapter.buildTransfer({
        from: ours,
        to,
        asset: adapter.asset('TRX'),
        amount: 1_000_000n,
        ...(validForMs !== undefined ? { validForMs } : {}),
      });
    const online = await build();
    assert.equal(online.expiresAt! - headTime(), 60_000); // the configured lifetime
    const sixHours = await build(6 * 3600_000);
    assert.equal(sixHours.expiresAt! - headTime(), 6 * 3600_000);
    assert.equal((await build(10)).expiresAt! - headTime(), 60_000); // never shorter than configured
    const capped = await build(7 * 24 * 3600_000);
    assert.equal(capped.expiresAt! - headTime(), 24 * 3600_000);
    const signed = adapter.attachSignatures(
      capped,
      await Promise.all(capped.digests.map((d) => signer.sign(d.digest, PATH))),
    );
    assert.equal((await adapter.broadcast(signed)).alreadyKnown, false);
  });

  test('the node rejects a wrong signer; the adapter refuses it first', async () => {
    const tx = await adapter.buildTransfer({
      from: ours,
      to: tronAddressFromBytes(Buffer.from(outsider(), 'hex')),
      asset: adapter.asset('TRX'),
      amount: 5n,
    });
    const wrong = [await signer.sign(tx.digests[0]!.digest, 'm/44/196')];
    assert.throws(
      () => adapter.attachSignatures(tx, wrong),
      (e: unknown) => e instanceof ChainError && e.code === 'CUSTOS_CHAIN_SIGNATURE_MISMATCH',
    );
    // Forge the JSON past the adapter: the node's own check (TronWeb recovery) refuses it.
    const good = adapter.attachSignatures(tx, [await signer.sign(tx.digests[0]!.digest, PATH)]);
    const sig65 = Buffer.from(wrong[0]!.signature).toString('hex') + (27 + wrong[0]!.recovery!).toString(16);
    const forged = {
      ...good,
      raw: good.raw.replace(/"signature":\["[0-9a-f]+"\]/, `"signature":["${sig65}"]`),
    };
    await assert.rejects(
      adapter.broadcast(forged),
      (e: unknown) => e instanceof ChainError && e.code === 'CUSTOS_CHAIN_SIGNATURE_MISMATCH',
    );
    // Too much TRX: refused before signing.
    await assert.rejects(
      adapter.buildTransfer({
        from: ours,
        to: tronAddressFromBytes(Buffer.from(outsider(), 'hex')),
        asset: adapter.asset('TRX'),
        amount: 10n ** 15n,
      }),
      (e: unknown) => e instanceof ChainError && e.code === 'CUSTOS_CHAIN_INSUFFICIENT_FUNDS',
    );
    // TRC-20 above the token balance: energy estimation reverts.
    await assert.rejects(
      adapter.buildTransfer({
        from: ours,
        to: tronAddressFromBytes(Buffer.from(outsider(), 'hex')),
        asset: adapter.asset('USDT'),
        amount: 10n ** 12n,
      }),
      (e: unknown) =>
        e instanceof ChainError &&
        e.code === 'CUSTOS_CHAIN_ESTIMATE_FAILED' &&
        /REVERT/.test(String(e.details?.['reason'])),
    );
  });

  test('expired transactions are dropped; a reorg is reported with its fork point', async () => {
    const st = await adapter.getTransactionStatus({ txId: 'ab'.repeat(32), expiresAt: 1_716_000_000_000 });
    assert.equal(st.state, 'dropped');
    const a = await adapter.scanDeposits({ addresses: [ours], cursor: null });
    node.mine(3);
    const b = await adapter.scanDeposits({ addresses: [ours], cursor: a.cursor });
    const forkAt = node.headNumber - 2n;
    node.reorg(2);
    const r = await adapter.scanDeposits({ addresses: [ours], cursor: b.cursor });
    assert.equal(r.reorg?.forkBlockNumber, forkAt);
    assert.deepEqual(
      r.reorg?.orphaned.map((x) => x.number),
      [forkAt + 1n, forkAt + 2n],
    );
    const c = await adapter.scanDeposits({ addresses: [ours], cursor: r.cursor });
    assert.equal(c.reorg, null);
    assert.equal(c.cursor.blockNumber, node.headNumber);
  });

  test('responses that do not match the wire format are refused', async () => {
    const bad = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ blockID: 'zz', block_header: {} }));
    });
    await new Promise<void>((r) => bad.listen(0, '127.0.0.1', () => r()));
    const port = (bad.address() as { port: number }).port;
    const a2 = createTronAdapter({
      network: resolveNetwork({
        id: 'tron-bad',
        preset: 'tron',
        apiUrl: `http://127.0.0.1:${port}`,
        tokens: [],
      }) as TronNetworkConfig,
    });
    await assert.rejects(
      a2.getHead(),
      (e: unknown) => e instanceof ChainError && e.code === 'CUSTOS_CHAIN_RPC_INVALID_RESPONSE',
    );
    await new Promise<void>((r) => bad.close(() => r()));
    // Large integers are parsed exactly.
    assert.deepEqual(parseJsonExact('{"balance":12345678901234567890,"x":1.5,"s":"9999999999999999999"}'), {
      balance: '12345678901234567890',
      x: 1.5,
      s: '9999999999999999999',
    });
  });
});
