// The dev data directory: secrets (generated on first run, mode 0600, never defaulted), the embedded
// database, and dev.json — the URLs of a running `custos dev`, so other commands and psql can reach
// its embedded database while it holds the files open.
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

export interface DevInfo {
  api: string;
  database: string;
  pid: number;
  dataDir: string;
  instanceId: string;
  /** The local EVM devnet, when running. */
  evm?: { rpcUrl: string; chainId: number; tokens: { symbol: string; address: string; decimals: number }[] };
  startedAt: string;
}

export function ensureDataDir(dir: string): string {
  const abs = resolve(dir);
  mkdirSync(abs, { recursive: true, mode: 0o700 });
  mkdirSync(join(abs, 'secrets'), { recursive: true, mode: 0o700 });
  chmodSync(join(abs, 'secrets'), 0o700);
  return abs;
}

export function secretsDir(dataDir: string): string {
  return join(resolve(dataDir), 'secrets');
}

/**
 * Returns the secret stored in <dataDir>/secrets/<name>, generating `bytes` random bytes (hex) on
 * first use. `created` says whether it was generated now (so the caller can say where it is).
 */
export function ensureSecret(
  dataDir: string,
  name: string,
  bytes = 32,
): { value: string; path: string; created: boolean } {
  if (!/^[a-z0-9][a-z0-9._-]{0,63}$/.test(name)) throw new Error(`bad secret name ${name}`);
  const path = join(secretsDir(dataDir), name);
  if (existsSync(path)) {
    const value = readFileSync(path, 'utf8').trim();
    if (value.length < 32) throw new Error(`secret file ${path} is too short`);
    return { value, path, created: false };
  }
  const value = randomBytes(bytes).toString('hex');
  writeAtomic(path, `${value}\n`, 0o600);
  return { value, path, created: true };
}

export function devInfoPath(dataDir: string): string {
  return join(resolve(dataDir), 'dev.json');
}

/** The running dev instance for this data directory, or null (a stale file is ignored). */
export function readDevInfo(dataDir: string): DevInfo | null {
  const p = devInfoPath(dataDir);
  if (!existsSync(p)) return null;
  try {
    const info = JSON.parse(readFileSync(p, 'utf8')) as DevInfo;
    if (typeof info.pid !== 'number' || !isAlive(info.pid)) return null;
    return info;
  } catch {
    return null;
  }
}

export function writeDevInfo(dataDir: string, info: DevInfo): void {
  writeAtomic(devInfoPath(dataDir), `${JSON.stringify(info, null, 2)}\n`, 0o600);
}

export function removeDevInfo(dataDir: string): void {
  rmSync(devInfoPath(dataDir), { force: true });
}

export function writeAtomic(path: string, content: string | Uint8Array, mode: number): void {
  const tmp = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  writeFileSync(tmp, content, { mode, flush: true });
  renameSync(tmp, path);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
