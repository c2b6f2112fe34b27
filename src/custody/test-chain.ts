// The in-memory test chain: a complete ChainAdapter with no network, used by tests, benchmarks and
// `custos dev`. It is a real (if tiny) chain: blocks chained by SHA-256, account balances per
// address and asset, a mempool, and transactions whose signatures are verified against the sender's
// public key before they are accepted — ECDSA secp256k1 (DKLs23) by default, or Ed25519 (FROST).
//
//   address  = "tst1" + hex(sha256(tag || publicKey)[0..20]) + hex(sha256(body)[0..4])   (checksum)
//   payload  = hex(canonical JSON {v, network, from, fromKey, to, asset, amount, fee, salt, memo})
//   digest   = sha256("custos/test-chain/tx/v1\0" || payload bytes)     (what the MPC nodes sign)
//   txId     = hex(sha256(digest || signature))
//
// Blocks are mined by `mine()` (tests) or every `blockTimeMs` (dev, benchmarks). There are no reorgs.
import { createHash, randomBytes } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import type {
  AddressValidation,
  Asset,
  BlockRef,
  BroadcastResult,
  ChainAdapter,
  ChainSignature,
  Deposit,
  FeeEstimate,
  ScanParameters,
  ScanResult,
  SignedTransaction,
  TransferRequest,
  TransferSummary,
  TxRef,
  TxStatus,
  UnsignedTransaction,
} from '../chains/types.ts';
import { registerTokenIn } from '../chains/util.ts';
import { ed25519Verify } from '../crypto/ed25519-openssl.ts';
import { ecdsaVerifyDigest } from '../crypto/ot/ec.ts';
import { ChainError } from '../errors.ts';

export type TestChainScheme = 'ecdsa-secp256k1' | 'eddsa-ed25519';

export interface TestChainOptions {
  /** Network id (default 'test'). */
  network?: string;
  scheme?: TestChainScheme;
  /** Confirmation depth (default 2). */
  confirmations?: number;
  /** Flat fee per transfer in native base units (default 1000). */
  fee?: bigint;
  /** Mine a block every this many ms (0 = only on `mine()`). */
  blockTimeMs?: number;
  /** Most blocks one scan returns (default 1000). */
  maxScanBlocks?: number;
}

interface TxBody {
  v: 1;
  network: string;
  from: string;
  fromKey: string;
  to: string;
  asset: string;
  amount: string;
  fee: string;
  salt: string;
  memo: string;
}

interface ChainTx {
  txId: string;
  body: TxBody;
  /** Faucet transfers have no sender signature. */
  faucet: boolean;
  failed?: string;
}

interface Block {
  number: bigint;
  hash: string;
  parent: string;
  txs: ChainTx[];
}

const TX_TAG = 'custos/test-chain/tx/v1\0';
const ADDR_TAG = 'custos/test-chain/address/v1\0';
const FAUCET = 'tst1faucet';
const sha256 = (...parts: (Uint8Array | string)[]): Buffer => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

export function testChainAssets(network = 'test'): Asset[] {
  return [
    { network, symbol: 'TST', decimals: 8, kind: 'native', contract: null },
    { network, symbol: 'TUSD', decimals: 6, kind: 'token', contract: 'tusd' },
  ];
}

export class TestChain implements ChainAdapter {
  readonly network: string;
  readonly family = 'test' as const;
  get assets(): readonly Asset[] {
    return this.#assets;
  }
  readonly #assets: Asset[];
  readonly confirmations: number;
  readonly signingScheme: TestChainScheme;
  readonly fee: bigint;
  readonly #blocks: Block[] = [];
  readonly #mempool = new Map<string, ChainTx>();
  /** txId → block number */
  readonly #included = new Map<string, bigint>();
  readonly #balances = new Map<string, bigint>();
  readonly #keys = new Map<string, Uint8Array>();
  readonly #maxScan: number;
  #timer: NodeJS.Timeout | undefined;

