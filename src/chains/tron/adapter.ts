// The Tron ChainAdapter: TRX (TransferContract) and TRC-20 (TriggerSmartContract transfer) built
// locally (raw_data protobuf, txID = sha256(raw_data)), broadcast and queried through the
// TronGrid-compatible HTTP API. Confirmation = the block is solidified. Notes: docs/chains.md#tron.
import { sha256 } from '@noble/hashes/sha2.js';
import { ChainError } from '../../errors.ts';
import { findRecovery } from '../keys.ts';
import type { TronNetworkConfig } from '../networks.ts';
import type {
  AddressValidation,
  Asset,
  BlockRef,
  BroadcastResult,
  ChainAdapter,
  ChainSignature,
  Deposit,
  FeeEstimate,
  ScanCursor,
  ScanParameters,
  ScanResult,
  SignedTransaction,
  TransferRequest,
  TransferSummary,
  TxRef,
  TxStatus,
  UnsignedTransaction,
} from '../types.ts';
import { advanceCursor, findForkPoint, mapLimit, registerTokenIn, rewindCursor } from '../util.ts';
import {
  tronAddressBytes,
  tronAddressFromBytes,
  tronAddressFromPublicKey,
  tronAddressHex,
  validateTronAddress,
} from './address.ts';
import { type TronBlock, TronHttpClient } from './client.ts';
import { oneBytes, oneInt, readMessage } from './protobuf.ts';
import {
  decodeRawData,
  decodeTrc20Transfer,
  encodeRawData,
  rawDataJson,
  refBlock,
  signatureHex,
  type TronRawData,
  trc20TransferData,
  tronJson,
  txIdOf,
} from './transaction.ts';

/** keccak256("Transfer(address,address,uint256)") */
const TRANSFER_TOPIC = 'ddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef';
/** Bytes java-tron adds to the raw size when charging bandwidth: signature (65) + result cap (64). */
const BANDWIDTH_OVERHEAD = 65n + 64n;
const DEFAULT_BANDWIDTH_PRICE = 1000n;
const DEFAULT_ENERGY_PRICE = 420n;
const INT64_MAX = (1n << 63n) - 1n;

export interface TronAdapterOptions {
  network: TronNetworkConfig;
  client?: TronHttpClient;
  /** Clock for timestamps (tests). */
  now?: () => number;
}

export function createTronAdapter(opts: TronAdapterOptions): TronAdapter {
  return new TronAdapter(opts);
}

export class TronAdapter implements ChainAdapter {
  readonly network: string;
  readonly family = 'tron' as const;
  /** The native coin first, then configured and registered tokens. */
  get assets(): readonly Asset[] {
    return this.#assets;
  }
  readonly #assets: Asset[];
  readonly confirmations: number;
  readonly config: TronNetworkConfig;
  readonly client: TronHttpClient;
  readonly #native: Asset;
  readonly #tokens: Asset[];
  readonly #now: () => number;

