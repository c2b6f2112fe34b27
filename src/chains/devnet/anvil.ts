// A local EVM devnet: starts anvil (from the platform package @foundry-rs/anvil-<platform>-<arch>, which ships the
// binary) on a free loopback port, installs the test ERC-20, and funds addresses. Used by the
// tests, the benchmark and `custos dev`. Nothing here is for production networks.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import { encodeFunctionData, getAddress, type Hex } from 'viem';
import { ChainError } from '../../errors.ts';
import type { NetworkInput } from '../networks.ts';
import { sleep } from '../util.ts';
import { testTokenRuntime } from './erc20-bytecode.ts';

export interface StartAnvilParameters {
  /** Default: a free loopback port. */
  port?: number;
  chainId?: number;
  /** Seconds between blocks; default: automine (a block per transaction). */
  blockTime?: number;
  /** Dev accounts (unlocked, 10000 ETH each by default). */
  accounts?: number;
  /** Path of the anvil binary; default: the one @foundry-rs/anvil-<platform>-<arch> installed. */
  binary?: string;
  /** Extra CLI arguments. */
  args?: string[];
  startupTimeoutMs?: number;
}

export interface Anvil {
  readonly rpcUrl: string;
  readonly port: number;
  readonly chainId: number;
  /** Unlocked dev accounts (eth_sendTransaction works for them without keys). */
  readonly accounts: readonly Hex[];
  readonly process: ChildProcess;
  /** JSON-RPC call (for anvil_* / evm_* cheats and tests). */
  rpc<T = unknown>(method: string, params?: unknown[]): Promise<T>;
  stop(): Promise<void>;
}

export const TEST_TOKEN = {
  symbol: 'USDT-TEST',
  name: 'Custos Test Dollar',
  decimals: 6,
  /** Fixed so configuration can name it; installed by anvil_setCode. */
  address: '0xc0570c0570c0570c0570c0570c0570c0570c0570' as Hex,
} as const;

/** Locates the anvil binary shipped by @foundry-rs/anvil-<platform>-<arch>. */
export function anvilBinary(): string {
  const require = createRequire(import.meta.url);
  const pkg = `@foundry-rs/anvil-${process.platform}-${process.arch === 'x64' ? 'amd64' : process.arch}`;
  try {
    const dir = dirname(require.resolve(`${pkg}/package.json`));
    const bin = join(dir, 'bin', process.platform === 'win32' ? 'anvil.exe' : 'anvil');
    if (existsSync(bin)) return bin;
  } catch {
    // fall through to PATH
  }
  return 'anvil';
}

/**
 * A child process cannot outlive us by itself when we are SIGKILLed (no parent-death signal in
 * Node.js), so on POSIX anvil runs under a small sh guard: it starts anvil, stops it when our
 * process is gone (polled twice a second) or when the guard gets SIGTERM/SIGINT, and exits with it.
 */
const GUARD = [
  'parent=$1; shift; child=',
  'trap \'[ -n "$child" ] && kill "$child" 2>/dev/null && wait "$child"; exit 0\' TERM INT',
  '"$@" & child=$!',
  'while kill -0 "$parent" 2>/dev/null && kill -0 "$child" 2>/dev/null; do sleep 0.5; done',
  'kill "$child" 2>/dev/null',
  'wait "$child"',
].join('\n');

function spawnGuarded(binary: string, args: string[]): ChildProcess {
  if (process.platform === 'win32') return spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  return spawn('sh', ['-c', GUARD, 'anvil-guard', String(process.pid), binary, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export async function startAnvil(p: StartAnvilParameters = {}): Promise<Anvil> {
  let lastError: unknown;
  // A port found free can be taken before anvil binds it; try a few.
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await startOnce(p, p.port ?? (await freePort()));
    } catch (e) {
      lastError = e;
      if (p.port !== undefined) break;
    }
  }
  throw new ChainError('CUSTOS_CHAIN_RPC_UNAVAILABLE', 'devnet: anvil did not start', { cause: lastError });
}

async function startOnce(p: StartAnvilParameters, port: number): Promise<Anvil> {
  const chainId = p.chainId ?? 31337;
  const args = [
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    '--chain-id',
    String(chainId),
    '--accounts',
    String(p.accounts ?? 10),
    ...(p.blockTime !== undefined ? ['--block-time', String(p.blockTime)] : []),
    ...(p.args ?? []),
  ];
  const child = spawnGuarded(p.binary ?? anvilBinary(), args);
  let output = '';
  const collect = (b: Buffer) => {
    if (output.length < 20_000) output += b.toString();
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  let exited = false;
  child.once('exit', () => {
    exited = true;
  });
  const rpcUrl = `http://127.0.0.1:${port}`;
  let id = 0;
  const rpc = async <T>(method: string, params: unknown[] = []): Promise<T> => {
    const res = await fetch(rpcUrl, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: ++id, method, params }),
    });
    const body = (await res.json()) as { result?: T; error?: { message: string } };
    if (body.error) throw new Error(`${method}: ${body.error.message}`);
    return body.result as T;
  };
  const stop = async () => {
    if (exited) return;
    const done = new Promise<void>((r) => child.once('exit', () => r()));
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), 3000);
    await done;
    clearTimeout(t);
  };
  const deadline = Date.now() + (p.startupTimeoutMs ?? 15_000);
  while (Date.now() < deadline) {
    if (exited) throw new Error(`anvil exited: ${output.slice(-500)}`);
    try {
      const got = await rpc<string>('eth_chainId');
      if (Number(got) !== chainId) throw new Error(`chain id ${got}`);
      const accounts = (await rpc<string[]>('eth_accounts')).map((a) => getAddress(a));
      // Keep the child from holding the event loop open on its own pipes.
      child.stdout?.removeAllListeners('data');
      child.stderr?.removeAllListeners('data');
      child.stdout?.resume();
      child.stderr?.resume();
      return { rpcUrl, port, chainId, accounts, process: child, rpc, stop };
    } catch {
      await sleep(50);
    }
  }
  await stop();
  throw new Error(`anvil did not answer on ${rpcUrl}: ${output.slice(-500)}`);
}