  constructor(opts: TestChainOptions = {}) {
    this.network = opts.network ?? 'test';
    this.signingScheme = opts.scheme ?? 'ecdsa-secp256k1';
    this.confirmations = opts.confirmations ?? 2;
    this.fee = opts.fee ?? 1000n;
    this.#maxScan = opts.maxScanBlocks ?? 1000;
    this.#assets = testChainAssets(this.network);
    this.#blocks.push({
      number: 0n,
      hash: hex(sha256('custos/test-chain/genesis', this.network)),
      parent: '',
      txs: [],
    });
    if (opts.blockTimeMs && opts.blockTimeMs > 0) {
      this.#timer = setInterval(() => this.mine(), opts.blockTimeMs);
      this.#timer.unref();
    }
  }

  stop(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  // --- addresses ---

  deriveAddress(publicKey: Uint8Array): string {
    this.#checkKey(publicKey);
    const body = `tst1${hex(sha256(ADDR_TAG, publicKey).subarray(0, 20))}`;
    const address = `${body}${hex(sha256(body).subarray(0, 4))}`;
    this.#keys.set(address, Uint8Array.from(publicKey));
    return address;
  }

  validateAddress(address: string): AddressValidation {
    const a = address.trim().toLowerCase();
    if (!/^tst1[0-9a-f]{48}$/.test(a)) return { valid: false, reason: 'not a test-chain address (tst1…)' };
    const body = a.slice(0, 44);
    if (hex(sha256(body).subarray(0, 4)) !== a.slice(44)) return { valid: false, reason: 'bad checksum' };
    return { valid: true, address: a };
  }

  asset(symbol: string): Asset {
    const a = this.assets.find((x) => x.symbol === symbol);
    if (!a) throw new ChainError('CUSTOS_CHAIN_UNSUPPORTED', `${this.network}: no asset ${symbol}`);
    return a;
  }

  registerToken(token: { symbol: string; decimals: number; contract: string }): Asset {
    const v = this.validateAddress(token.contract);
    if (!v.valid)
      throw new ChainError(
        'CUSTOS_CHAIN_INVALID_ADDRESS',
        `${this.network}: token ${token.symbol}: ${v.reason}`,
      );
    return registerTokenIn(this.#assets, this.network, { ...token, contract: v.address! });
  }

  #checkKey(publicKey: Uint8Array): void {
    try {
      if (this.signingScheme === 'eddsa-ed25519') {
        if (publicKey.length !== 32) throw new Error('length');
        ed25519.Point.fromBytes(publicKey);
      } else {
        if (publicKey.length !== 33 && publicKey.length !== 65) throw new Error('length');
        secp256k1.Point.fromBytes(publicKey).assertValidity();
      }
    } catch (cause) {
      throw new ChainError(
        'CUSTOS_CHAIN_INVALID_ADDRESS',
        `${this.network}: invalid ${this.signingScheme} public key`,
        {
          cause,
        },
      );
    }
  }

  // --- transfers ---

  async estimateFee(_request: TransferRequest): Promise<FeeEstimate> {
    return { asset: this.assets[0]!, expected: this.fee, max: this.fee };
  }

  async buildTransfer(request: TransferRequest): Promise<UnsignedTransaction> {
    const from = this.#canonical(request.from, 'from');
    const to = this.#canonical(request.to, 'to');
    const key = this.#keys.get(from);
    if (!key) {
      throw new ChainError(
        'CUSTOS_CHAIN_INVALID_TRANSACTION',
        `${this.network}: unknown public key for ${from}`,
      );
    }
    if (request.asset.network !== this.network)
      throw new ChainError('CUSTOS_CHAIN_UNSUPPORTED', 'asset of another network');
    this.asset(request.asset.symbol);
    if (request.amount <= 0n) throw new ChainError('CUSTOS_CHAIN_INVALID_TRANSACTION', 'amount must be > 0');
    const body: TxBody = {
      v: 1,
      network: this.network,
      from,
      fromKey: hex(key),
      to,
      asset: request.asset.symbol,
      amount: request.amount.toString(),
      fee: this.fee.toString(),
      salt: randomBytes(16).toString('hex'),
      memo: request.memo ?? '',
    };
    const payload = encodeBody(body);
    const fee = await this.estimateFee(request);
    return {
      network: this.network,
      family: 'test',
      payload,
      digests: [{ digest: txDigest(payload), signer: from }],
      txId: null,
      summary: this.#summary(body),
      fee,
    };
  }

  explainTransaction(tx: UnsignedTransaction): TransferSummary {
    const body = decodeBody(tx.payload);
    if (body.network !== this.network)
      throw new ChainError('CUSTOS_CHAIN_INVALID_TRANSACTION', 'wrong network');
    const d = txDigest(tx.payload);
    if (
      tx.digests.length !== 1 ||
      hex(tx.digests[0]!.digest) !== hex(d) ||
      tx.digests[0]!.signer !== body.from
    ) {
      throw new ChainError('CUSTOS_CHAIN_INVALID_TRANSACTION', 'digests do not match the payload');
    }
    const key = Buffer.from(body.fromKey, 'hex');
    this.#checkKey(key);
    const body0 = `tst1${hex(sha256(ADDR_TAG, key).subarray(0, 20))}`;
    if (`${body0}${hex(sha256(body0).subarray(0, 4))}` !== body.from) {
      throw new ChainError('CUSTOS_CHAIN_INVALID_TRANSACTION', 'fromKey does not match from');
    }
    return this.#summary(body);
  }

  async releaseTransfer(_tx: UnsignedTransaction): Promise<void> {}

  attachSignatures(tx: UnsignedTransaction, signatures: readonly ChainSignature[]): SignedTransaction {
    const summary = this.explainTransaction(tx);
    const sig = signatures[0];
    if (signatures.length !== 1 || !sig)
      throw new ChainError('CUSTOS_CHAIN_INVALID_TRANSACTION', 'one signature expected');
    const body = decodeBody(tx.payload);
    if (!this.#verify(body, tx.payload, sig.signature)) {
      throw new ChainError(
        'CUSTOS_CHAIN_SIGNATURE_MISMATCH',
        'signature does not verify under the sender key',
      );
    }
    const digest = txDigest(tx.payload);
    const txId = hex(sha256(digest, sig.signature));
    return {
      network: this.network,
      family: 'test',
      txId,
      raw: JSON.stringify({ payload: tx.payload, signature: hex(sig.signature) }),
      summary,
    };
  }

  #verify(body: TxBody, payload: string, signature: Uint8Array): boolean {
    const key = Buffer.from(body.fromKey, 'hex');
    const digest = txDigest(payload);
    try {
      if (this.signingScheme === 'eddsa-ed25519') return ed25519Verify(key, digest, signature);
      return ecdsaVerifyDigest(key, digest, signature);
    } catch {
      return false;
    }
  }

  async broadcast(tx: SignedTransaction): Promise<BroadcastResult> {
    let parsed: { payload: string; signature: string };
    try {
      parsed = JSON.parse(tx.raw) as { payload: string; signature: string };
    } catch {
      throw new ChainError('CUSTOS_CHAIN_INVALID_TRANSACTION', 'raw is not JSON');
    }
    const body = decodeBody(parsed.payload);
    const sig = Buffer.from(parsed.signature, 'hex');
    const txId = hex(sha256(txDigest(parsed.payload), sig));
    if (txId !== tx.txId) throw new ChainError('CUSTOS_CHAIN_INVALID_TRANSACTION', 'txId does not match');
    if (this.#mempool.has(txId) || this.#included.has(txId)) return { txId, alreadyKnown: true };
    if (body.network !== this.network || !this.#verify(body, parsed.payload, sig)) {
      throw new ChainError('CUSTOS_CHAIN_BROADCAST_REJECTED', 'bad signature', {
        details: { reason: 'bad signature' },
      });
    }
    // Funds: balance minus what the mempool already spends from this address.
    const native = this.assets[0]!.symbol;
    const spend = (asset: string) => {
      let s = 0n;
      for (const t of this.#mempool.values()) {
        if (t.body.from !== body.from) continue;
        if (t.body.asset === asset) s += BigInt(t.body.amount);
        if (asset === native) s += BigInt(t.body.fee);
      }
      return s;
    };
    const needAsset = BigInt(body.amount) + (body.asset === native ? BigInt(body.fee) : 0n);
    if (this.#bal(body.from, body.asset) - spend(body.asset) < needAsset) {
      throw new ChainError(
        'CUSTOS_CHAIN_INSUFFICIENT_FUNDS',
        `${body.from} cannot pay ${body.amount} ${body.asset}`,
      );
    }
    if (body.asset !== native && this.#bal(body.from, native) - spend(native) < BigInt(body.fee)) {
      throw new ChainError('CUSTOS_CHAIN_INSUFFICIENT_FUNDS', `${body.from} cannot pay the fee`);
    }
    this.#mempool.set(txId, { txId, body, faucet: false });
    return { txId, alreadyKnown: false };
  }

  async getTransactionStatus(ref: TxRef): Promise<TxStatus> {
    if (this.#mempool.has(ref.txId)) {
      return { state: 'pending', confirmations: 0, blockNumber: null, blockHash: null };
    }
    const n = this.#included.get(ref.txId);
    if (n === undefined)
      return { state: 'dropped', confirmations: 0, blockNumber: null, blockHash: null, nonceConsumed: false };
    const block = this.#blocks[Number(n)]!;
    const tx = block.txs.find((t) => t.txId === ref.txId)!;
    const confirmations = Number(this.#head().number - n + 1n);
    const deep = confirmations >= this.confirmations;
    return {
      state: tx.failed ? (deep ? 'failed' : 'pending') : deep ? 'confirmed' : 'pending',
      confirmations,
      blockNumber: n,
      blockHash: block.hash,
      fee: BigInt(tx.body.fee),
      ...(tx.failed ? { reason: tx.failed } : {}),
    };
  }

  async scanDeposits(params: ScanParameters): Promise<ScanResult> {
    const watched = new Set([...params.addresses].map((a) => a.toLowerCase()));
    const head = this.#head();
    const start = params.cursor ? params.cursor.blockNumber + 1n : (params.startBlock ?? 0n);
    const max = BigInt(params.maxBlocks ?? this.#maxScan);
    const end = head.number < start + max - 1n ? head.number : start + max - 1n;
    const deposits: Deposit[] = [];
    for (let n = start; n <= end; n++) {
      const b = this.#blocks[Number(n)]!;
      for (const t of b.txs) {
        if (t.failed || !watched.has(t.body.to)) continue;
        const confirmations = Number(head.number - n + 1n);
        deposits.push({
          network: this.network,
          txId: t.txId,
          index: -1,
          from: t.body.from,
          to: t.body.to,
          asset: this.asset(t.body.asset),
          amount: BigInt(t.body.amount),
          blockNumber: n,
          blockHash: b.hash,
          confirmations,
          confirmed: confirmations >= this.confirmations,
        });
      }
    }
    const last =
      end >= start
        ? this.#blocks[Number(end)]!
        : params.cursor
          ? null
          : (this.#blocks[Number(start - 1n)] ?? null);
    const cursor = last
      ? { blockNumber: last.number, blockHash: last.hash, recent: [] }
      : (params.cursor ?? { blockNumber: -1n, blockHash: '', recent: [] });
    return { deposits, cursor, reorg: null, head: head.number };
  }

  async getBalance(address: string, asset: Asset): Promise<bigint> {
    return this.#bal(this.#canonical(address, 'address'), asset.symbol);
  }

  async getHead(): Promise<BlockRef> {
    const h = this.#head();
    return { number: h.number, hash: h.hash };
  }

  // --- test controls ---

  /** Sends `amount` from the faucet to `to` (lands in the next block). Returns the txId. */
  faucet(to: string, symbol: string, amount: bigint): string {
    const addr = this.#canonical(to, 'to');
    this.asset(symbol);
    const body: TxBody = {
      v: 1,
      network: this.network,
      from: FAUCET,
      fromKey: '',
      to: addr,
      asset: symbol,
      amount: amount.toString(),
      fee: '0',
      salt: randomBytes(16).toString('hex'),
      memo: 'faucet',
    };
    const txId = hex(sha256('custos/test-chain/faucet', encodeBody(body)));
    this.#mempool.set(txId, { txId, body, faucet: true });
    return txId;
  }

  /** Mines `count` blocks (the first takes the whole mempool). */
  mine(count = 1): BlockRef {
    for (let i = 0; i < count; i++) {
      const parent = this.#head();
      const txs = [...this.#mempool.values()];
      this.#mempool.clear();
      const number = parent.number + 1n;
      for (const t of txs) this.#apply(t);
      const hash = hex(sha256(parent.hash, number.toString(), ...txs.map((t) => t.txId)));
      this.#blocks.push({ number, hash, parent: parent.hash, txs });
      for (const t of txs) this.#included.set(t.txId, number);
    }
    const h = this.#head();
    return { number: h.number, hash: h.hash };
  }

  #apply(t: ChainTx): void {
    const { body } = t;
    const amount = BigInt(body.amount);
    if (t.faucet) {
      this.#add(body.to, body.asset, amount);
      return;
    }
    const native = this.assets[0]!.symbol;
    const fee = BigInt(body.fee);
    const needNative = fee + (body.asset === native ? amount : 0n);
    if (this.#bal(body.from, native) < needNative || this.#bal(body.from, body.asset) < amount) {
      t.failed = 'insufficient funds at inclusion';
      return;
    }
    this.#add(body.from, native, -fee);
    this.#add(body.from, body.asset, -amount);
    this.#add(body.to, body.asset, amount);
  }

  #add(address: string, asset: string, delta: bigint): void {
    const k = `${address}/${asset}`;
    this.#balances.set(k, (this.#balances.get(k) ?? 0n) + delta);
  }

  #bal(address: string, asset: string): bigint {
    return this.#balances.get(`${address}/${asset}`) ?? 0n;
  }

  #head(): Block {
    return this.#blocks[this.#blocks.length - 1]!;
  }

  #canonical(address: string, what: string): string {
    const v = this.validateAddress(address);
    if (!v.valid) {
      throw new ChainError('CUSTOS_CHAIN_INVALID_ADDRESS', `${what}: ${v.reason}`, {
        details: { field: what },
      });
    }
    return v.address!;
  }

  #summary(body: TxBody): TransferSummary {
    return {
      network: this.network,
      from: body.from,
      to: body.to,
      asset: this.asset(body.asset),
      amount: BigInt(body.amount),
      nonce: null,
      maxFee: BigInt(body.fee),
    };
  }
}

