// Custody events for webhooks: a deposit and a hot withdrawal on the test chain, through the REST API
// and three in-process MPC nodes, produce events — read from the audit log, in commit order — that
// GET /v1/events pages through and the event relay publishes to a bus stream, at least once and never
// lost: one relay at a time (lease), its position survives a restart, and a republish after a crash
// between publish and save is dropped by the stream (message id). Events carry no actor ids, request
// ids or other audit details. On PGlite with the in-process bus, and on PostgreSQL with NATS
// JetStream when CUSTOS_TEST_DATABASE_URL and CUSTOS_TEST_NATS_URL are set.
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createBus } from '../src/bus/index.ts';
import { MemoryBusHub } from '../src/bus/memory.ts';
import type { Bus, DurableMessage } from '../src/bus/types.ts';
import { EventRelay } from '../src/custody/event-relay.ts';
import type { CustodyEvent } from '../src/custody/events.ts';
import { type CustodyHarness, externalAddress, startCustodyHarness } from './helpers/custody-harness.ts';
import { databaseBackends } from './helpers/databases.ts';
import { makeOrg } from './helpers/identity-harness.ts';

const natsUrl = process.env['CUSTOS_TEST_NATS_URL'];
const backends = databaseBackends().map((b) => ({
  ...b,
  bus: b.name === 'pglite' ? ('memory' as const) : ('nats' as const),
  skip: b.skip ?? (b.name === 'postgres' && !natsUrl ? 'CUSTOS_TEST_NATS_URL not set' : undefined),
}));

const TX_PATH = [
  'transaction.created',
  'transaction.screening',
  'transaction.approved',
  'transaction.signing',
  'transaction.broadcast',
  'transaction.confirming',
  'transaction.completed',
];

