// The README's custody walkthrough, executed as written: `custos dev` is started the way
// `npm start` starts it (a child process, embedded defaults, its data in ./.custos of a fresh
// directory), then the README's two shell blocks — the test chain, then the anvil devnet — run in
// bash with `set -euo pipefail`, `npx custos` resolving to this checkout. Only the API URL is
// substituted (the instance listens on a free port, not 8080). Afterwards the outcome is checked
// through the API and on anvil: both withdrawals completed, their events in order, the ledger equal
// to the chains, and the anvil recipient richer by exactly the amount withdrawn.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { CUSTOS_BIN, cleanEnv, runCli, spawnCli, waitExit } from './helpers/cli.ts';

const README = readFileSync(fileURLToPath(new URL('../README.md', import.meta.url)), 'utf8');
const README_API = 'API=http://127.0.0.1:8080';
/** The README's anvil withdrawal: 0.25 ETH to anvil's second default account. */
const EVM_RECIPIENT = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8';
const EVM_AMOUNT = 250_000_000_000_000_000n;

/** The first ```sh block after the line that starts with `marker`. */
function shBlockAfter(marker: string): string {
  const at = README.indexOf(`\n${marker}`);
  assert.ok(at >= 0, `README has no line starting "${marker}"`);
  const open = README.indexOf('\n```sh\n', at);
  assert.ok(open >= 0, `README: no sh block after "${marker}"`);
  const close = README.indexOf('\n```\n', open + 7);
  return README.slice(open + 7, close + 1);
}

const dir = mkdtempSync(join(tmpdir(), 'custos-readme-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function tool(name: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${name}`]).status === 0;
}

async function rpc(url: string, method: string, params: unknown[]): Promise<string> {
  const r = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
  });
  return ((await r.json()) as { result: string }).result;
}

test('the README quick start runs as written: test chain and anvil, deposit to completed withdrawal', async () => {
  for (const t of ['bash', 'curl', 'jq']) assert.ok(tool(t), `the README's walkthrough needs ${t}`);
  const testChain = shBlockAfter('A walkthrough on the test chain');
  const evm = shBlockAfter('### On a real EVM chain');
  assert.ok(testChain.includes(`\n${README_API}\n`) || testChain.startsWith(`${README_API}\n`));

  // `npx custos` inside the fresh directory is this checkout's bin (no registry needed).
  mkdirSync(join(dir, 'node_modules', '.bin'), { recursive: true });
  symlinkSync(CUSTOS_BIN, join(dir, 'node_modules', '.bin', 'custos'));

  const dev = spawnCli(['dev', '--port', '0'], {}, dir);
  let devOut = '';
  dev.stdout!.on('data', (d) => {
    devOut += d;
  });
  dev.stderr!.on('data', (d) => {
    devOut += d;
  });
  try {
    const devJson = join(dir, '.custos', 'dev.json');
    for (let i = 0; i < 600 && !existsSync(devJson); i++) await sleep(100);
    assert.ok(existsSync(devJson), `custos dev did not start:\n${devOut.slice(-2000)}`);
    let info: { api: string; evm: { rpcUrl: string } } | undefined;
    for (let i = 0; i < 50 && !info; i++) {
      try {
        info = JSON.parse(readFileSync(devJson, 'utf8'));
      } catch {
        await sleep(100);
      }
    }
    assert.ok(info?.evm?.rpcUrl, 'dev.json names the devnet');
    const before = BigInt(await rpc(info.evm.rpcUrl, 'eth_getBalance', [EVM_RECIPIENT, 'latest']));

    const script = [
      'set -euo pipefail',
      testChain.replace(README_API, `API=${info.api}`),
      'TX_TEST=$TX; WALLET_TEST=$WALLET',
      evm,
      `printf '%s\\n' "$TX_TEST" "$TX" "$WALLET_TEST" "$WALLET" > ids.txt`,
    ].join('\n');
    writeFileSync(join(dir, 'walkthrough.sh'), script);
    const sh = spawn('bash', ['walkthrough.sh'], {
      cwd: dir,
      env: cleanEnv(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    sh.stdout.on('data', (d) => {
      out += d;
    });
    sh.stderr.on('data', (d) => {
      out += d;
    });
    const { code } = await waitExit(sh, 180_000);
    assert.equal(code, 0, `the walkthrough failed:\n${out.slice(-4000)}`);
    const [txTest, txEvm, walletTest, walletEvm] = readFileSync(join(dir, 'ids.txt'), 'utf8')
      .trim()
      .split('\n');
    for (const id of [txTest, txEvm, walletTest, walletEvm]) {
      assert.match(id ?? '', /^[a-z]+_[A-Za-z0-9_-]+$/, `an id the walkthrough read: ${id}\n${out}`);
    }
    assert.match(out, /"status": "credited"/, 'the anvil deposit was shown credited');

    // The outcome, checked through the API with a fresh token (the README's `sleep`s are for a
    // person watching; here the states are polled so a slow machine does not fail the test).
    const login = runCli(['dev', 'login'], {}, dir);
    assert.equal(login.code, 0, login.stderr);
    const auth = { authorization: `Bearer ${login.stdout.trim()}` };
    const get = async (path: string) => {
      const r = await fetch(`${info!.api}${path}`, { headers: auth });
      assert.equal(r.status, 200, `${path}: ${r.status}`);
      return (await r.json()) as Record<string, unknown>;
    };
    for (const id of [txTest, txEvm]) {
      let state = '';
      for (let i = 0; i < 120 && state !== 'completed'; i++) {
        state = String((await get(`/v1/transactions/${id}`)).state);
        if (state !== 'completed') await sleep(500);
      }
      assert.equal(state, 'completed', `withdrawal ${id}`);
    }
    const types = ((await get(`/v1/events?resourceId=${txTest}`)).events as { type: string }[]).map(
      (e) => e.type,
    );
    assert.equal(types[0], 'transaction.created');
    assert.equal(types.at(-1), 'transaction.completed');
    for (const t of ['transaction.signing', 'transaction.broadcast', 'transaction.confirming']) {
      assert.ok(types.includes(t), `${t} in ${types.join(', ')}`);
    }
    const recon = (await get('/v1/reconciliation')) as { ledger: { ok: boolean }; differences: unknown[] };
    assert.equal(recon.ledger.ok, true);
    assert.deepEqual(recon.differences, []);
    const afterBalance = BigInt(await rpc(info.evm.rpcUrl, 'eth_getBalance', [EVM_RECIPIENT, 'latest']));
    assert.equal(afterBalance - before, EVM_AMOUNT, 'the anvil recipient received 0.25 ETH');
  } finally {
    dev.kill('SIGINT');
    const { code } = await waitExit(dev, 30_000);
    assert.equal(code, 0, `custos dev exit:\n${devOut.slice(-2000)}`);
  }
});