function encodeBody(b: TxBody): string {
  const keys = Object.keys(b).sort() as (keyof TxBody)[];
  return Buffer.from(JSON.stringify(Object.fromEntries(keys.map((k) => [k, b[k]])))).toString('hex');
}

function decodeBody(payload: string): TxBody {
  if (!/^([0-9a-f]{2})+$/.test(payload))
    throw new ChainError('CUSTOS_CHAIN_INVALID_TRANSACTION', 'payload is not hex');
  let b: TxBody;
  try {
    b = JSON.parse(Buffer.from(payload, 'hex').toString('utf8')) as TxBody;
  } catch {
    throw new ChainError('CUSTOS_CHAIN_INVALID_TRANSACTION', 'payload is not a test-chain transaction');
  }
  if (
    b?.v !== 1 ||
    typeof b.from !== 'string' ||
    typeof b.to !== 'string' ||
    !/^[0-9]+$/.test(String(b.amount)) ||
    !/^[0-9]+$/.test(String(b.fee)) ||
    typeof b.fromKey !== 'string' ||
    encodeBody(b) !== payload
  ) {
    throw new ChainError(
      'CUSTOS_CHAIN_INVALID_TRANSACTION',
      'payload is not a canonical test-chain transaction',
    );
  }
  return b;
}

function txDigest(payload: string): Uint8Array {
  return new Uint8Array(sha256(TX_TAG, Buffer.from(payload, 'hex')));
}

/**
 * The test networks of `custos dev`: 'test' (ECDSA secp256k1, DKLs23) and 'test-ed25519' (FROST).
 * The control plane's instances mine a block every second; MPC nodes build their own instances
 * (no timer) only to decode transactions.
 */
export function devTestChains(opts: { blockTimeMs?: number } = { blockTimeMs: 1000 }): TestChain[] {
  return [
    new TestChain({ network: 'test', ...opts }),
    new TestChain({ network: 'test-ed25519', scheme: 'eddsa-ed25519', ...opts }),
  ];
}
