// Graceful shutdown on SIGTERM/SIGINT: run the closers in order (stop accepting, drain, close pools)
// within a deadline; a second signal or the deadline forces exit.
import type { Logger } from '../log/logger.ts';

export type Closer = { name: string; close(): Promise<void> };

export function onShutdownSignals(
  logger: Logger,
  timeoutMs: number,
  closers: () => Closer[],
): () => Promise<void> {
  let shuttingDown = false;
  const shutdown = async (signal: string) => {
    if (shuttingDown) {
      logger.warn({ signal }, 'second signal: exiting now');
      process.exit(130);
    }
    shuttingDown = true;
    logger.info({ signal }, 'shutting down');
    const deadline = setTimeout(() => {
      logger.error({ timeoutMs }, 'shutdown deadline passed: forcing exit');
      process.exit(1);
    }, timeoutMs);
    deadline.unref();
    let ok = true;
    for (const c of closers()) {
      try {
        await c.close();
      } catch (err) {
        ok = false;
        logger.error({ err, part: c.name }, 'error while closing');
      }
    }
    clearTimeout(deadline);
    logger.info('stopped');
    logger.flush?.();
    process.exitCode = ok ? 0 : 1;
    // Everything is closed; a handle some library left open must not keep a stopped process alive.
    setTimeout(() => {
      logger.warn('handles still open after shutdown: exiting');
      logger.flush?.();
      process.exit(process.exitCode);
    }, 1000).unref();
  };
  const onSigterm = () => void shutdown('SIGTERM');
  const onSigint = () => void shutdown('SIGINT');
  process.on('SIGTERM', onSigterm);
  process.on('SIGINT', onSigint);
  return () => shutdown('manual');
}