for (const backend of backends) {
  describe(`custody events (${backend.name}, ${backend.bus} bus)`, { skip: backend.skip }, () => {
    let h: CustodyHarness;
    let bus: Bus;
    const tag = randomBytes(4).toString('hex');
    const stream = `T_EVENTS_${tag}`;
    const prefix = `t${tag}.events`;
    let walletId: string;
    let depositId: string;
    let txId: string;

    const waitFor = async (what: string, pred: () => Promise<boolean>) => {
      for (let i = 0; i < 200; i++) {
        if (await pred()) return;
        await h.custody.tick();
        h.chain.mine(1);
        await sleep(10);
      }
      assert.fail(`timed out waiting for ${what}`);
    };

    before(async () => {
      bus =
        backend.bus === 'memory'
          ? await createBus({ hub: new MemoryBusHub() })
          : await createBus({ natsUrl: natsUrl!, name: 'custos-test-events' });
      h = await startCustodyHarness({
        db: await backend.open(),
        poolSize: 2,
        bus,
        eventRelay: { stream, subjectPrefix: prefix, name: `t${tag}` },
      });
      const owner = h.org.users.owner;
      const v = await h.call('POST', '/v1/vaults', owner.token, { name: 'hot', tier: 'hot' });
      assert.equal(v.status, 201, JSON.stringify(v.body));
      await h.signPolicy(v.body.id);
      const w = await h.call('POST', '/v1/wallets', owner.token, { vaultId: v.body.id, network: 'test' });
      walletId = w.body.id;
      const a = await h.call('POST', `/v1/wallets/${walletId}/addresses`, owner.token, {});
      h.chain.faucet(a.body.address, 'TST', 1_000_000n);
      await waitFor('the deposit to be credited', async () => {
        const d = await h.call('GET', `/v1/deposits?walletId=${walletId}`, owner.token);
        depositId = d.body.deposits?.[0]?.id;
        return d.body.deposits?.[0]?.status === 'credited';
      });
      const t = await h.call(
        'POST',
        '/v1/transactions',
        h.org.users.operator.token,
        { walletId, asset: 'TST', destination: externalAddress(h.chain), amount: '250000' },
        { 'idempotency-key': randomUUID() },
      );
      assert.equal(t.status, 201, JSON.stringify(t.body));
      txId = t.body.id;
      await waitFor('the withdrawal to complete', async () => {
        await h.custody.withdrawals.idle();
        const r = await h.call('GET', `/v1/transactions/${txId}`, owner.token);
        return r.body.state === 'completed';
      });
    });
    after(async () => {
      await h?.close();
      await bus?.deleteStream(stream).catch(() => undefined);
      await bus?.close();
      await h?.db.close();
    });

    test('GET /v1/events: the deposit and every withdrawal state, in commit order, paged with after', async () => {
      const auditor = h.org.users.auditor;
      const all = await h.call('GET', '/v1/events?limit=1000', auditor.token);
      assert.equal(all.status, 200, JSON.stringify(all.body));
      const events: CustodyEvent[] = all.body.events;
      assert.equal(all.body.next, null);
      const seqs = events.map((e) => BigInt(e.seq));
      assert.deepEqual(
        seqs,
        [...seqs].sort((x, y) => (x < y ? -1 : 1)),
        'ordered by seq',
      );
      const ofTx = events.filter((e) => e.resource.id === txId).map((e) => e.type);
      assert.deepEqual(ofTx, TX_PATH);
      const ofDeposit = events.filter((e) => e.resource.id === depositId).map((e) => e.type);
      assert.deepEqual(ofDeposit, ['deposit.detected', 'deposit.credited']);
      // The deposit came first, its credit before the withdrawal was created.
      const at = (type: string, id: string) =>
        events.findIndex((e) => e.type === type && e.resource.id === id);
      assert.ok(at('deposit.credited', depositId) < at('transaction.created', txId));
      for (const e of events) {
        assert.equal(e.orgId, h.org.orgId);
        assert.equal(e.environment, 'production');
        assert.equal(e.id, `evt_${e.seq}`);
      }
      const created = events.find((e) => e.type === 'transaction.created')!;
      assert.equal(created.data['amount'], '250000');
      assert.equal(created.data['walletId'], walletId);
      const completed = events.find((e) => e.type === 'transaction.completed')!;
      assert.match(String(completed.data['chainTxId']), /\S/);
      // Nothing of the audit entry beyond the allowlist: no actor ids, no request ids.
      const text = JSON.stringify(events);
      for (const u of Object.values(h.org.users)) assert.ok(!text.includes(u.id), 'no user id in events');
      assert.doesNotMatch(text, /requestId|actorId|"actor"/);

      // Pages of 2 with `after` give the same events.
      const paged: CustodyEvent[] = [];
      let after: string | null = null;
      for (let i = 0; i < 100; i++) {
        const r = await h.call('GET', `/v1/events?limit=2${after ? `&after=${after}` : ''}`, auditor.token);
        paged.push(...r.body.events);
        after = r.body.next;
        if (!after) break;
      }
      assert.deepEqual(
        paged.map((e) => e.id),
        events.map((e) => e.id),
      );
      // Filters.
      const done = await h.call(
        'GET',
        '/v1/events?type=transaction.completed,deposit.credited',
        auditor.token,
      );
      assert.deepEqual(
        done.body.events.map((e: CustodyEvent) => e.type),
        ['deposit.credited', 'transaction.completed'],
      );
      const one = await h.call('GET', `/v1/events?resourceId=${txId}`, auditor.token);
      assert.deepEqual(
        one.body.events.map((e: CustodyEvent) => e.type),
        TX_PATH,
      );
    });

    test('GET /v1/events refuses unknown types and bad cursors; another organisation sees none of these', async () => {
      const t = h.org.users.auditor.token;
      const bad = await h.call('GET', '/v1/events?type=transaction.teleported', t);
      assert.equal(bad.status, 400);
      assert.equal(bad.body.error.code, 'CUSTOS_VALIDATION');
      const cursor = await h.call('GET', '/v1/events?after=-1', t);
      assert.equal(cursor.status, 400);
      assert.equal(cursor.body.error.code, 'CUSTOS_VALIDATION');
      const other = await makeOrg(h.security.services, `other-${randomUUID().slice(0, 6)}`);
      const theirs = await h.call('GET', '/v1/events', other.users.owner.token);
      assert.equal(theirs.status, 200);
      assert.deepEqual(theirs.body.events, []);
    });

    test('the relay publishes every event once, in order; a second relay waits; a restart resumes; a republish is dropped', async () => {
      const relay = h.custody.events!;
      assert.ok(relay);
      const first = await relay.tick();
      assert.equal(first.leased, true);
      assert.ok(first.published >= TX_PATH.length + 2, JSON.stringify(first));
      assert.equal(first.duplicates, 0);

      // Consume the org's events from the stream.
      const received: CustodyEvent[] = [];
      const subjects: string[] = [];
      const consume = async (durable: string) => {
        await bus.ensureConsumer({ stream, durable, filterSubject: `${prefix}.${h.org.orgId}.>` });
        return bus.consume(stream, durable, async (m: DurableMessage) => {
          received.push(JSON.parse(new TextDecoder().decode(m.data)));
          subjects.push(m.subject);
          await m.ack();
        });
      };
      const c = await consume('reader');
      const api = (await h.call('GET', '/v1/events?limit=1000', h.org.users.owner.token)).body
        .events as CustodyEvent[];
      for (let i = 0; i < 300 && received.length < api.length; i++) await sleep(10);
      assert.deepEqual(
        received.map((e) => e.id),
        api.map((e) => e.id),
        'the stream holds exactly the events the API lists, in the same order',
      );
      assert.deepEqual(received, api);
      assert.equal(
        subjects[received.findIndex((e) => e.type === 'transaction.completed')],
        `${prefix}.${h.org.orgId}.production.transaction.completed`,
      );
      assert.equal(await relay.position(), BigInt(api[api.length - 1]!.seq));

      // Nothing new: nothing published.
      assert.equal((await relay.tick()).published, 0);

      // A second relay (another replica) under the same name does nothing while the lease is held.
      const replica = new EventRelay(h.db.db, bus, h.custody.service.deps.logger, {
        intervalMs: 1000,
        name: relay.name,
        stream,
        subjectPrefix: prefix,
      });
      assert.deepEqual(await replica.tick(), { published: 0, duplicates: 0, leased: false });

      // The first stops (releases the lease); the replica takes over from the stored position.
      await relay.stop();
      assert.deepEqual(await replica.tick(), { published: 0, duplicates: 0, leased: true });

      // A crash between publishing and saving the position: the replica republishes from an older
      // position, and the stream drops every one of them by message id.
      const back = BigInt(api[2]!.seq);
      await h.db.db
        .updateTable('event_cursors')
        .set({ seq: back.toString() })
        .where('name', '=', relay.name)
        .execute();
      const again = await replica.tick();
      assert.ok(again.published > 0);
      assert.equal(again.duplicates, again.published, 'every republished event was a duplicate');
      await sleep(100);
      assert.equal(received.length, api.length, 'subscribers saw nothing twice');

      // A new withdrawal's events flow through the replica as they commit.
      const t = await h.call(
        'POST',
        '/v1/transactions',
        h.org.users.operator.token,
        { walletId, asset: 'TST', destination: externalAddress(h.chain), amount: '1000' },
        { 'idempotency-key': randomUUID() },
      );
      assert.equal(t.status, 201, JSON.stringify(t.body));
      await h.custody.withdrawals.idle();
      await replica.tick();
      for (
        let i = 0;
        i < 300 && !received.some((e) => e.resource.id === t.body.id && e.type === 'transaction.broadcast');
        i++
      ) {
        await sleep(10);
      }
      assert.deepEqual(
        received.filter((e) => e.resource.id === t.body.id).map((e) => e.type),
        TX_PATH.slice(0, 5),
      );
      await c.stop();
      await replica.stop();
    });
  });
}