  constructor(opts: TronAdapterOptions) {
    const net = opts.network;
    this.config = net;
    this.network = net.id;
    this.confirmations = net.confirmations;
    this.#now = opts.now ?? Date.now;
    this.client =
      opts.client ??
      new TronHttpClient({
        apiUrl: net.apiUrl,
        ...(net.apiKey ? { apiKey: net.apiKey } : {}),
        timeoutMs: net.rpcTimeoutMs,
        retries: net.rpcRetries,
        network: net.id,
      });
    this.#native = { network: net.id, symbol: 'TRX', decimals: 6, kind: 'native', contract: null };
    this.#tokens = net.tokens.map((t) => {
      const v = validateTronAddress(t.contract);
      if (!v.valid) {
        throw new ChainError('CUSTOS_CHAIN_INVALID_ADDRESS', `${net.id}: token ${t.symbol}: ${v.reason}`);
      }
      return {
        network: net.id,
        symbol: t.symbol,
        decimals: t.decimals,
        kind: 'token' as const,
        contract: v.address!,
      };
    });
    this.#assets = [this.#native, ...this.#tokens];
  }

  registerToken(token: { symbol: string; decimals: number; contract: string }): Asset {
    const v = validateTronAddress(token.contract);
    if (!v.valid)
      throw new ChainError(
        'CUSTOS_CHAIN_INVALID_ADDRESS',
        `${this.network}: token ${token.symbol}: ${v.reason}`,
      );
    const known = this.#assets.length;
    const a = registerTokenIn(this.#assets, this.network, { ...token, contract: v.address! });
    if (this.#assets.length > known) this.#tokens.push(a);
    return a;
  }

  deriveAddress(publicKey: Uint8Array): string {
    return tronAddressFromPublicKey(publicKey);
  }

  validateAddress(address: string): AddressValidation {
    return validateTronAddress(address);
  }

  asset(symbol: string): Asset {
    const a = this.assets.find((x) => x.symbol === symbol);
    if (!a) throw new ChainError('CUSTOS_CHAIN_UNSUPPORTED', `${this.network}: unknown asset ${symbol}`);
    return a;
  }

  // --- fees ------------------------------------------------------------------------------------

  async estimateFee(request: TransferRequest): Promise<FeeEstimate> {
    const { raw } = await this.#prepare(request);
    return this.#fee(request, raw);
  }

  async #fee(request: TransferRequest, raw: TronRawData): Promise<FeeEstimate> {
    const [params, resource, recipient] = await Promise.all([
      this.client.getChainParameters(),
      this.client.getAccountResource(request.from),
      request.asset.kind === 'native'
        ? this.client.getAccountBalance(request.to)
        : Promise.resolve({ exists: true }),
    ]);
    const bandwidthPrice = params.get('getTransactionFee') ?? DEFAULT_BANDWIDTH_PRICE;
    const energyPrice = params.get('getEnergyFee') ?? DEFAULT_ENERGY_PRICE;
    const bandwidth = BigInt(encodeRawData(raw).length) + BANDWIDTH_OVERHEAD;
    const freeBandwidth =
      (resource.freeNetLimit ?? 0n) -
      (resource.freeNetUsed ?? 0n) +
      (resource.NetLimit ?? 0n) -
      (resource.NetUsed ?? 0n);
    const bandwidthCost = freeBandwidth >= bandwidth ? 0n : bandwidth * bandwidthPrice;
    let energy = 0n;
    let energyCost = 0n;
    if (raw.contract.type === 'TriggerSmartContract') {
      energy = await this.#estimateEnergy(request);
      const own = (resource.EnergyLimit ?? 0n) - (resource.EnergyUsed ?? 0n);
      energyCost = (energy > own ? energy - own : 0n) * energyPrice;
    }
    const activatesAccount = !recipient.exists;
    const activation = activatesAccount
      ? (params.get('getCreateNewAccountFeeInSystemContract') ?? 1_000_000n) +
        (params.get('getCreateAccountFee') ?? 100_000n)
      : 0n;
    return {
      asset: this.#native,
      expected: bandwidthCost + energyCost + activation,
      max: bandwidth * bandwidthPrice + raw.feeLimit + activation,
      tron: { bandwidth, energy, feeLimit: raw.feeLimit, energyPrice, bandwidthPrice, activatesAccount },
    };
  }

  async #estimateEnergy(request: TransferRequest): Promise<bigint> {
    const to = tronAddressBytes(request.to, 'to');
    const r = await this.client.triggerConstantContract({
      owner: request.from,
      contract: request.asset.contract!,
      selector: 'transfer(address,uint256)',
      parameter: Buffer.from(trc20TransferData(to, request.amount).subarray(4)).toString('hex'),
    });
    if (r.result.result !== true || r.energy_used === undefined) {
      throw new ChainError(
        'CUSTOS_CHAIN_ESTIMATE_FAILED',
        `${this.network}: energy estimation failed (would revert)`,
        {
          details: {
            network: this.network,
            reason: hexText(r.result.message ?? '') || r.result.code || 'reverted',
          },
        },
      );
    }
    return r.energy_used;
  }

  async #feeLimit(request: TransferRequest): Promise<bigint> {
    const cap = this.config.maxFeeLimit;
    if (request.fee?.feeLimit !== undefined) {
      if (request.fee.feeLimit > cap) this.#capExceeded(request.fee.feeLimit, cap);
      return request.fee.feeLimit;
    }
    const [energy, params] = await Promise.all([
      this.#estimateEnergy(request),
      this.client.getChainParameters(),
    ]);
    const price = params.get('getEnergyFee') ?? DEFAULT_ENERGY_PRICE;
    const limit = (energy * price * BigInt(this.config.feeLimitMultiplierPercent)) / 100n;
    if (energy * price > cap) this.#capExceeded(energy * price, cap);
    return limit > cap ? cap : limit;
  }

  #capExceeded(value: bigint, cap: bigint): never {
    throw new ChainError(
      'CUSTOS_CHAIN_FEE_CAP_EXCEEDED',
      `${this.network}: fee_limit ${value} exceeds cap ${cap}`,
      {
        details: { network: this.network, value: value.toString(), cap: cap.toString() },
      },
    );
  }

  // --- build, explain, sign --------------------------------------------------------------------

  async #prepare(request: TransferRequest): Promise<{ raw: TronRawData; asset: Asset }> {
    const owner = tronAddressBytes(request.from, 'from');
    const to = tronAddressBytes(request.to, 'to');
    if (typeof request.amount !== 'bigint' || request.amount <= 0n) {
      throw new ChainError(
        'CUSTOS_CHAIN_INVALID_TRANSACTION',
        'amount must be a positive bigint in base units',
      );
    }
    const asset = this.assets.find(
      (a) => a.symbol === request.asset.symbol && a.contract === request.asset.contract,
    );
    if (!asset)
      throw new ChainError(
        'CUSTOS_CHAIN_UNSUPPORTED',
        `${this.network}: asset ${request.asset.symbol} is not configured`,
      );
    if (asset.kind === 'native' && request.amount > INT64_MAX) {
      throw new ChainError('CUSTOS_CHAIN_INVALID_TRANSACTION', 'TRX amount exceeds int64');
    }
    const head = await this.client.getNowBlock();
    const number = head.block_header.raw_data.number ?? 0n;
    const ref = refBlock(number, Buffer.from(head.blockID, 'hex'));
    const headTime = head.block_header.raw_data.timestamp;
    const memo = request.memo ? new TextEncoder().encode(request.memo) : new Uint8Array(0);
    const base = {
      ...ref,
      expiration: headTime + BigInt(expirationMs(this.config.expirationMs, request.validForMs)),
      timestamp: BigInt(this.#now()),
      data: memo,
    };
    if (asset.kind === 'native') {
      return {
        asset,
        raw: {
          ...base,
          feeLimit: 0n,
          contract: { type: 'TransferContract', owner, to, amount: request.amount },
        },
      };
    }
    const feeLimit = await this.#feeLimit({ ...request, asset });
    return {
      asset,
      raw: {
        ...base,
        feeLimit,
        contract: {
          type: 'TriggerSmartContract',
          owner,
          contract: tronAddressBytes(asset.contract!),
          data: trc20TransferData(to, request.amount),
          callValue: 0n,
        },
      },
    };
  }

  async buildTransfer(request: TransferRequest): Promise<UnsignedTransaction> {
    const { raw, asset } = await this.#prepare(request);
    const fee = await this.#fee({ ...request, asset }, raw);
    const balance = await this.client.getAccountBalance(request.from);
    const needTrx = fee.max + (asset.kind === 'native' ? request.amount : 0n);
    if (balance.balance < needTrx) {
      throw new ChainError(
        'CUSTOS_CHAIN_INSUFFICIENT_FUNDS',
        `${this.network}: ${request.from} cannot pay amount + max fee`,
        {
          details: { network: this.network, balance: balance.balance.toString(), needed: needTrx.toString() },
        },
      );
    }
    if (asset.kind === 'token') {
      const tokenBalance = await this.getBalance(request.from, asset);
      if (tokenBalance < request.amount) {
        throw new ChainError(
          'CUSTOS_CHAIN_INSUFFICIENT_FUNDS',
          `${this.network}: ${request.from} holds too little ${asset.symbol}`,
          {
            details: {
              network: this.network,
              balance: tokenBalance.toString(),
              needed: request.amount.toString(),
            },
          },
        );
      }
    }
    const bytes = encodeRawData(raw);
    const txId = txIdOf(bytes);
    const from = tronAddressFromBytes(raw.contract.owner);
    return {
      network: this.network,
      family: 'tron',
      payload: Buffer.from(bytes).toString('hex'),
      digests: [{ digest: txId, signer: from }],
      txId: Buffer.from(txId).toString('hex'),
      summary: this.#summary(raw),
      fee,
      expiresAt: Number(raw.expiration),
    };
  }

  #summary(raw: TronRawData): TransferSummary {
    const c = raw.contract;
    const from = tronAddressFromBytes(c.owner);
    const bandwidthMax = (BigInt(encodeRawData(raw).length) + BANDWIDTH_OVERHEAD) * DEFAULT_BANDWIDTH_PRICE;
    if (c.type === 'TransferContract') {
      return {
        network: this.network,
        from,
        to: tronAddressFromBytes(c.to),
        asset: this.#native,
        amount: c.amount,
        nonce: null,
        maxFee: bandwidthMax,
      };
    }
    const contract = tronAddressFromBytes(c.contract);
    const token = this.#tokens.find((t) => t.contract === contract);
    const call = decodeTrc20Transfer(c.data);
    if (!token || !call || c.callValue !== 0n) {
      throw new ChainError(
        'CUSTOS_CHAIN_INVALID_TRANSACTION',
        'tron: not a TRC-20 transfer on a configured token',
      );
    }
    return {
      network: this.network,
      from,
      to: tronAddressFromBytes(call.to),
      asset: token,
      amount: call.amount,
      nonce: null,
      maxFee: bandwidthMax + raw.feeLimit,
    };
  }

  explainTransaction(tx: UnsignedTransaction): TransferSummary {
    if (tx.network !== this.network || tx.family !== 'tron') {
      throw new ChainError('CUSTOS_CHAIN_INVALID_TRANSACTION', `tron: transaction is for ${tx.network}`);
    }
    const bytes = Buffer.from(tx.payload, 'hex');
    let raw: TronRawData;
    try {
      raw = decodeRawData(bytes);
    } catch (cause) {
      throw new ChainError('CUSTOS_CHAIN_INVALID_TRANSACTION', 'tron: payload is not a transfer we build', {
        cause,
      });
    }
    const id = txIdOf(bytes);
    const d = tx.digests[0];
    if (!d || tx.digests.length !== 1 || !Buffer.from(d.digest).equals(Buffer.from(id))) {
      throw new ChainError('CUSTOS_CHAIN_INVALID_TRANSACTION', 'tron: digest is not sha256(raw_data)');
    }
    const summary = this.#summary(raw);
    if (d.signer !== summary.from) {
      throw new ChainError('CUSTOS_CHAIN_INVALID_TRANSACTION', 'tron: signer is not the owner_address');
    }
    return summary;
  }

  async releaseTransfer(_tx: UnsignedTransaction): Promise<void> {
    // Tron has no account nonce: an unsigned transaction simply expires.
  }

  attachSignatures(tx: UnsignedTransaction, signatures: readonly ChainSignature[]): SignedTransaction {
    const summary = this.explainTransaction(tx);
    const d = tx.digests[0]!;
    const sig = signatures[0];
    if (!sig || signatures.length !== 1) {
      throw new ChainError('CUSTOS_CHAIN_INVALID_TRANSACTION', 'tron: exactly one signature per transaction');
    }
    const recovery = findRecovery(d.digest, sig.signature, sig.recovery, tronAddressFromPublicKey, d.signer);
    if (recovery === null) {
      throw new ChainError(
        'CUSTOS_CHAIN_SIGNATURE_MISMATCH',
        'tron: signature does not recover to the owner',
        {
          details: { signer: d.signer },
        },
      );
    }
    const raw = decodeRawData(Buffer.from(tx.payload, 'hex'));
    const txId = Buffer.from(d.digest).toString('hex');
    const json = tronJson({
      visible: false,
      txID: txId,
      raw_data: rawDataJson(raw),
      raw_data_hex: tx.payload,
      signature: [signatureHex(sig.signature, recovery)],
    });
    return { network: this.network, family: 'tron', txId, raw: json, summary };
  }

  async broadcast(tx: SignedTransaction): Promise<BroadcastResult> {
    if (tx.network !== this.network || tx.family !== 'tron') {
      throw new ChainError('CUSTOS_CHAIN_INVALID_TRANSACTION', `tron: transaction is for ${tx.network}`);
    }
    for (let attempt = 0; ; attempt++) {
      const r = await this.client.broadcastTransaction(tx.raw);
      if (r.result === true) return { txId: tx.txId, alreadyKnown: false };
      const reason = hexText(r.message ?? '') || r.code || 'unknown';
      const details = { network: this.network, txId: tx.txId, code: r.code, reason };
      switch (r.code) {
        case 'DUP_TRANSACTION_ERROR':
          return { txId: tx.txId, alreadyKnown: true };
        case 'SIGERROR':
          throw new ChainError(
            'CUSTOS_CHAIN_SIGNATURE_MISMATCH',
            `${this.network}: node rejected the signature`,
            { details },
          );
        case 'BANDWITH_ERROR':
          throw new ChainError(
            'CUSTOS_CHAIN_INSUFFICIENT_FUNDS',
            `${this.network}: not enough bandwidth or TRX`,
            { details },
          );
        case 'SERVER_BUSY':
          if (attempt < this.config.rpcRetries) continue;
          throw new ChainError('CUSTOS_CHAIN_RPC_UNAVAILABLE', `${this.network}: node busy`, { details });
        case 'CONTRACT_VALIDATE_ERROR':
          if (/balance is not sufficient|insufficient/i.test(reason)) {
            throw new ChainError('CUSTOS_CHAIN_INSUFFICIENT_FUNDS', `${this.network}: ${reason}`, {
              details,
            });
          }
          break;
      }
      throw new ChainError(
        'CUSTOS_CHAIN_BROADCAST_REJECTED',
        `${this.network}: node rejected the transaction`,
        { details },
      );
    }
  }

  async getTransactionStatus(ref: TxRef): Promise<TxStatus> {
    const [info, head, solid] = await Promise.all([
      this.client.getTransactionInfoById(ref.txId),
      this.client.getNowBlock(),
      this.client.getSolidNowBlock(),
    ]);
    const headNumber = head.block_header.raw_data.number ?? 0n;
    const solidNumber = solid.block_header.raw_data.number ?? 0n;
    if (!info) {
      const expired =
        ref.expiresAt !== undefined && head.block_header.raw_data.timestamp > BigInt(ref.expiresAt);
      const state = ref.knownBlockHash ? 'reorged' : expired ? 'dropped' : 'pending';
      return { state, confirmations: 0, blockNumber: null, blockHash: null };
    }
    const block = await this.client.getBlockByNum(info.blockNumber);
    const blockHash = block?.blockID ?? null;
    const confirmations = Number(headNumber - info.blockNumber + 1n);
    const base = { confirmations, blockNumber: info.blockNumber, blockHash, fee: info.fee ?? 0n };
    if (ref.knownBlockHash && blockHash && ref.knownBlockHash !== blockHash)
      return { ...base, state: 'reorged' };
    const result = info.receipt?.result;
    const solidified = info.blockNumber <= solidNumber;
    if (info.result === 'FAILED' || (result !== undefined && result !== 'SUCCESS')) {
      // Final only once its block is solidified (as a success is): until then it stays pending.
      const reason = hexText(info.resMessage ?? '') || result || 'FAILED';
      return { ...base, state: solidified ? 'failed' : 'pending', reason };
    }
    return { ...base, state: solidified ? 'confirmed' : 'pending' };
  }

  async getBalance(address: string, asset: Asset): Promise<bigint> {
    const a = validateTronAddress(address);
    if (!a.valid) throw new ChainError('CUSTOS_CHAIN_INVALID_ADDRESS', `address: ${a.reason}`);
    if (asset.kind === 'native') return (await this.client.getAccountBalance(a.address!)).balance;
    const r = await this.client.triggerConstantContract({
      owner: a.address!,
      contract: asset.contract!,
      selector: 'balanceOf(address)',
      parameter: tronAddressHex(a.address!).slice(2).padStart(64, '0'),
    });
    const out = r.constant_result?.[0];
    if (r.result.result !== true || out === undefined || out.length !== 64) {
      throw new ChainError('CUSTOS_CHAIN_RPC_INVALID_RESPONSE', `${this.network}: balanceOf failed`);
    }
    return BigInt(`0x${out}`);
  }

  async getHead(): Promise<BlockRef> {
    const b = await this.client.getNowBlock();
    return { number: b.block_header.raw_data.number ?? 0n, hash: b.blockID };
  }

  /**
   * Block by block: TRX deposits from TransferContract transactions in the block body (amount read
   * from raw_data_hex, which must hash to the txID), TRC-20 deposits from Transfer logs in
   * /wallet/gettransactioninfobyblocknum (only successful transactions, only configured tokens).
   */
  async scanDeposits(params: ScanParameters): Promise<ScanResult> {
    const watch = new Map<string, string>(); // 21-byte hex → T-address
    for (const a of params.addresses) {
      const v = validateTronAddress(a);
      if (v.valid) watch.set(tronAddressHex(v.address!), v.address!);
    }
    const assets = params.assets ?? this.assets;
    const wantNative = assets.some((a) => a.kind === 'native');
    const tokens = new Map(
      assets.filter((a) => a.kind === 'token').map((t) => [tronAddressHex(t.contract!).slice(2), t] as const),
    );
    const [head, solid] = await Promise.all([this.client.getNowBlock(), this.client.getSolidNowBlock()]);
    const headNumber = head.block_header.raw_data.number ?? 0n;
    const solidNumber = solid.block_header.raw_data.number ?? 0n;

    let cursor: ScanCursor;
    if (params.cursor) {
      cursor = params.cursor;
      const now = await this.#blockHash(cursor.blockNumber);
      if (now !== cursor.blockHash) return this.#reorg(cursor, headNumber);
    } else {
      const start = params.startBlock ?? headNumber;
      const prev = start - 1n;
      cursor = { blockNumber: prev, blockHash: (await this.#blockHash(prev)) ?? '', recent: [] };
    }
    const from = cursor.blockNumber + 1n;
    const max = BigInt(params.maxBlocks ?? this.config.scan.maxBlocks);
    const to = headNumber < from + max - 1n ? headNumber : from + max - 1n;
    if (from > to) return { deposits: [], cursor, reorg: null, head: headNumber };
    const numbers: bigint[] = [];
    for (let n = from; n <= to; n++) numbers.push(n);
    const blocks = await mapLimit(numbers, this.config.scan.concurrency, (n) => this.client.getBlockByNum(n));
    const scanned: TronBlock[] = [];
    let parent = cursor.blockHash;
    for (const b of blocks) {
      if (!b || (cursor.blockNumber >= 0n && b.block_header.raw_data.parentHash !== parent)) break;
      parent = b.blockID;
      scanned.push(b);
    }
    const deposits: Deposit[] = [];
    const add = (d: Omit<Deposit, 'network' | 'confirmations' | 'confirmed'>) =>
      deposits.push({
        network: this.network,
        ...d,
        confirmations: Number(headNumber - d.blockNumber + 1n),
        confirmed: d.blockNumber <= solidNumber,
      });
    const needInfo: TronBlock[] = [];
    for (const b of scanned) {
      const number = b.block_header.raw_data.number ?? 0n;
      let hasCall = false;
      for (const t of b.transactions ?? []) {
        const c = t.raw_data.contract[0];
        if (!c) continue;
        if (c.type === 'TriggerSmartContract') hasCall = true;
        if (!wantNative || c.type !== 'TransferContract' || watch.size === 0) continue;
        if (t.ret?.[0]?.contractRet !== undefined && t.ret[0].contractRet !== 'SUCCESS') continue;
        const transfer = t.raw_data_hex ? decodeTransfer(t.raw_data_hex, t.txID) : null;
        if (!transfer) continue;
        const toAddr = watch.get(transfer.to);
        if (!toAddr || transfer.amount <= 0n) continue;
        add({
          txId: t.txID,
          index: -1,
          from: tronAddressFromBytes(Buffer.from(transfer.owner, 'hex')),
          to: toAddr,
          asset: this.#native,
          amount: transfer.amount,
          blockNumber: number,
          blockHash: b.blockID,
        });
      }
      if (hasCall && tokens.size > 0 && watch.size > 0) needInfo.push(b);
    }
    const infos = await mapLimit(needInfo, this.config.scan.concurrency, async (b) => ({
      b,
      infos: await this.client.getTransactionInfoByBlockNum(b.block_header.raw_data.number ?? 0n),
    }));
    for (const { b, infos: list } of infos) {
      for (const info of list) {
        if (info.receipt?.result !== 'SUCCESS' || info.result === 'FAILED') continue;
        (info.log ?? []).forEach((log, index) => {
          const token = tokens.get(log.address.toLowerCase().replace(/^41(?=[0-9a-f]{40}$)/, ''));
          const topics = log.topics ?? [];
          if (!token || topics.length !== 3 || topics[0]!.toLowerCase() !== TRANSFER_TOPIC) return;
          const toAddr = watch.get(`41${topics[2]!.slice(-40).toLowerCase()}`);
          const amount = log.data && log.data.length === 64 ? BigInt(`0x${log.data}`) : 0n;
          if (!toAddr || amount === 0n) return;
          add({
            txId: info.id,
            index,
            from: tronAddressFromBytes(Buffer.from(`41${topics[1]!.slice(-40)}`, 'hex')),
            to: toAddr,
            asset: token,
            amount,
            blockNumber: b.block_header.raw_data.number ?? 0n,
            blockHash: b.blockID,
          });
        });
      }
    }
    deposits.sort((a, b) =>
      a.blockNumber === b.blockNumber ? a.index - b.index : a.blockNumber < b.blockNumber ? -1 : 1,
    );
    const next = advanceCursor(
      cursor,
      scanned.map((b) => ({ number: b.block_header.raw_data.number ?? 0n, hash: b.blockID })),
      this.config.scan.reorgHistory,
    );
    return { deposits, cursor: next, reorg: null, head: headNumber };
  }

  async #reorg(cursor: ScanCursor, head: bigint): Promise<ScanResult> {
    const { fork, orphaned, deep } = await findForkPoint(cursor, (n) => this.#blockHash(n));
    let forkRef = fork;
    if (!forkRef) {
      const oldest = orphaned[0]?.number ?? cursor.blockNumber;
      const n = oldest > 0n ? oldest - 1n : 0n;
      forkRef = { number: n, hash: (await this.#blockHash(n)) ?? '' };
    }
    return {
      deposits: [],
      cursor: rewindCursor(cursor, forkRef),
      reorg: { forkBlockNumber: forkRef.number, forkBlockHash: fork ? fork.hash : null, orphaned, deep },
      head,
    };
  }

  async #blockHash(n: bigint): Promise<string | null> {
    if (n < 0n) return null;
    return (await this.client.getBlockByNum(n))?.blockID ?? null;
  }
}

/** TransferContract fields read from raw_data_hex (exact amounts), after checking sha256 = txID. */
function decodeTransfer(rawHex: string, txId: string): { owner: string; to: string; amount: bigint } | null {
  try {
    const bytes = Buffer.from(rawHex, 'hex');
    if (Buffer.from(sha256(bytes)).toString('hex') !== txId.toLowerCase()) return null;
    const raw = readMessage(bytes, 'tron/raw');
    const contract = readMessage(oneBytes(raw, 11, 'tron/raw'), 'tron/contract');
    if (oneInt(contract, 1, 'tron/contract') !== 1n) return null;
    const any = readMessage(oneBytes(contract, 2, 'tron/contract'), 'tron/any');
    const value = readMessage(oneBytes(any, 2, 'tron/any'), 'tron/transfer');
    return {
      owner: Buffer.from(oneBytes(value, 1, 'tron/transfer')).toString('hex'),
      to: Buffer.from(oneBytes(value, 2, 'tron/transfer')).toString('hex'),
      amount: oneInt(value, 3, 'tron/transfer'),
    };
  } catch {
    return null;
  }
}

/** java-tron hex-encodes error messages; show them as text when they are. */
function hexText(s: string): string {
  if (/^([0-9a-fA-F]{2})+$/.test(s)) {
    const t = Buffer.from(s, 'hex').toString('utf8');
    if (/^[\x20-\x7e]*$/.test(t)) return t;
  }
  return s;
}

/** Tron's protocol refuses an expiration more than 24 h after the head block. */
const TRON_MAX_EXPIRATION_MS = 24 * 3600_000;

/** The configured lifetime, or longer when the caller needs it (offline signing), at most 24 h. */
export function expirationMs(configured: number, validFor: number | undefined): number {
  if (validFor === undefined || !Number.isFinite(validFor)) return configured;
  return Math.min(TRON_MAX_EXPIRATION_MS, Math.max(configured, Math.floor(validFor)));
}
