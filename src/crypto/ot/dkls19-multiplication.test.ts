import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { KAPPA_BYTES, VerifyError, VsotReceiver, VsotSender } from './base-ot.ts';
import { mod, randomScalar } from './encoding.ts';
import { destroyBobState, gadgetVector, mulAlice, mulBobFinish, mulBobStart } from './mul.ts';

function setup() {
  const ctx = randomBytes(32);
  const delta = randomBytes(KAPPA_BYTES);
  const s = new VsotSender(ctx);
  const r = new VsotReceiver(ctx, new Uint8Array(delta));
  const m2 = r.message2(s.message1());
  const m4 = r.message4(s.message3(m2));
  r.finish(s.message5(m4));
  return { ctx, delta, bob: s.takeSeeds(), alice: r.takeSeeds() };
}

test('DKLs18 VSOT: receiver gets the chosen pad of each OT', () => {
  const { delta, bob, alice } = setup();
  for (let k = 0; k < KAPPA_BYTES * 8; k++) {
    const c = (delta[k >> 3]! >> (k & 7)) & 1;
    const want = (c ? bob.seeds1 : bob.seeds0).subarray(k * 32, k * 32 + 32);
    assert.deepEqual(alice.subarray(k * 32, k * 32 + 32), want);
  }
});

test('DKLs18 VSOT: tampered response or opening is detected', () => {
  const ctx = randomBytes(32);
  const s = new VsotSender(ctx);
  const r = new VsotReceiver(ctx, randomBytes(KAPPA_BYTES));
  const m4 = r.message4(s.message3(r.message2(s.message1())));
  m4[5]! ^= 1;
  s.message5(m4);
  assert.ok(s.responseFailed);
  assert.throws(() => s.takeSeeds());
  const s2 = new VsotSender(ctx);
  const r2 = new VsotReceiver(ctx, randomBytes(KAPPA_BYTES));
  const m5 = s2.message5(r2.message4(s2.message3(r2.message2(s2.message1()))));
  m5[40]! ^= 1;
  assert.throws(() => r2.finish(m5), VerifyError);
});

test('DKLs19 multiplication: c + d = a·b, and tampering is caught', () => {
  const { ctx, delta, bob, alice } = setup();
  const gadget = gadgetVector(ctx);
  for (let i = 0; i < 3; i++) {
    const sid = randomBytes(32);
    const st = mulBobStart(sid, gadget, bob.seeds0, bob.seeds1);
    const a = [randomScalar(), randomScalar()];
    const { c, message } = mulAlice(sid, gadget, delta, alice, a, st.message);
    const d = mulBobFinish(sid, gadget, st, message);
    for (let k = 0; k < 2; k++) assert.equal(mod(c[k]! + d[k]!), mod(a[k]! * st.b));
    destroyBobState(st);
  }
  // Alice tampers with a check value
  const sid = randomBytes(32);
  const st = mulBobStart(sid, gadget, bob.seeds0, bob.seeds1);
  const { message } = mulAlice(sid, gadget, delta, alice, [1n, 2n], st.message);
  message[message.length - 1]! ^= 1;
  assert.throws(() => mulBobFinish(sid, gadget, st, message), VerifyError);
  // Bob tampers with the extension matrix
  const st2 = mulBobStart(sid, gadget, bob.seeds0, bob.seeds1);
  st2.message[100]! ^= 4;
  assert.throws(() => mulAlice(sid, gadget, delta, alice, [1n, 2n], st2.message), VerifyError);
});