/** Installs the test ERC-20 (see erc20-bytecode.ts) at TEST_TOKEN.address. */
export async function deployTestToken(
  anvil: Anvil,
  token: { name: string; symbol: string; decimals: number; address: Hex } = TEST_TOKEN,
): Promise<Hex> {
  const code = testTokenRuntime({ name: token.name, symbol: token.symbol, decimals: token.decimals });
  await anvil.rpc('anvil_setCode', [token.address, `0x${Buffer.from(code).toString('hex')}`]);
  return getAddress(token.address);
}

const MINT_ABI = [
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

/**
 * Funds `address` with a real transaction from the first dev account, so deposit scanning sees it
 * like any other deposit: ETH as a plain value transfer, the test token by minting (a Transfer
 * event). Returns the transaction hash.
 */
export async function faucet(
  anvil: Anvil,
  address: string,
  asset: 'ETH' | 'USDT-TEST',
  amount: bigint,
): Promise<Hex> {
  const to = getAddress(address);
  if (amount <= 0n) throw new ChainError('CUSTOS_CHAIN_INVALID_TRANSACTION', 'faucet: amount must be > 0');
  const from = anvil.accounts[0];
  if (asset === 'ETH') {
    // Keep the dev account able to pay for any amount asked for.
    const have = BigInt(await anvil.rpc<string>('eth_getBalance', [from, 'latest']));
    if (have < amount + 10n ** 18n) {
      await anvil.rpc('anvil_setBalance', [from, `0x${(have + amount + 10n ** 18n).toString(16)}`]);
    }
    const hash = await anvil.rpc<Hex>('eth_sendTransaction', [
      { from, to, value: `0x${amount.toString(16)}` },
    ]);
    return waitMined(anvil, hash);
  }
  const data = encodeFunctionData({ abi: MINT_ABI, functionName: 'mint', args: [to, amount] });
  return waitMined(
    anvil,
    await anvil.rpc<Hex>('eth_sendTransaction', [{ from, to: TEST_TOKEN.address, data }]),
  );
}

/**
 * Waits until the faucet's transaction is in a block (the dev devnet mines every second, not on
 * each transaction), so "funded" means the balance is there; a reverted transaction is an error.
 */
async function waitMined(anvil: Pick<Anvil, 'rpc'>, hash: Hex, timeoutMs = 30_000): Promise<Hex> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const r = await anvil.rpc<{ status: Hex } | null>('eth_getTransactionReceipt', [hash]);
    if (r) {
      if (r.status !== '0x1')
        throw new ChainError('CUSTOS_CHAIN_INVALID_TRANSACTION', `faucet: ${hash} reverted`);
      return hash;
    }
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new ChainError('CUSTOS_CHAIN_RPC_UNAVAILABLE', `faucet: ${hash} not mined within ${timeoutMs} ms`);
}

/** The `networks` entry that points the 'anvil' preset at this devnet, with the test token. */
export function anvilNetwork(anvil: Anvil, overrides: Record<string, unknown> = {}): NetworkInput {
  return {
    id: 'anvil',
    preset: 'anvil',
    chainId: anvil.chainId,
    rpcUrl: anvil.rpcUrl,
    tokens: [
      { symbol: TEST_TOKEN.symbol, contract: getAddress(TEST_TOKEN.address), decimals: TEST_TOKEN.decimals },
    ],
    ...overrides,
  };
}
