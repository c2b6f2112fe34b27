// Bus contract suite: the same tests against the in-process bus and NATS JetStream
// (CUSTOS_TEST_NATS_URL). Every run uses its own random stream names and subject prefix, and
// deletes its streams afterwards, so parallel files and repeated runs never see each other.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { createBus } from '../src/bus/index.ts';
import { MemoryBusHub } from '../src/bus/memory.ts';
import type { Bus, BusMessage, DurableMessage } from '../src/bus/types.ts';
import { BusError } from '../src/errors.ts';

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

async function waitFor(cond: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

function isBusError(code: string) {
  return (err: unknown) => {
    assert.ok(err instanceof BusError, `expected BusError, got ${String(err)}`);
    assert.equal(err.code, code);
    return true;
  };
}

interface Delivery {
  seq: number;
  data: string;
  count: number;
  at: number;
}

export function runBusContract(
  name: string,
  factory: () => Promise<Bus>,
  opts: { skip?: string | undefined } = {},
): void {
  describe(`bus contract [${name}]`, { skip: opts.skip ?? false }, () => {
    const run = randomBytes(4).toString('hex');
    let a: Bus;
    let b: Bus;
    let n = 0;
    const streams: string[] = [];
    /** Fresh, per-test names: stream T<run>_<n>, subjects t.<run>.<n>.… */
    const names = () => {
      n++;
      return { stream: `T${run}_${n}`, prefix: `t.${run}.${n}` };
    };
    const stream = async (extra: { retention?: 'limits' | 'workqueue'; duplicateWindowMs?: number } = {}) => {
      const nm = names();
      await a.ensureStream({ name: nm.stream, subjects: [`${nm.prefix}.>`], storage: 'memory', ...extra });
      streams.push(nm.stream);
      return nm;
    };

    before(async () => {
      a = await factory();
      b = await factory();
    });
    after(async () => {
      for (const s of streams) await a.deleteStream(s).catch(() => false);
      await a?.close();
      await b?.close();
    });

    test('publish/subscribe delivers payload and headers, with * and > wildcards', async () => {
      const { prefix } = names();
      const got: Record<string, string[]> = { exact: [], star: [], gt: [] };
      const subs = await Promise.all([
        b.subscribe(`${prefix}.x.y`, (m) => void got.exact!.push(`${m.subject}=${dec(m.data)}`)),
        b.subscribe(`${prefix}.*.y`, (m) => void got.star!.push(m.subject)),
        b.subscribe(`${prefix}.>`, (m) => void got.gt!.push(m.subject)),
      ]);
      let headers: BusMessage['headers'] | undefined;
      subs.push(
        await b.subscribe(`${prefix}.h`, (m) => {
          headers = m.headers;
        }),
      );
      await a.publish(`${prefix}.x.y`, enc('1'));
      await a.publish(`${prefix}.z.y`, enc('2'));
      await a.publish(`${prefix}.x.y.deep`, enc('3'));
      await a.publish(`${prefix}.h`, enc(''), { headers: { 'X-Trace': 'abc', 'content-type': 'json' } });
      await waitFor(() => got.gt!.length === 4 && headers !== undefined, 5000, 'deliveries');
      await sleep(50);
      assert.deepEqual(got.exact, [`${prefix}.x.y=1`]);
      assert.deepEqual(got.star, [`${prefix}.x.y`, `${prefix}.z.y`]);
      assert.deepEqual(got.gt, [`${prefix}.x.y`, `${prefix}.z.y`, `${prefix}.x.y.deep`, `${prefix}.h`]);
      assert.deepEqual(headers, { 'X-Trace': 'abc', 'content-type': 'json' });
      for (const s of subs) await s.unsubscribe();
      await a.publish(`${prefix}.x.y`, enc('after'));
      await sleep(50);
      assert.equal(got.exact!.length, 1, 'no delivery after unsubscribe');
    });

    test('queue group: each message reaches one member; plain subscribers get all', async () => {
      const { prefix } = names();
      const counts = { q1: 0, q2: 0, all: 0 };
      const subs = await Promise.all([
        a.subscribe(`${prefix}.job`, () => void counts.q1++, { queue: 'workers' }),
        b.subscribe(`${prefix}.job`, () => void counts.q2++, { queue: 'workers' }),
        b.subscribe(`${prefix}.job`, () => void counts.all++),
      ]);
      for (let i = 0; i < 40; i++) await a.publish(`${prefix}.job`, enc(String(i)));
      await waitFor(() => counts.all === 40 && counts.q1 + counts.q2 === 40, 5000, 'queue deliveries');
      await sleep(50);
      assert.equal(counts.q1 + counts.q2, 40);
      for (const s of subs) await s.unsubscribe();
    });

    test('request/reply across two clients, with headers', async () => {
      const { prefix } = names();
      const sub = await b.subscribe(`${prefix}.echo`, (m) => {
        assert.equal(m.replyable, true);
        m.respond(enc(`echo:${dec(m.data)}:${m.headers['X-In'] ?? ''}`), { headers: { 'X-Out': 'yes' } });
      });
      const r = await a.request(`${prefix}.echo`, enc('hi'), { timeoutMs: 2000, headers: { 'X-In': 'h' } });
      assert.equal(dec(r.data), 'echo:hi:h');
      assert.equal(r.headers['X-Out'], 'yes');
      await sub.unsubscribe();
    });

    test('request without responders fails fast with CUSTOS_BUS_NO_RESPONDERS', async () => {
      const { prefix } = names();
      const t0 = Date.now();
      await assert.rejects(
        a.request(`${prefix}.nobody`, enc('x'), { timeoutMs: 3000 }),
        isBusError('CUSTOS_BUS_NO_RESPONDERS'),
      );
      assert.ok(Date.now() - t0 < 2000, 'did not wait for the timeout');
    });

    test('request that nobody answers in time fails with CUSTOS_BUS_TIMEOUT', async () => {
      const { prefix } = names();
      const sub = await b.subscribe(`${prefix}.slow`, () => {});
      const t0 = Date.now();
      await assert.rejects(
        a.request(`${prefix}.slow`, enc('x'), { timeoutMs: 300 }),
        isBusError('CUSTOS_BUS_TIMEOUT'),
      );
      const took = Date.now() - t0;
      assert.ok(took >= 250 && took < 2000, `took ${took} ms`);
      await sub.unsubscribe();
    });

    test('malformed subjects, names and headers are rejected', async () => {
      const noop = () => {};
      for (const s of ['', 'a..b', 'a.*', 'a.>', '.a', 'a.', 'a b']) {
        await assert.rejects(a.publish(s, enc('')), isBusError('CUSTOS_BUS_INVALID_SUBJECT'), s);
      }
      await assert.rejects(a.subscribe('a.>.b', noop), isBusError('CUSTOS_BUS_INVALID_SUBJECT'));
      await assert.rejects(a.subscribe('a.b*', noop), isBusError('CUSTOS_BUS_INVALID_SUBJECT'));
      await assert.rejects(
        a.ensureStream({ name: 'bad.name', subjects: ['x.>'] }),
        isBusError('CUSTOS_BUS_INVALID_SUBJECT'),
      );
      await assert.rejects(
        a.ensureConsumer({ stream: 'S', durable: 'has space' }),
        isBusError('CUSTOS_BUS_INVALID_SUBJECT'),
      );
      await assert.rejects(
        a.publish('a.b', enc(''), { headers: { 'Nats-Msg-Id': 'x' } }),
        isBusError('CUSTOS_BUS_INVALID_ARGUMENT'),
      );
      await assert.rejects(
        a.publish('a.b', enc(''), { headers: { 'X-A': 'line\r\nbreak' } }),
        isBusError('CUSTOS_BUS_INVALID_ARGUMENT'),
      );
      await assert.rejects(
        a.request('a.b', enc(''), { timeoutMs: -1 }),
        isBusError('CUSTOS_BUS_INVALID_ARGUMENT'),
      );
    });

    test('stream and consumer setup is idempotent; missing ones are CUSTOS_BUS_NOT_FOUND', async () => {
      const { stream: s, prefix } = await stream();
      await a.ensureStream({ name: s, subjects: [`${prefix}.>`], storage: 'memory' });
      await b.ensureStream({ name: s, subjects: [`${prefix}.>`], storage: 'memory', maxMsgs: 1000 });
      await a.ensureConsumer({ stream: s, durable: 'c1', ackWaitMs: 1000 });
      await b.ensureConsumer({ stream: s, durable: 'c1', ackWaitMs: 2000, maxDeliver: 5 });
      await assert.rejects(
        a.consume(s, 'missing', () => {}),
        isBusError('CUSTOS_BUS_NOT_FOUND'),
      );
      await assert.rejects(
        a.consume(`${s}_missing`, 'c1', () => {}),
        isBusError('CUSTOS_BUS_NOT_FOUND'),
      );
      await assert.rejects(
        a.publishDurable(`t.${run}.nostream.x`, enc('x')),
        isBusError('CUSTOS_BUS_NOT_FOUND'),
      );
      assert.equal(await a.deleteConsumer(s, 'c1'), true);
      assert.equal(await a.deleteConsumer(s, 'c1'), false);
      assert.equal(await a.deleteStream(`${s}_missing`), false);
    });

    test('durable consumer: backlog in order, acked messages are not redelivered, position survives restart', async () => {
      const { stream: s, prefix } = await stream();
      await a.ensureConsumer({ stream: s, durable: 'w', ackWaitMs: 1000 });
      for (let i = 1; i <= 3; i++) {
        await a.publishDurable(`${prefix}.ev`, enc(`m${i}`), { headers: { 'X-N': String(i) } });
      }
      const got: DurableMessage[] = [];
      const h = await b.consume(s, 'w', async (m) => {
        got.push(m);
        await m.ack();
      });
      await waitFor(() => got.length === 3, 5000, '3 deliveries');
      assert.deepEqual(
        got.map((m) => dec(m.data)),
        ['m1', 'm2', 'm3'],
      );
      assert.deepEqual(
        got.map((m) => m.headers['X-N']),
        ['1', '2', '3'],
      );
      assert.ok(got.every((m) => m.deliveryCount === 1 && m.stream === s && m.subject === `${prefix}.ev`));
      assert.ok(got[0]!.seq < got[1]!.seq && got[1]!.seq < got[2]!.seq);
      await h.stop();
      await a.publishDurable(`${prefix}.ev`, enc('m4'));
      const later: string[] = [];
      const h2 = await a.consume(s, 'w', async (m) => {
        later.push(dec(m.data));
        await m.ack();
      });
      await waitFor(() => later.length === 1, 5000, 'm4');
      await sleep(1300); // longer than ackWait: acked messages must not come back
      assert.deepEqual(later, ['m4']);
      await h2.stop();
    });

    test('unacked message is redelivered after ackWait, with the same seq and a higher count', async () => {
      const { stream: s, prefix } = await stream();
      await a.ensureConsumer({ stream: s, durable: 'w', ackWaitMs: 500 });
      const got: Delivery[] = [];
      const h = await b.consume(s, 'w', async (m) => {
        got.push({ seq: m.seq, data: dec(m.data), count: m.deliveryCount, at: Date.now() });
        if (m.deliveryCount >= 2) await m.ack(); // first delivery: no ack
      });
      await a.publishDurable(`${prefix}.ev`, enc('x'));
      await waitFor(() => got.length === 2, 5000, 'redelivery');
      const [first, second] = got as [Delivery, Delivery];
      assert.equal(first.seq, second.seq);
      assert.deepEqual([first.count, second.count], [1, 2]);
      assert.ok(second.at - first.at >= 400, `redelivered after ${second.at - first.at} ms`);
      await sleep(800);
      assert.equal(got.length, 2, 'no delivery after ack');
      await h.stop();
    });

    test('nak with delay redelivers after the delay; a throwing handler gets the message again', async () => {
      const { stream: s, prefix } = await stream();
      await a.ensureConsumer({ stream: s, durable: 'w', ackWaitMs: 5000 });
      const got: Delivery[] = [];
      const h = await b.consume(s, 'w', async (m) => {
        const data = dec(m.data);
        got.push({ seq: m.seq, data, count: m.deliveryCount, at: Date.now() });
        if (data === 'nak' && m.deliveryCount === 1) return m.nak(400);
        if (data === 'throw' && m.deliveryCount === 1) throw new Error('planned failure');
        await m.ack();
      });
      await a.publishDurable(`${prefix}.ev`, enc('nak'));
      await waitFor(() => got.filter((d) => d.data === 'nak').length === 2, 5000, 'nak redelivery');
      const naks = got.filter((d) => d.data === 'nak');
      const gap = naks[1]!.at - naks[0]!.at;
      assert.ok(gap >= 350 && gap < 3000, `nak redelivered after ${gap} ms`);
      await a.publishDurable(`${prefix}.ev`, enc('throw'));
      await waitFor(() => got.filter((d) => d.data === 'throw').length === 2, 4000, 'redelivery after throw');
      assert.deepEqual(
        got.filter((d) => d.data === 'throw').map((d) => d.count),
        [1, 2],
      );
      await h.stop();
    });

    test('maxDeliver caps deliveries of a message that is never acked', async () => {
      const { stream: s, prefix } = await stream();
      await a.ensureConsumer({ stream: s, durable: 'w', ackWaitMs: 300, maxDeliver: 2 });
      const counts: number[] = [];
      const h = await b.consume(s, 'w', (m) => {
        if (dec(m.data) === 'poison') counts.push(m.deliveryCount);
        else return m.ack();
      });
      await a.publishDurable(`${prefix}.ev`, enc('poison'));
      await waitFor(() => counts.length === 2, 5000, 'two deliveries');
      await sleep(1000);
      assert.deepEqual(counts, [1, 2]);
      // the consumer moves on
      const ok: string[] = [];
      await h.stop();
      const h2 = await b.consume(s, 'w', async (m) => {
        ok.push(dec(m.data));
        await m.ack();
      });
      await a.publishDurable(`${prefix}.ev`, enc('fine'));
      await waitFor(() => ok.includes('fine'), 5000, 'next message');
      assert.deepEqual(ok, ['fine']);
      await h2.stop();
    });

    test('backoffMs spaces redeliveries per attempt; working() holds a slow message', async () => {
      const { stream: s, prefix } = await stream();
      await a.ensureConsumer({ stream: s, durable: 'bo', backoffMs: [200, 700], maxDeliver: 3 });
      const at: number[] = [];
      const h = await b.consume(s, 'bo', () => {
        at.push(Date.now());
      });
      await a.publishDurable(`${prefix}.ev`, enc('x'));
      await waitFor(() => at.length === 3, 5000, 'three deliveries');
      const gap1 = at[1]! - at[0]!;
      const gap2 = at[2]! - at[1]!;
      assert.ok(gap1 >= 150 && gap1 < 600, `first redelivery after ${gap1} ms`);
      assert.ok(gap2 >= 600 && gap2 < 1600, `second redelivery after ${gap2} ms`);
      await h.stop();

      await a.ensureConsumer({ stream: s, durable: 'slow', ackWaitMs: 400 });
      const counts: number[] = [];
      const h2 = await b.consume(s, 'slow', async (m) => {
        counts.push(m.deliveryCount);
        for (let i = 0; i < 4; i++) {
          await sleep(200);
          m.working();
        }
        await m.ack();
      });
      await waitFor(() => counts.length >= 1, 5000, 'delivery');
      await sleep(1200);
      assert.deepEqual(counts, [1], 'working() prevented redelivery during 800 ms of work');
      await h2.stop();
    });

    test('de-duplication: the same msgId within the window is stored and delivered once', async () => {
      const { stream: s, prefix } = await stream({ duplicateWindowMs: 60_000 });
      await a.ensureConsumer({ stream: s, durable: 'w', ackWaitMs: 2000 });
      const p1 = await a.publishDurable(`${prefix}.pay`, enc('first'), { msgId: 'tx-1' });
      const p2 = await b.publishDurable(`${prefix}.pay`, enc('second'), { msgId: 'tx-1' });
      const p3 = await a.publishDurable(`${prefix}.pay`, enc('third'), { msgId: 'tx-2' });
      assert.equal(p1.duplicate, false);
      assert.equal(p2.duplicate, true);
      assert.equal(p2.seq, p1.seq);
      assert.equal(p1.stream, s);
      assert.equal(p3.duplicate, false);
      const got: DurableMessage[] = [];
      const h = await b.consume(s, 'w', async (m) => {
        got.push(m);
        await m.ack();
      });
      await waitFor(() => got.length >= 2, 5000, 'deliveries');
      await sleep(300);
      assert.deepEqual(
        got.map((m) => [dec(m.data), m.msgId]),
        [
          ['first', 'tx-1'],
          ['third', 'tx-2'],
        ],
      );
      assert.deepEqual(got[0]!.headers, {}, 'Nats-* headers are not exposed');
      await h.stop();
    });

    test('two clients on one durable share the work: each message handled once', async () => {
      const { stream: s, prefix } = await stream();
      await a.ensureConsumer({ stream: s, durable: 'shared', ackWaitMs: 5000 });
      const seen: { by: string; data: string }[] = [];
      const handler = (by: string) => async (m: DurableMessage) => {
        seen.push({ by, data: dec(m.data) });
        await sleep(5);
        await m.ack();
      };
      const h1 = await a.consume(s, 'shared', handler('a'), { concurrency: 2 });
      const h2 = await b.consume(s, 'shared', handler('b'), { concurrency: 2 });
      for (let i = 0; i < 30; i++) await a.publishDurable(`${prefix}.job`, enc(String(i)));
      await waitFor(() => seen.length >= 30, 10_000, '30 jobs');
      await sleep(300);
      assert.equal(seen.length, 30);
      assert.equal(new Set(seen.map((x) => x.data)).size, 30);
      await Promise.all([h1.stop(), h2.stop()]);
    });

    test('work-queue stream: an acked message is removed', async () => {
      const { stream: s, prefix } = await stream({ retention: 'workqueue' });
      await a.ensureConsumer({ stream: s, durable: 'wq', ackWaitMs: 2000 });
      await a.publishDurable(`${prefix}.job`, enc('j1'));
      const got: string[] = [];
      const h = await b.consume(s, 'wq', async (m) => {
        got.push(dec(m.data));
        await m.ack();
      });
      await waitFor(() => got.length === 1, 5000, 'job');
      await h.stop();
      // a second consumer created later finds nothing left
      await a.deleteConsumer(s, 'wq');
      await a.ensureConsumer({ stream: s, durable: 'wq2', ackWaitMs: 2000 });
      const late: string[] = [];
      const h2 = await b.consume(s, 'wq2', async (m) => {
        late.push(dec(m.data));
        await m.ack();
      });
      await sleep(300);
      assert.deepEqual(late, []);
      await h2.stop();
    });

    test('ping answers; close lets running handlers finish, is idempotent, and fails later calls', async () => {
      assert.equal(typeof (await a.ping()), 'number');
      const c = await factory();
      const { stream: s, prefix } = await stream();
      await c.ensureConsumer({ stream: s, durable: 'w', ackWaitMs: 1000 });
      let finished = false;
      await c.consume(s, 'w', async (m) => {
        await sleep(200);
        await m.ack();
        finished = true;
      });
      await c.publishDurable(`${prefix}.ev`, enc('slow'));
      await sleep(50);
      await c.close();
      assert.equal(finished, true, 'close waited for the running handler');
      await c.close();
      await assert.rejects(c.ping(), isBusError('CUSTOS_BUS_UNAVAILABLE'));
      await assert.rejects(c.publish(`${prefix}.x`, enc('')), isBusError('CUSTOS_BUS_UNAVAILABLE'));
      // the ack made it: another client sees nothing to redeliver
      const again: string[] = [];
      const h = await a.consume(s, 'w', async (m) => {
        again.push(dec(m.data));
        await m.ack();
      });
      await sleep(1300);
      assert.deepEqual(again, []);
      await h.stop();
    });
  });
}

{
  const hub = new MemoryBusHub();
  runBusContract('memory', () => createBus({ hub }));
}
{
  const natsUrl = process.env['CUSTOS_TEST_NATS_URL'];
  runBusContract('nats', () => createBus({ natsUrl: natsUrl!, name: 'custos-test' }), {
    skip: natsUrl ? undefined : 'CUSTOS_TEST_NATS_URL not set',
  });
}
