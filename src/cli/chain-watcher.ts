// `custos chain-watcher`: the chain watcher role (src/roles/chain-watcher.ts) on the configured
// database and networks.
import type { Command } from 'commander';
import { loadConfig } from '../config.ts';
import { createLogger } from '../log/logger.ts';
import { startChainWatcher } from '../roles/chain-watcher.ts';

export function registerChainWatcher(program: Command): void {
  program
    .command('chain-watcher')
    .description('scan deposits, track confirmations and reorgs, advance withdrawals (CUSTOS_NETWORKS)')
    .option('--interval-ms <ms>', 'pause between passes per network', '2000')
    .option('--migrate', 'apply pending migrations at start')
    .action(async (o: { intervalMs: string; migrate?: boolean }) => {
      const cfg = loadConfig({});
      const logger = createLogger({ level: cfg.logLevel, format: cfg.logFormat });
      const intervalMs = Number.parseInt(o.intervalMs, 10);
      await startChainWatcher(cfg, logger, {
        migrate: o.migrate ?? false,
        ...(Number.isFinite(intervalMs) && intervalMs >= 100 ? { intervalMs } : {}),
      });
    });
}
