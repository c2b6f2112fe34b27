// `custos dev faucet <address> --asset ETH|USDT-TEST --amount N`: funds an address on the running
// dev instance's local EVM devnet with a real transaction (so deposit scanning sees it).
import { type Command, Option } from 'commander';
import { isAddress } from 'viem';
import { type Anvil, faucet } from '../chains/devnet/anvil.ts';
import { ChainError, ValidationError } from '../errors.ts';
import { readDevInfo } from '../roles/data-dir.ts';
import { connectDevnet } from '../roles/devnet.ts';
import { printJson } from './output.ts';

/** Parses a decimal amount in display units ("1.5") into base units, exactly (no floating point). */
export function parseUnits(value: string, decimals: number): bigint {
  const m = /^([0-9]{1,40})(?:\.([0-9]{1,40}))?$/.exec(value);
  if (!m)
    throw new ValidationError(
      'CUSTOS_VALIDATION',
      `--amount must be a positive decimal number, got ${JSON.stringify(value)}`,
    );
  const frac = m[2] ?? '';
  if (frac.length > decimals)
    throw new ValidationError('CUSTOS_VALIDATION', `--amount has more than ${decimals} decimals`);
  const units = BigInt(m[1]!) * 10n ** BigInt(decimals) + BigInt(frac.padEnd(decimals, '0') || '0');
  if (units <= 0n) throw new ValidationError('CUSTOS_VALIDATION', '--amount must be greater than zero');
  return units;
}

interface FaucetOptions {
  asset: 'ETH' | 'USDT-TEST';
  amount: string;
  dataDir?: string;
  json?: boolean;
}

export function registerDevFaucet(dev: Command): void {
  dev
    .command('faucet <address>')
    .description('fund an address on the local EVM devnet of a running `custos dev`')
    .addOption(new Option('--asset <asset>', 'what to send').choices(['ETH', 'USDT-TEST']).default('ETH'))
    .requiredOption('--amount <n>', 'amount in display units, e.g. 1.5')
    .option('--data-dir <dir>', 'data directory of the running dev instance (default ./.custos)')
    .option('--json', 'machine-readable output')
    .action(async (address: string, o: FaucetOptions, cmd: Command) => {
      // `dev` has its own --data-dir, which commander may give the flag to.
      const dataDir =
        o.dataDir ?? (cmd.parent?.opts() as { dataDir?: string } | undefined)?.dataDir ?? './.custos';
      if (!isAddress(address, { strict: false }))
        throw new ValidationError('CUSTOS_VALIDATION', 'not an EVM address');
      const info = readDevInfo(dataDir);
      if (!info?.evm) {
        throw new ChainError(
          'CUSTOS_CHAIN_RPC_UNAVAILABLE',
          `no running custos dev with a devnet in ${dataDir}`,
        );
      }
      const decimals =
        o.asset === 'ETH' ? 18 : (info.evm.tokens.find((t) => t.symbol === o.asset)?.decimals ?? 6);
      const amount = parseUnits(o.amount, decimals);
      const devnet = await connectDevnet(info.evm.rpcUrl);
      const txHash = await faucet(devnet as Anvil, address, o.asset, amount);
      const out = { address, asset: o.asset, amount: amount.toString(), decimals, txHash };
      if (o.json) printJson(out);
      else process.stdout.write(`sent ${o.amount} ${o.asset} to ${address} (tx ${txHash})\n`);
    });
}
