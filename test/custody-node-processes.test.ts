// The production shape of signing: the platform's coordinator and three `custos mpc-node start`
// processes over NATS. Each node process installs the custody authoriser itself and trusts only the
// owner keys in its own trusted-owners file (put there with `custos approve --trust-owner
// --trust-file`); a withdrawal is signed only when every signing node verified the owner-signed
// policy and the transaction itself, and is refused once the owner is no longer trusted.
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { nodeDataDir } from '../src/mpc/local.ts';
import { openDatabase } from '../src/store/database.ts';
import { type CustodyHarness, externalAddress, startCustodyHarness } from './helpers/custody-harness.ts';

const NATS = process.env['CUSTOS_TEST_NATS_URL'];

describe('custody with MPC node processes over NATS', {
  skip: NATS ? undefined : 'CUSTOS_TEST_NATS_URL not set',
}, () => {
  let h: CustodyHarness;
  before(async () => {
    h = await startCustodyHarness({ db: await openDatabase({}), nodeProcesses: { natsUrl: NATS! } });
  });
  after(async () => {
    await h?.close();
    await h?.db.close();
  });

  test('a hot-vault withdrawal is signed by node processes that checked the evidence; untrusted owner → refused', async () => {
    const { org, call, chain } = h;
    const operator = org.users.operator;
    const v = await call('POST', '/v1/vaults', org.users.security_officer.token, {
      name: 'hot',
      tier: 'hot',
    });
    assert.equal(v.status, 201, JSON.stringify(v.body));
    await h.signPolicy(v.body.id);
    const w = await call('POST', '/v1/wallets', operator.token, { vaultId: v.body.id, network: 'test' });
    const a = await call('POST', `/v1/wallets/${w.body.id}/addresses`, operator.token, {});
    chain.faucet(a.body.address, 'TST', 5_000_000n);
    chain.mine(2);
    await h.custody.tick();
    await h.custody.tick();
    const withdraw = async (key: string) => {
      const t = await call(
        'POST',
        '/v1/transactions',
        operator.token,
        { walletId: w.body.id, asset: 'TST', destination: externalAddress(chain), amount: '100000' },
        { 'idempotency-key': key },
      );
      assert.equal(t.status, 201, JSON.stringify(t.body));
      await h.custody.withdrawals.idle();
      return (await call('GET', `/v1/transactions/${t.body.id}`, operator.token)).body;
    };
    const ok = await withdraw('np-1');
    assert.equal(ok.state, 'broadcast', JSON.stringify(ok));
    chain.mine(2);
    await h.custody.tick();
    assert.equal((await call('GET', `/v1/transactions/${ok.id}`, operator.token)).body.state, 'completed');

    // The node operators withdraw their trust in the owner: the nodes refuse, nothing is signed.
    for (const n of h.cluster.cluster.nodes) {
      writeFileSync(join(nodeDataDir(h.cluster.cluster, n.id), 'trusted-owners.json'), '{"orgs":{}}\n');
    }
    const refused = await withdraw('np-2');
    assert.equal(refused.state, 'failed', JSON.stringify(refused));
    assert.match(refused.failure, /custody: /, 'refused by the nodes’ custody check');
    assert.equal(refused.chainTxId, null);
  });
});
