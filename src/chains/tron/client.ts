// HTTP client for the TronGrid-compatible API: java-tron full node endpoints (/wallet/*),
// solidity endpoints (/walletsolidity/*) and TronGrid's event API (/v1/*). Every response is
// validated with zod before use; integers of 16+ digits are parsed exactly (as strings) so sun and
// token amounts never pass through a lossy JS number.
import { z } from 'zod';
import { ChainError, redactUrl } from '../../errors.ts';
import { sleep } from '../util.ts';

const hex = z.string().regex(/^[0-9a-fA-F]*$/);
const hex64 = z.string().regex(/^[0-9a-fA-F]{64}$/);
/** An integer that may arrive as a JSON number or (after exact parsing) a digit string. */
const int = z.union([z.number().int(), z.string().regex(/^-?[0-9]+$/)]).transform((v) => BigInt(v));

export const blockSchema = z.object({
  blockID: hex64,
  block_header: z.object({
    raw_data: z.object({
      number: int.optional(),
      timestamp: int,
      parentHash: hex64,
    }),
  }),
  transactions: z
    .array(
      z.object({
        txID: hex64,
        ret: z.array(z.object({ contractRet: z.string().optional() })).optional(),
        raw_data: z.object({
          contract: z.array(
            z.object({
              type: z.string(),
              parameter: z.object({
                value: z.record(z.string(), z.unknown()),
                type_url: z.string().optional(),
              }),
            }),
          ),
        }),
        raw_data_hex: hex.optional(),
      }),
    )
    .optional(),
});
export type TronBlock = z.infer<typeof blockSchema>;

const logSchema = z.object({ address: hex, topics: z.array(hex).optional(), data: hex.optional() });

export const txInfoSchema = z.object({
  id: hex64,
  fee: int.optional(),
  blockNumber: int,
  blockTimeStamp: int.optional(),
  contractResult: z.array(z.string()).optional(),
  contract_address: z.string().optional(),
  receipt: z
    .object({
      result: z.string().optional(),
      energy_usage_total: int.optional(),
      net_usage: int.optional(),
      net_fee: int.optional(),
    })
    .optional(),
  log: z.array(logSchema).optional(),
  result: z.string().optional(),
  resMessage: z.string().optional(),
});
export type TronTxInfo = z.infer<typeof txInfoSchema>;

const broadcastSchema = z.object({
  result: z.boolean().optional(),
  txid: z.string().optional(),
  code: z.string().optional(),
  message: z.string().optional(),
});

const accountSchema = z.object({ balance: int.optional(), address: z.string().optional() });
const accountResourceSchema = z.object({
  freeNetLimit: int.optional(),
  freeNetUsed: int.optional(),
  NetLimit: int.optional(),
  NetUsed: int.optional(),
  EnergyLimit: int.optional(),
  EnergyUsed: int.optional(),
});
const chainParametersSchema = z.object({
  chainParameter: z.array(z.object({ key: z.string(), value: int.optional() })),
});
const constantSchema = z.object({
  result: z.object({
    result: z.boolean().optional(),
    code: z.string().optional(),
    message: z.string().optional(),
  }),
  energy_used: int.optional(),
  constant_result: z.array(hex).optional(),
});
const eventsSchema = z.object({
  success: z.boolean(),
  data: z.array(
    z.object({
      block_number: int,
      block_timestamp: int,
      contract_address: z.string(),
      event_index: z.number().int(),
      event_name: z.string(),
      transaction_id: hex64,
      result: z.record(z.string(), z.string()),
    }),
  ),
  meta: z
    .object({ fingerprint: z.string().optional(), page_size: z.number().optional() })
    .passthrough()
    .optional(),
});
export type Trc20Event = z.infer<typeof eventsSchema>['data'][number];

export interface TronHttpClientOptions {
  apiUrl: string;
  apiKey?: string;
  timeoutMs?: number;
  retries?: number;
  network?: string;
}

export class TronHttpClient {
  readonly #base: string;
  readonly #apiKey: string | undefined;
  readonly #timeoutMs: number;
  readonly #retries: number;
  readonly #network: string;

  constructor(o: TronHttpClientOptions) {
    this.#base = o.apiUrl.replace(/\/+$/, '');
    this.#apiKey = o.apiKey;
    this.#timeoutMs = o.timeoutMs ?? 15_000;
    this.#retries = o.retries ?? 3;
    this.#network = o.network ?? 'tron';
  }

  getNowBlock(): Promise<TronBlock> {
    return this.#post('/wallet/getnowblock', {}, blockSchema);
  }

  getSolidNowBlock(): Promise<TronBlock> {
    return this.#post('/walletsolidity/getnowblock', {}, blockSchema);
  }

