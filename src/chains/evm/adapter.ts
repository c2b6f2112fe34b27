// The EVM ChainAdapter on viem: one instance per configured network (Ethereum, Polygon, Arbitrum,
// Optimism, BSC, anvil… — differences are configuration, see src/chains/networks.ts).
// Policies (nonces, fees, replacement, reorgs) are described in docs/chains.md.
import {
  BaseError,
  createPublicClient,
  getAddress,
  type Hex,
  http,
  type PublicClient,
  parseAbiItem,
  TransactionNotFoundError,
  TransactionReceiptNotFoundError,
} from 'viem';
import { ChainError, redactUrl } from '../../errors.ts';
import type { EvmNetworkConfig } from '../networks.ts';
import type {
  AddressValidation,
  Asset,
  BlockRef,
  BroadcastResult,
  ChainAdapter,
  ChainSignature,
  Deposit,
  FeeEstimate,
  FeeOptions,
  ReplacementParameters,
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
import { advanceCursor, findForkPoint, mapLimit, registerTokenIn, rewindCursor, sleep } from '../util.ts';
import { evmAddressFromPublicKey, requireEvmAddress, validateEvmAddress } from './address.ts';
import { MemoryNonceStore, type NonceStore } from './nonce.ts';
import {
  attachSignature,
  digestOf,
  ERC20_ABI,
  type EvmTxFields,
  maxFeeOf,
  parseUnsigned,
  serializeUnsigned,
  summarize,
  transferCall,
} from './transfer.ts';

const TRANSFER_EVENT = parseAbiItem(
  'event Transfer(address indexed from, address indexed to, uint256 value)',
);
const NATIVE_GAS = 21_000n;
/** Beyond this many addresses the Transfer log query filters locally instead of by topic. */
const MAX_TOPIC_ADDRESSES = 200;
/** Nodes refuse a same-nonce replacement that raises fees by less than 10%. */
const MIN_BUMP_PERCENT = 10;

export interface EvmAdapterOptions {
  network: EvmNetworkConfig;
  /** Default: a MemoryNonceStore (single process). */
  nonceStore?: NonceStore;
  /** Inject a client (tests); default: viem http transport with JSON-RPC batching. */
  client?: PublicClient;
}

interface FeeFields {
  type: 'eip1559' | 'legacy';
  baseFeePerGas?: bigint;
  maxFeePerGas?: bigint;
  maxPriorityFeePerGas?: bigint;
  gasPrice?: bigint;
}

export function createEvmAdapter(opts: EvmAdapterOptions): EvmAdapter {
  return new EvmAdapter(opts);
}

export class EvmAdapter implements ChainAdapter {
  readonly network: string;
  readonly family = 'evm' as const;
  /** The native coin first, then configured and registered tokens. */
  get assets(): readonly Asset[] {
    return this.#assets;
  }
  readonly #assets: Asset[];
  readonly confirmations: number;
  readonly config: EvmNetworkConfig;
  readonly client: PublicClient;
  readonly nonces: NonceStore;
  readonly #native: Asset;
  readonly #tokens: Asset[];
  #chainIdChecked: Promise<void> | null = null;

  constructor(opts: EvmAdapterOptions) {
    const net = opts.network;
    this.config = net;
    this.network = net.id;
    this.confirmations = net.confirmations;
    this.nonces = opts.nonceStore ?? new MemoryNonceStore();
    this.client =
      opts.client ??
      (createPublicClient({
        transport: http(net.rpcUrl, {
          batch: { batchSize: 100, wait: 0 },
          retryCount: net.rpcRetries,
          timeout: net.rpcTimeoutMs,
        }),
      }) as PublicClient);
    this.#native = {
      network: net.id,
      symbol: net.nativeSymbol,
      decimals: net.nativeDecimals,
      kind: 'native',
      contract: null,
    };
    this.#tokens = net.tokens.map((t) => ({
      network: net.id,
      symbol: t.symbol,
      decimals: t.decimals,
      kind: 'token' as const,
      contract: getAddress(t.contract),
    }));
    this.#assets = [this.#native, ...this.#tokens];
  }

  registerToken(token: { symbol: string; decimals: number; contract: string }): Asset {
    const v = validateEvmAddress(token.contract);
    if (!v.valid) {
      throw new ChainError(
        'CUSTOS_CHAIN_INVALID_ADDRESS',
        `${this.network}: token ${token.symbol}: ${v.reason}`,
      );
    }
    const known = this.#assets.length;
    const a = registerTokenIn(this.#assets, this.network, { ...token, contract: v.address! });
    if (this.#assets.length > known) this.#tokens.push(a);
    return a;
  }

  // --- addresses -------------------------------------------------------------------------------

  deriveAddress(publicKey: Uint8Array): string {
    return evmAddressFromPublicKey(publicKey);
  }

  validateAddress(address: string): AddressValidation {
    return validateEvmAddress(address);
  }

  asset(symbol: string): Asset {
    const a = this.assets.find((x) => x.symbol === symbol);
    if (!a) throw new ChainError('CUSTOS_CHAIN_UNSUPPORTED', `${this.network}: unknown asset ${symbol}`);
    return a;
  }

  // --- fees ------------------------------------------------------------------------------------

  async estimateFee(request: TransferRequest): Promise<FeeEstimate> {
    const { from, to, asset } = this.#checkRequest(request);
    const fees = await this.#feeFields(request.fee);
    const gas = await this.#gasLimit(from, to, asset, request.amount, request.fee);
    return this.#feeEstimate(gas, fees);
  }

  #feeEstimate(gas: bigint, f: FeeFields): FeeEstimate {
    const maxPerGas = f.type === 'legacy' ? f.gasPrice! : f.maxFeePerGas!;
    const expectedPerGas =
      f.type === 'legacy'
        ? f.gasPrice!
        : minBig(f.maxFeePerGas!, (f.baseFeePerGas ?? 0n) + f.maxPriorityFeePerGas!);
    return {
      asset: this.#native,
      expected: gas * expectedPerGas,
      max: gas * maxPerGas,
      evm: { ...f, gasLimit: gas },
    };
  }

  /** Fee fields for now, within the caps; throws CUSTOS_CHAIN_FEE_CAP_EXCEEDED above them. */
  async #feeFields(opt: FeeOptions | undefined): Promise<FeeFields> {
    const cfg = this.config.fees;
    const fast = opt?.speed === 'fast';
    if (this.config.txType === 'legacy') {
      let gasPrice = opt?.gasPrice ?? (await this.#rpc('eth_gasPrice', () => this.client.getGasPrice()));
      if (fast && opt?.gasPrice === undefined) gasPrice = (gasPrice * BigInt(cfg.fastPriorityPercent)) / 100n;
      if (gasPrice > cfg.maxFeePerGasCap) this.#capExceeded('gasPrice', gasPrice, cfg.maxFeePerGasCap);
      return { type: 'legacy', gasPrice };
    }
    const block = await this.#rpc('eth_getBlockByNumber', () => this.client.getBlock({ blockTag: 'latest' }));
    const baseFeePerGas = block.baseFeePerGas ?? 0n;
    let priority = opt?.maxPriorityFeePerGas;
    if (priority === undefined) {
      const suggested = await this.#rpc('eth_maxPriorityFeePerGas', async () =>
        BigInt(await this.client.request({ method: 'eth_maxPriorityFeePerGas' })),
      );
      priority = maxBig(suggested, cfg.minPriorityFeePerGas);
      if (fast) priority = (priority * BigInt(cfg.fastPriorityPercent)) / 100n;
      priority = minBig(priority, cfg.maxPriorityFeePerGasCap);
    } else if (priority > cfg.maxPriorityFeePerGasCap) {
      this.#capExceeded('maxPriorityFeePerGas', priority, cfg.maxPriorityFeePerGasCap);
    }
    let maxFee = opt?.maxFeePerGas;
    if (maxFee === undefined) {
      if (baseFeePerGas + priority > cfg.maxFeePerGasCap) {
        this.#capExceeded('baseFee+priority', baseFeePerGas + priority, cfg.maxFeePerGasCap);
      }
      maxFee = minBig(
        (baseFeePerGas * BigInt(cfg.baseFeeMultiplierPercent)) / 100n + priority,
        cfg.maxFeePerGasCap,
      );
    } else if (maxFee > cfg.maxFeePerGasCap) {
      this.#capExceeded('maxFeePerGas', maxFee, cfg.maxFeePerGasCap);
    }
    if (maxFee < priority) {
      throw new ChainError(
        'CUSTOS_CHAIN_INVALID_TRANSACTION',
        'evm: maxFeePerGas below maxPriorityFeePerGas',
      );
    }
    return { type: 'eip1559', baseFeePerGas, maxFeePerGas: maxFee, maxPriorityFeePerGas: priority };
  }

  #capExceeded(field: string, value: bigint, cap: bigint): never {
    throw new ChainError(
      'CUSTOS_CHAIN_FEE_CAP_EXCEEDED',
      `${this.network}: ${field} ${value} exceeds cap ${cap}`,
      {
        details: { network: this.network, field, value: value.toString(), cap: cap.toString() },
      },
    );
  }

  async #gasLimit(
    from: Hex,
    to: Hex,
    asset: Asset,
    amount: bigint,
    opt: FeeOptions | undefined,
  ): Promise<bigint> {
    if (opt?.gasLimit !== undefined) return opt.gasLimit;
    const mult = BigInt(this.config.fees.gasLimitMultiplierPercent);
    if (asset.kind === 'native') {
      // A plain transfer to an account without code costs exactly 21000; to a contract, estimate.
      const code = await this.#rpc('eth_getCode', () => this.client.getCode({ address: to }));
      if (code === undefined || code === '0x') return NATIVE_GAS;
      return ((await this.#estimateGas(from, to, amount, '0x')) * mult) / 100n;
    }
    const data = transferCall(to, amount);
    return ((await this.#estimateGas(from, asset.contract as Hex, 0n, data)) * mult) / 100n;
  }

  async #estimateGas(from: Hex, to: Hex, value: bigint, data: Hex): Promise<bigint> {
    try {
      return await this.client.estimateGas({ account: from, to, value, data });
    } catch (cause) {
      if (isTransportError(cause)) throw this.#unavailable('eth_estimateGas', cause);
      throw new ChainError(
        'CUSTOS_CHAIN_ESTIMATE_FAILED',
        `${this.network}: gas estimation failed (would revert)`,
        {
          cause,
          details: { network: this.network, reason: shortReason(cause) },
        },
      );
    }
  }

  // --- build, explain, sign --------------------------------------------------------------------

  async buildTransfer(request: TransferRequest): Promise<UnsignedTransaction> {
    const { from, to, asset } = this.#checkRequest(request);
    await this.#checkChainId();
    const [fees, gas, balance, chainPending] = await Promise.all([
      this.#feeFields(request.fee),
      this.#gasLimit(from, to, asset, request.amount, request.fee),
      this.#rpc('eth_getBalance', () => this.client.getBalance({ address: from })),
      this.#pendingNonce(from),
    ]);
    const budget = request.fee?.budget;
    if (
      budget !== undefined &&
      fees.type === 'eip1559' &&
      request.fee?.maxFeePerGas === undefined &&
      gas > 0n
    ) {
      // Headroom for a late broadcast (cold vaults): the approved maximum, within the cap.
      fees.maxFeePerGas = minBig(maxBig(fees.maxFeePerGas!, budget / gas), this.config.fees.maxFeePerGasCap);
    }
    const fee = this.#feeEstimate(gas, fees);
    const needed = fee.max + (asset.kind === 'native' ? request.amount : 0n);
    if (balance < needed) {
      throw new ChainError(
        'CUSTOS_CHAIN_INSUFFICIENT_FUNDS',
        `${this.network}: ${from} cannot pay amount + max fee`,
        {
          details: { network: this.network, balance: balance.toString(), needed: needed.toString() },
        },
      );
    }
    if (asset.kind === 'token') {
      const tokenBalance = await this.getBalance(from, asset);
      if (tokenBalance < request.amount) {
        throw new ChainError(
          'CUSTOS_CHAIN_INSUFFICIENT_FUNDS',
          `${this.network}: ${from} holds too little ${asset.symbol}`,
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
    // The nonce is reserved last, after everything that can fail, so failures leave no gap.
    const nonce = await this.nonces.reserve(this.network, from, chainPending);
    const fields: EvmTxFields = {
      chainId: this.config.chainId,
      nonce,
      to: asset.kind === 'native' ? to : (asset.contract as Hex),
      value: asset.kind === 'native' ? request.amount : 0n,
      data: asset.kind === 'native' ? '0x' : transferCall(to, request.amount),
      gas,
      ...fees,
      type: fees.type,
    };
    return this.#unsigned(from, fields, fee);
  }

  #unsigned(from: Hex, fields: EvmTxFields, fee: FeeEstimate): UnsignedTransaction {
    const payload = serializeUnsigned(fields);
    return {
      network: this.network,
      family: 'evm',
      payload,
      digests: [{ digest: digestOf(payload), signer: from }],
      txId: null,
      summary: summarize(this.network, from, fields, this.#native, this.#tokens),
      fee,
    };
  }

  explainTransaction(tx: UnsignedTransaction): TransferSummary {
    if (tx.network !== this.network || tx.family !== 'evm') {
      throw new ChainError('CUSTOS_CHAIN_INVALID_TRANSACTION', `evm: transaction is for ${tx.network}`);
    }
    const d = tx.digests[0];
    if (!d || tx.digests.length !== 1) {
      throw new ChainError('CUSTOS_CHAIN_INVALID_TRANSACTION', 'evm: exactly one digest expected');
    }
    const fields = parseUnsigned(tx.payload);
    if (fields.chainId !== this.config.chainId) {
      throw new ChainError(
        'CUSTOS_CHAIN_INVALID_TRANSACTION',
        `evm: chain id ${fields.chainId} is not ${this.network}`,
      );
    }
    if (!Buffer.from(digestOf(tx.payload as Hex)).equals(Buffer.from(d.digest))) {
      throw new ChainError('CUSTOS_CHAIN_INVALID_TRANSACTION', 'evm: digest does not match the payload');
    }
    const from = requireEvmAddress(d.signer, 'signer');
    return summarize(this.network, from, fields, this.#native, this.#tokens);
  }

  async releaseTransfer(tx: UnsignedTransaction): Promise<void> {
    const s = this.explainTransaction(tx);
    if (s.nonce !== null) await this.nonces.release(this.network, s.from, s.nonce);
  }

  attachSignatures(tx: UnsignedTransaction, signatures: readonly ChainSignature[]): SignedTransaction {
    const summary = this.explainTransaction(tx);
    return attachSignature(tx, signatures, summary);
  }

  /**
   * A same-nonce transaction that replaces a stuck one: 'speed-up' re-sends the same transfer,
   * 'cancel' sends 0 to ourselves. Both fee fields rise by at least `bumpPercent` (>= 10) over the
   * original and at least to today's estimate; the caps still apply. The nonce is not reserved again.
   */
  async buildReplacement(
    original: UnsignedTransaction,
    params: ReplacementParameters,
  ): Promise<UnsignedTransaction> {
    const summary = this.explainTransaction(original);
    const bump = params.bumpPercent ?? 15;
    if (!Number.isInteger(bump) || bump < MIN_BUMP_PERCENT || bump > 1000) {
      throw new ChainError(
        'CUSTOS_CHAIN_REPLACEMENT_UNDERPRICED',
        `evm: bumpPercent must be an integer in ${MIN_BUMP_PERCENT}..1000 (nodes require +10%)`,
      );
    }
    const old = parseUnsigned(original.payload);
    const now = await this.#feeFields(undefined).catch((e: unknown) => {
      // Today's fees above the cap: the bumped original may still fit, checked below.
      if (e instanceof ChainError && e.code === 'CUSTOS_CHAIN_FEE_CAP_EXCEEDED') return null;
      throw e;
    });
    const up = (x: bigint) => (x * BigInt(100 + bump) + 99n) / 100n;
    const caps = this.config.fees;
    let fields: EvmTxFields;
    if (old.type === 'legacy') {
      const gasPrice = maxBig(up(old.gasPrice!), now?.gasPrice ?? 0n);
      if (gasPrice > caps.maxFeePerGasCap) this.#capExceeded('gasPrice', gasPrice, caps.maxFeePerGasCap);
      fields = { ...old, gasPrice };
    } else {
      const maxPriorityFeePerGas = maxBig(up(old.maxPriorityFeePerGas!), now?.maxPriorityFeePerGas ?? 0n);
      const maxFeePerGas = maxBig(up(old.maxFeePerGas!), now?.maxFeePerGas ?? 0n, maxPriorityFeePerGas);
      if (maxPriorityFeePerGas > caps.maxPriorityFeePerGasCap) {
        this.#capExceeded('maxPriorityFeePerGas', maxPriorityFeePerGas, caps.maxPriorityFeePerGasCap);
      }
      if (maxFeePerGas > caps.maxFeePerGasCap)
        this.#capExceeded('maxFeePerGas', maxFeePerGas, caps.maxFeePerGasCap);
      fields = { ...old, maxFeePerGas, maxPriorityFeePerGas };
    }
    if (params.mode === 'cancel') {
      fields = { ...fields, to: summary.from as Hex, value: 0n, data: '0x', gas: NATIVE_GAS };
    }
    const perGas = fields.type === 'legacy' ? fields.gasPrice! : fields.maxFeePerGas!;
    const fee: FeeEstimate = {
      asset: this.#native,
      expected:
        fields.gas *
        (fields.type === 'legacy'
          ? perGas
          : minBig(perGas, (now?.baseFeePerGas ?? 0n) + fields.maxPriorityFeePerGas!)),
      max: maxFeeOf(fields),
      evm: {
        type: fields.type,
        gasLimit: fields.gas,
        ...(fields.type === 'legacy'
          ? { gasPrice: fields.gasPrice! }
          : {
              maxFeePerGas: fields.maxFeePerGas!,
              maxPriorityFeePerGas: fields.maxPriorityFeePerGas!,
              ...(now?.baseFeePerGas !== undefined ? { baseFeePerGas: now.baseFeePerGas } : {}),
            }),
      },
    };
    return this.#unsigned(summary.from as Hex, fields, fee);
  }

  // --- broadcast and status --------------------------------------------------------------------

  async broadcast(tx: SignedTransaction): Promise<BroadcastResult> {
    if (tx.network !== this.network || tx.family !== 'evm') {
      throw new ChainError('CUSTOS_CHAIN_INVALID_TRANSACTION', `evm: transaction is for ${tx.network}`);
    }
    const attempts = this.config.rpcRetries + 1;
    let last: unknown;
    for (let i = 0; i < attempts; i++) {
      try {
        const hash = await this.client.sendRawTransaction({ serializedTransaction: tx.raw as Hex });
        if (hash.toLowerCase() !== tx.txId.toLowerCase()) {
          throw new ChainError(
            'CUSTOS_CHAIN_RPC_INVALID_RESPONSE',
            'evm: node returned another transaction hash',
          );
        }
        return { txId: tx.txId, alreadyKnown: false };
      } catch (e) {
        if (e instanceof ChainError) throw e;
        const msg = errorText(e);
        if (/already known|already imported|known transaction|alreadyknown/.test(msg)) {
          return { txId: tx.txId, alreadyKnown: true };
        }
        if (/nonce too low|nonce has already been used|oldnonce/.test(msg)) {
          // A retry after a lost reply looks like this once our own transaction is mined.
          if (await this.#knows(tx.txId)) return { txId: tx.txId, alreadyKnown: true };
          throw new ChainError('CUSTOS_CHAIN_NONCE_CONFLICT', `${this.network}: nonce already used`, {
            cause: e,
            details: { network: this.network, txId: tx.txId, nonce: tx.summary.nonce },
          });
        }
        if (/underpriced/.test(msg)) {
          throw new ChainError(
            'CUSTOS_CHAIN_REPLACEMENT_UNDERPRICED',
            `${this.network}: replacement underpriced`,
            {
              cause: e,
              details: { network: this.network, txId: tx.txId },
            },
          );
        }
        if (/insufficient funds/.test(msg)) {
          throw new ChainError(
            'CUSTOS_CHAIN_INSUFFICIENT_FUNDS',
            `${this.network}: insufficient funds for gas + value`,
            {
              cause: e,
              details: { network: this.network, txId: tx.txId },
            },
          );
        }
        if (!isTransportError(e)) {
          throw new ChainError(
            'CUSTOS_CHAIN_BROADCAST_REJECTED',
            `${this.network}: node rejected the transaction`,
            {
              cause: e,
              details: { network: this.network, txId: tx.txId, reason: shortReason(e) },
            },
          );
        }
        last = e;
        await sleep(200 * 2 ** i);
      }
    }
    throw this.#unavailable('eth_sendRawTransaction', last);
  }

  async #knows(hash: string): Promise<boolean> {
    try {
      await this.client.getTransaction({ hash: hash as Hex });
      return true;
    } catch {
      return false;
    }
  }

  async getTransactionStatus(ref: TxRef): Promise<TxStatus> {
    const hash = ref.txId as Hex;
    const receipt = await this.#rpc('eth_getTransactionReceipt', async () => {
      try {
        return await this.client.getTransactionReceipt({ hash });
      } catch (e) {
        if (e instanceof TransactionReceiptNotFoundError) return null;
        throw e;
      }
    });
    const head = await this.#rpc('eth_blockNumber', () => this.client.getBlockNumber({ cacheTime: 0 }));
    if (receipt) {
      const confirmations = Number(head - receipt.blockNumber + 1n);
      const reorged =
        ref.knownBlockHash !== undefined &&
        ref.knownBlockHash.toLowerCase() !== receipt.blockHash.toLowerCase();
      const base = {
        confirmations,
        blockNumber: receipt.blockNumber,
        blockHash: receipt.blockHash,
        fee: receipt.gasUsed * receipt.effectiveGasPrice,
        nonceConsumed: true,
      };
      if (reorged) return { ...base, state: 'reorged' };
      const deep = confirmations >= this.confirmations;
      // A revert is final only at the confirmation depth, like a success: until then its block can
      // be reorganised away and the transaction mined again (and succeed), so it stays pending.
      if (receipt.status === 'reverted')
        return { ...base, state: deep ? 'failed' : 'pending', reason: 'reverted' };
      return { ...base, state: deep ? 'confirmed' : 'pending' };
    }
    const inPool = await this.#rpc('eth_getTransactionByHash', async () => {
      try {
        await this.client.getTransaction({ hash });
        return true;
      } catch (e) {
        if (e instanceof TransactionNotFoundError) return false;
        throw e;
      }
    });
    const unmined = { confirmations: 0, blockNumber: null, blockHash: null };
    if (inPool)
      return { ...unmined, state: ref.knownBlockHash ? 'reorged' : 'pending', nonceConsumed: false };
    let nonceConsumed: boolean | undefined;
    if (ref.from !== undefined && ref.nonce !== undefined) {
      const latest = await this.#rpc('eth_getTransactionCount', () =>
        this.client.getTransactionCount({ address: ref.from as Hex, blockTag: 'latest' }),
      );
      nonceConsumed = latest > ref.nonce;
    }
    return {
      ...unmined,
      state: ref.knownBlockHash ? 'reorged' : 'dropped',
      ...(nonceConsumed !== undefined ? { nonceConsumed } : {}),
    };
  }

  // --- balances and blocks ---------------------------------------------------------------------

  async getBalance(address: string, asset: Asset): Promise<bigint> {
    const a = requireEvmAddress(address, 'address');
    if (asset.kind === 'native') {
      return this.#rpc('eth_getBalance', () => this.client.getBalance({ address: a }));
    }
    return this.#rpc('eth_call', () =>
      this.client.readContract({
        address: asset.contract as Hex,
        abi: ERC20_ABI,
        functionName: 'balanceOf',
        args: [a],
      }),
    );
  }

  async getHead(): Promise<BlockRef> {
    const b = await this.#rpc('eth_getBlockByNumber', () => this.client.getBlock({ blockTag: 'latest' }));
    return { number: b.number!, hash: b.hash! };
  }

  // --- deposits --------------------------------------------------------------------------------

  /**
   * Scans blocks after the cursor for native value transfers (block bodies) and ERC-20 Transfer
   * logs (eth_getLogs) to our addresses. Checks that every block links to the previous one by
   * parentHash; a break at the cursor is a reorg (reported with its fork point), a break inside the
   * range (a reorg while scanning) stops the scan there.
   */
  async scanDeposits(params: ScanParameters): Promise<ScanResult> {
    const scanCfg = this.config.scan;
    const watch = new Map<string, string>();
    for (const a of params.addresses) {
      const v = validateEvmAddress(a);
      if (v.valid) watch.set(v.address!.toLowerCase(), v.address!);
    }
    const assets = params.assets ?? this.assets;
    const wantNative = assets.some((a) => a.kind === 'native');
    const tokens = assets.filter((a) => a.kind === 'token');
    const head = await this.#rpc('eth_blockNumber', () => this.client.getBlockNumber({ cacheTime: 0 }));

    let cursor: ScanCursor;
    if (params.cursor) {
      cursor = params.cursor;
      const now = cursor.blockNumber >= 0n ? await this.#blockHash(cursor.blockNumber) : cursor.blockHash;
      if (now === null || now.toLowerCase() !== cursor.blockHash.toLowerCase()) {
        return this.#reorg(cursor, head);
      }
    } else {
      const start = params.startBlock ?? head;
      const prev = start > 0n ? start - 1n : -1n;
      cursor = {
        blockNumber: prev,
        blockHash: prev >= 0n ? ((await this.#blockHash(prev)) ?? '0x') : '0x',
        recent: [],
      };
    }

    const from = cursor.blockNumber + 1n;
    const max = BigInt(params.maxBlocks ?? scanCfg.maxBlocks);
    const to = minBig(head, from + max - 1n);
    if (from > to) return { deposits: [], cursor, reorg: null, head };

    const numbers: bigint[] = [];
    for (let n = from; n <= to; n++) numbers.push(n);
    const blocks = await mapLimit(numbers, scanCfg.concurrency * 10, (n) =>
      this.#rpc('eth_getBlockByNumber', () =>
        this.client.getBlock({ blockNumber: n, includeTransactions: wantNative }),
      ),
    );
    // Keep the prefix that links to the cursor and to itself.
    let good = 0;
    let parent = cursor.blockHash.toLowerCase();
    for (const b of blocks) {
      if (cursor.blockNumber >= 0n && b.parentHash.toLowerCase() !== parent) break;
      parent = b.hash!.toLowerCase();
      good++;
    }
    if (good === 0) return { deposits: [], cursor, reorg: null, head };
    let scanned = blocks.slice(0, good);
    const hashOf = new Map(scanned.map((b) => [b.number!, b.hash!.toLowerCase()]));

    const deposits: Deposit[] = [];
    const depositOf = (d: Omit<Deposit, 'network' | 'confirmations' | 'confirmed'>): Deposit => {
      const confirmations = Number(head - d.blockNumber + 1n);
      return { network: this.network, ...d, confirmations, confirmed: confirmations >= this.confirmations };
    };

    if (tokens.length > 0 && watch.size > 0) {
      const last = scanned[scanned.length - 1]!.number!;
      const toFilter = watch.size <= MAX_TOPIC_ADDRESSES ? ([...watch.values()] as Hex[]) : undefined;
      const logs = await this.#rpc('eth_getLogs', () =>
        this.client.getLogs({
          address: tokens.map((t) => t.contract as Hex),
          event: TRANSFER_EVENT,
          args: toFilter ? { to: toFilter } : {},
          fromBlock: from,
          toBlock: last,
          strict: true,
        }),
      );
      let cut: bigint | null = null;
      for (const log of logs) {
        if (log.removed || log.blockNumber === null || log.blockHash === null) continue;
        if (hashOf.get(log.blockNumber) !== log.blockHash.toLowerCase()) {
          // The log comes from a block we did not see: the chain moved while we scanned.
          cut = cut === null || log.blockNumber < cut ? log.blockNumber : cut;
          continue;
        }
        const toAddr = watch.get(log.args.to.toLowerCase());
        const token = tokens.find((t) => t.contract!.toLowerCase() === log.address.toLowerCase());
        if (!toAddr || !token || log.args.value === 0n) continue;
        deposits.push(
          depositOf({
            txId: log.transactionHash!,
            index: log.logIndex!,
            from: getAddress(log.args.from),
            to: toAddr,
            asset: token,
            amount: log.args.value,
            blockNumber: log.blockNumber,
            blockHash: log.blockHash,
          }),
        );
      }
      if (cut !== null) {
        const limit = cut;
        scanned = scanned.filter((b) => b.number! < limit);
        for (let i = deposits.length - 1; i >= 0; i--)
          if (deposits[i]!.blockNumber >= limit) deposits.splice(i, 1);
        if (scanned.length === 0) return { deposits: [], cursor, reorg: null, head };
      }
    }

    if (wantNative && watch.size > 0) {
      for (const b of scanned) {
        for (const t of b.transactions) {
          if (typeof t === 'string' || !t.to || t.value === 0n) continue;
          const toAddr = watch.get(t.to.toLowerCase());
          if (!toAddr) continue;
          deposits.push(
            depositOf({
              txId: t.hash,
              index: -1,
              from: getAddress(t.from),
              to: toAddr,
              asset: this.#native,
              amount: t.value,
              blockNumber: b.number!,
              blockHash: b.hash!,
            }),
          );
        }
      }
    }
    deposits.sort((a, b) =>
      a.blockNumber === b.blockNumber ? a.index - b.index : a.blockNumber < b.blockNumber ? -1 : 1,
    );
    const next = advanceCursor(
      cursor,
      scanned.map((b) => ({ number: b.number!, hash: b.hash! })),
      scanCfg.reorgHistory,
    );
    return { deposits, cursor: next, reorg: null, head };
  }

  async #reorg(cursor: ScanCursor, head: bigint): Promise<ScanResult> {
    const { fork, orphaned, deep } = await findForkPoint(cursor, (n) => this.#blockHash(n));
    let forkRef = fork;
    if (!forkRef) {
      // Deeper than our history: restart just below the oldest block we remember.
      const oldest = orphaned[0]?.number ?? cursor.blockNumber;
      const n = oldest > 0n ? oldest - 1n : 0n;
      forkRef = { number: n, hash: (await this.#blockHash(n)) ?? '0x' };
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
    const b = await this.#rpc('eth_getBlockByNumber', async () => {
      try {
        return await this.client.getBlock({ blockNumber: n });
      } catch (e) {
        if (e instanceof BaseError && /could not be found|BlockNotFound/i.test(e.name + e.message))
          return null;
        throw e;
      }
    });
    return b?.hash ?? null;
  }

  // --- helpers ---------------------------------------------------------------------------------

  #checkRequest(r: TransferRequest): { from: Hex; to: Hex; asset: Asset } {
    const from = requireEvmAddress(r.from, 'from');
    const to = requireEvmAddress(r.to, 'to');
    if (typeof r.amount !== 'bigint' || r.amount <= 0n) {
      throw new ChainError(
        'CUSTOS_CHAIN_INVALID_TRANSACTION',
        'amount must be a positive bigint in base units',
      );
    }
    const asset = this.assets.find(
      (a) => a.symbol === r.asset.symbol && a.network === r.asset.network && a.contract === r.asset.contract,
    );
    if (!asset) {
      throw new ChainError(
        'CUSTOS_CHAIN_UNSUPPORTED',
        `${this.network}: asset ${r.asset.symbol} is not configured`,
      );
    }
    if (asset.kind === 'token' && r.amount >= 2n ** 256n) {
      throw new ChainError('CUSTOS_CHAIN_INVALID_TRANSACTION', 'amount exceeds uint256');
    }
    return { from, to, asset };
  }

  async #pendingNonce(address: Hex): Promise<number> {
    return this.#rpc('eth_getTransactionCount', () =>
      this.client.getTransactionCount({ address, blockTag: 'pending' }),
    );
  }

  /** Refuses to build for an RPC endpoint that serves another chain (misconfiguration). */
  #checkChainId(): Promise<void> {
    this.#chainIdChecked ??= this.#rpc('eth_chainId', () => this.client.getChainId()).then((id) => {
      if (id !== this.config.chainId) {
        this.#chainIdChecked = null;
        throw new ChainError(
          'CUSTOS_CHAIN_UNSUPPORTED',
          `${this.network}: RPC serves chain ${id}, configured ${this.config.chainId}`,
        );
      }
    });
    return this.#chainIdChecked;
  }

  async #rpc<T>(method: string, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      if (e instanceof ChainError) throw e;
      if (isTransportError(e)) throw this.#unavailable(method, e);
      throw new ChainError('CUSTOS_CHAIN_RPC_INVALID_RESPONSE', `${this.network}: ${method} failed`, {
        cause: e,
        details: { network: this.network, method, reason: shortReason(e) },
      });
    }
  }

  #unavailable(method: string, cause: unknown): ChainError {
    return new ChainError('CUSTOS_CHAIN_RPC_UNAVAILABLE', `${this.network}: RPC unavailable (${method})`, {
      cause,
      details: {
        network: this.network,
        method,
        rpc: redactUrl(this.config.rpcUrl).replace(/\/[^/]{20,}$/, '/***'),
      },
    });
  }
}

function isTransportError(e: unknown): boolean {
  if (!(e instanceof BaseError)) return e instanceof TypeError && /fetch/i.test(e.message);
  return Boolean(
    e.walk((x) => {
      const n = (x as { name?: string }).name ?? '';
      return n === 'HttpRequestError' || n === 'TimeoutError' || n === 'WebSocketRequestError';
    }),
  );
}

function errorText(e: unknown): string {
  if (e instanceof BaseError) return `${e.shortMessage} ${e.details ?? ''} ${e.message}`.toLowerCase();
  return String((e as Error)?.message ?? e).toLowerCase();
}

function shortReason(e: unknown): string {
  const t = e instanceof BaseError ? e.details || e.shortMessage : String((e as Error)?.message ?? e);
  return t.slice(0, 200);
}

function minBig(a: bigint, b: bigint): bigint {
  return a < b ? a : b;
}

function maxBig(...xs: bigint[]): bigint {
  return xs.reduce((m, x) => (x > m ? x : m));
}
