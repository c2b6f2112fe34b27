// The local EVM devnet of `custos dev`: anvil (the optional dependency @foundry-rs/anvil-linux-amd64, or anvil on PATH) on
// a loopback port, its chain state kept in <dataDir>/anvil-state.json across restarts, with the test
// ERC-20 installed. Absent binary (e.g. installed with --omit=optional) = no devnet.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type Anvil, anvilBinary, deployTestToken, startAnvil, TEST_TOKEN } from '../chains/devnet/anvil.ts';
import type { Logger } from '../log/logger.ts';

export interface DevnetInfo {
  rpcUrl: string;
  chainId: number;
  tokens: { symbol: string; address: string; decimals: number }[];
}

export async function startDevnet(
  dataDir: string,
  logger: Logger,
): Promise<{ anvil: Anvil; info: DevnetInfo } | null> {
  if (anvilBinary() === 'anvil' && !existsSync('/usr/local/bin/anvil') && !existsSync('/usr/bin/anvil')) {
    logger.warn(
      'anvil is not installed (optional dependency @foundry-rs/anvil-linux-amd64, or anvil on PATH): running without the local EVM devnet',
    );
    return null;
  }
  let anvil: Anvil;
  try {
    anvil = await startAnvil({
      args: ['--state', join(dataDir, 'anvil-state.json')],
      startupTimeoutMs: 20_000,
    });
  } catch (err) {
    logger.warn({ err }, 'devnet: anvil did not start; running without the local EVM devnet');
    return null;
  }
  const token = await deployTestToken(anvil);
  const info: DevnetInfo = {
    rpcUrl: anvil.rpcUrl,
    chainId: anvil.chainId,
    tokens: [{ symbol: TEST_TOKEN.symbol, address: token, decimals: TEST_TOKEN.decimals }],
  };
  logger.info(
    { rpcUrl: info.rpcUrl, chainId: info.chainId, token },
    'devnet: anvil started with the test ERC-20',
  );
  return { anvil, info };
}

/** Talks to a running devnet by URL (for `custos dev faucet` in another process). */
export async function connectDevnet(rpcUrl: string): Promise<Pick<Anvil, 'rpc' | 'accounts' | 'rpcUrl'>> {
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
  const accounts = await rpc<`0x${string}`[]>('eth_accounts');
  return { rpc, accounts, rpcUrl };
}