  /** null when the node has no such block yet ({}). */
  async getBlockByNum(num: bigint): Promise<TronBlock | null> {
    const r = await this.#post(
      '/wallet/getblockbynum',
      { num: Number(num) },
      blockSchema.or(z.object({}).strict()),
    );
    return 'blockID' in r ? (r as TronBlock) : null;
  }

  /** null while the transaction is not in a block ({}). `solid` asks the solidity node. */
  async getTransactionInfoById(txId: string, solid = false): Promise<TronTxInfo | null> {
    const path = solid ? '/walletsolidity/gettransactioninfobyid' : '/wallet/gettransactioninfobyid';
    const r = await this.#post(path, { value: txId }, txInfoSchema.or(z.object({}).strict()));
    return 'id' in r ? (r as TronTxInfo) : null;
  }

  async getTransactionInfoByBlockNum(num: bigint): Promise<TronTxInfo[]> {
    // java-tron answers [] for a block without transactions, sometimes {}.
    const r = await this.#post(
      '/wallet/gettransactioninfobyblocknum',
      { num: Number(num) },
      z.array(txInfoSchema).or(z.object({}).strict()),
    );
    return Array.isArray(r) ? r : [];
  }

  broadcastTransaction(json: string): Promise<z.infer<typeof broadcastSchema>> {
    return this.#post('/wallet/broadcasttransaction', json, broadcastSchema, false);
  }

  async getAccountBalance(address: string): Promise<{ exists: boolean; balance: bigint }> {
    const r = await this.#post('/wallet/getaccount', { address, visible: true }, accountSchema);
    return { exists: r.address !== undefined, balance: r.balance ?? 0n };
  }

  getAccountResource(address: string): Promise<z.infer<typeof accountResourceSchema>> {
    return this.#post('/wallet/getaccountresource', { address, visible: true }, accountResourceSchema);
  }

  async getChainParameters(): Promise<Map<string, bigint>> {
    const r = await this.#post('/wallet/getchainparameters', {}, chainParametersSchema);
    return new Map(r.chainParameter.map((p) => [p.key, p.value ?? 0n]));
  }

  triggerConstantContract(p: {
    owner: string;
    contract: string;
    selector: string;
    parameter: string;
  }): Promise<z.infer<typeof constantSchema>> {
    return this.#post(
      '/wallet/triggerconstantcontract',
      {
        owner_address: p.owner,
        contract_address: p.contract,
        function_selector: p.selector,
        parameter: p.parameter,
        visible: true,
      },
      constantSchema,
    );
  }

  /** TronGrid: a contract's Transfer events, oldest first, one page. */
  getTrc20Events(
    contract: string,
    q: { minBlockTimestamp?: bigint; fingerprint?: string; limit?: number; onlyConfirmed?: boolean } = {},
  ): Promise<z.infer<typeof eventsSchema>> {
    const params = new URLSearchParams({ event_name: 'Transfer', order_by: 'block_timestamp,asc' });
    params.set('limit', String(q.limit ?? 200));
    if (q.minBlockTimestamp !== undefined) params.set('min_block_timestamp', q.minBlockTimestamp.toString());
    if (q.fingerprint) params.set('fingerprint', q.fingerprint);
    if (q.onlyConfirmed) params.set('only_confirmed', 'true');
    return this.#request(
      `/v1/contracts/${encodeURIComponent(contract)}/events?${params}`,
      undefined,
      eventsSchema,
      true,
    );
  }

  #post<T extends z.ZodType>(path: string, body: unknown, schema: T, retry = true): Promise<z.output<T>> {
    return this.#request(path, typeof body === 'string' ? body : JSON.stringify(body), schema, retry);
  }

  async #request<T extends z.ZodType>(
    path: string,
    body: string | undefined,
    schema: T,
    retry: boolean,
  ): Promise<z.output<T>> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (this.#apiKey) headers['TRON-PRO-API-KEY'] = this.#apiKey;
    // Broadcasts are retried too, but only on transport errors before an answer (DUP is handled).
    const attempts = retry ? this.#retries + 1 : Math.min(2, this.#retries + 1);
    let last: unknown;
    for (let i = 0; i < attempts; i++) {
      let res: Response;
      try {
        res = await fetch(this.#base + path, {
          method: body === undefined ? 'GET' : 'POST',
          headers,
          ...(body !== undefined ? { body } : {}),
          signal: AbortSignal.timeout(this.#timeoutMs),
        });
      } catch (e) {
        last = e;
        await sleep(150 * 2 ** i);
        continue;
      }
      const text = await res.text();
      if (res.status === 429 || res.status >= 500) {
        last = new Error(`HTTP ${res.status}`);
        await sleep(150 * 2 ** i);
        continue;
      }
      if (res.status !== 200) {
        throw this.#invalid(path, `HTTP ${res.status}`);
      }
      let json: unknown;
      try {
        json = parseJsonExact(text);
      } catch {
        throw this.#invalid(path, 'not JSON');
      }
      const parsed = schema.safeParse(json);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        throw this.#invalid(path, `${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'bad shape'}`);
      }
      return parsed.data;
    }
    throw new ChainError('CUSTOS_CHAIN_RPC_UNAVAILABLE', `${this.#network}: Tron API unavailable (${path})`, {
      cause: last,
      details: { network: this.#network, path, api: redactUrl(this.#base) },
    });
  }

  #invalid(path: string, why: string): ChainError {
    return new ChainError('CUSTOS_CHAIN_RPC_INVALID_RESPONSE', `${this.#network}: ${path}: ${why}`, {
      details: { network: this.#network, path },
    });
  }
}

/** JSON.parse, but integer literals of 16+ digits become strings (exact) instead of lossy numbers. */
export function parseJsonExact(text: string): unknown {
  let out = '';
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (inString) {
      out += c;
      if (c === '\\') out += text[++i] ?? '';
      else if (c === '"') inString = false;
      continue;
    }
    if (c === '"') {
      inString = true;
      out += c;
      continue;
    }
    if (c === '-' || (c >= '0' && c <= '9')) {
      let j = i + 1;
      while (j < text.length && /[0-9.eE+-]/.test(text[j]!)) j++;
      const lit = text.slice(i, j);
      out += /^-?[0-9]{16,}$/.test(lit) ? `"${lit}"` : lit;
      i = j - 1;
      continue;
    }
    out += c;
  }
  return JSON.parse(out);
}
