// `custos dev login`: an access token for the demo owner of a running `custos dev`, so the README's
// walkthrough is one command per step. It signs in once with the password and a TOTP code computed
// from <dataDir>/secrets/demo-credentials.json, keeps the (single-use, rotating) refresh token in
// <dataDir>/secrets/dev-session.json (0600) and afterwards refreshes instead of logging in again —
// a TOTP code is accepted once, so back-to-back logins would otherwise be refused.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { AuthError, ChainError, ValidationError } from '../errors.ts';
import { demoCredentialsPath } from '../identity/bootstrap.ts';
import { totp, totpCounter } from '../identity/totp.ts';
import { readDevInfo, secretsDir, writeAtomic } from '../roles/data-dir.ts';
import { printJson } from './output.ts';

interface Session {
  refreshToken?: string;
  /** The TOTP time step last used, so the next login waits for a fresh code. */
  totpCounter?: string;
}

interface TokenPair {
  accessToken: string;
  expiresIn: number;
  refreshToken: string;
}

async function post(url: string, body: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const r = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  return { status: r.status, json: (await r.json().catch(() => ({}))) as Record<string, unknown> };
}

export async function devLogin(dataDir: string): Promise<TokenPair> {
  const info = readDevInfo(dataDir);
  if (!info) throw new ChainError('CUSTOS_CHAIN_RPC_UNAVAILABLE', `no running custos dev in ${dataDir}`);
  const credsPath = demoCredentialsPath(dataDir);
  if (!existsSync(credsPath)) throw new ValidationError('CUSTOS_VALIDATION', `${credsPath} does not exist`);
  const creds = JSON.parse(readFileSync(credsPath, 'utf8')) as {
    owner?: { email?: string; password?: string; totpSecret?: string };
  };
  const owner = creds.owner;
  if (!owner?.email || !owner.password || !owner.totpSecret)
    throw new ValidationError('CUSTOS_VALIDATION', `${credsPath} has no demo owner credentials`);
  const sessionPath = join(secretsDir(dataDir), 'dev-session.json');
  const session: Session = existsSync(sessionPath) ? JSON.parse(readFileSync(sessionPath, 'utf8')) : {};
  const save = (s: Session) => writeAtomic(sessionPath, `${JSON.stringify(s)}\n`, 0o600);

  if (session.refreshToken) {
    const r = await post(`${info.api}/v1/auth/refresh`, { refreshToken: session.refreshToken });
    if (r.status === 200) {
      const pair = r.json as unknown as TokenPair;
      save({ ...session, refreshToken: pair.refreshToken });
      return pair;
    }
    // expired or revoked: sign in again below
  }
  let now = Date.now();
  const last = session.totpCounter ? BigInt(session.totpCounter) : -1n;
  if (totpCounter(now) <= last) {
    // This time step's code was used already; wait for the next one (at most 30 s).
    const wait = Number((last + 1n) * 30_000n) - now + 50;
    await new Promise((res) => setTimeout(res, wait));
    now = Date.now();
  }
  const r = await post(`${info.api}/v1/auth/login`, {
    email: owner.email,
    password: owner.password,
    totp: totp(owner.totpSecret, now),
  });
  if (r.status !== 200) {
    const code = typeof r.json['code'] === 'string' ? r.json['code'] : `HTTP ${r.status}`;
    throw new AuthError('CUSTOS_UNAUTHENTICATED', `login as the demo owner failed (${code})`);
  }
  const pair = r.json as unknown as TokenPair;
  save({ refreshToken: pair.refreshToken, totpCounter: totpCounter(now).toString() });
  return pair;
}

export function registerDevLogin(dev: Command): void {
  dev
    .command('login')
    .description('print an access token for the demo owner of a running `custos dev`')
    .option('--data-dir <dir>', 'data directory of the running dev instance (default ./.custos)')
    .option('--json', 'machine-readable output ({"accessToken","expiresIn"})')
    .action(async (o: { dataDir?: string; json?: boolean }, cmd: Command) => {
      const dataDir =
        o.dataDir ?? (cmd.parent?.opts() as { dataDir?: string } | undefined)?.dataDir ?? './.custos';
      const pair = await devLogin(dataDir);
      if (o.json) printJson({ accessToken: pair.accessToken, expiresIn: pair.expiresIn });
      else process.stdout.write(`${pair.accessToken}\n`);
    });
}
