// Control-plane requests, node replies and heartbeats: JSON bodies signed with Ed25519.
//   request  `custos.mpc.node.<id>.req`  {"body": "<JSON>", "sig": hex}  signed by the control plane
//   reply                                  {"body": "<JSON>", "sig": hex, "node": id}  signed by the node
//   heartbeat `custos.mpc.hb`             {"body": "<JSON>", "sig": hex, "node": id}  signed by the node
// Each signature covers a domain tag and the exact body bytes, so a body cannot be replayed as another
// kind of message. Requests carry an id (idempotency), a session id and an expiry.
import type { KeyObject } from 'node:crypto';
import { z } from 'zod';
import { ed25519Sign, ed25519Verify } from '../crypto/ed25519-openssl.ts';

/** Subject prefix: `custos.mpc`, or `custos.mpc.<namespace>` when the cluster file sets one. */
export const mpcPrefix = (namespace?: string): string =>
  namespace ? `custos.mpc.${namespace}` : 'custos.mpc';
export const requestSubject = (id: number, namespace?: string): string =>
  `${mpcPrefix(namespace)}.node.${id}.req`;
export const heartbeatSubject = (namespace?: string): string => `${mpcPrefix(namespace)}.hb`;

const enc = new TextEncoder();
const DOMAIN = {
  request: 'custos/mpc/request/v1\0',
  reply: 'custos/mpc/reply/v1\0',
  heartbeat: 'custos/mpc/heartbeat/v1\0',
} as const;
export type WireKind = keyof typeof DOMAIN;

export interface Signed {
  body: string;
  sig: string;
  node?: number;
}

export function signBody(
  kind: WireKind,
  body: unknown,
  key: KeyObject | { sign(m: Uint8Array): Uint8Array },
  node?: number,
): Uint8Array {
  const text = JSON.stringify(body);
  const msg = enc.encode(DOMAIN[kind] + text);
  const sig =
    'sign' in key && typeof key.sign === 'function' ? key.sign(msg) : ed25519Sign(key as KeyObject, msg);
  const out: Signed = {
    body: text,
    sig: Buffer.from(sig).toString('hex'),
    ...(node !== undefined ? { node } : {}),
  };
  return enc.encode(JSON.stringify(out));
}

/** Parses and verifies; `keyFor` maps the claimed node id (or undefined) to the expected public key. */
export function openSigned(
  kind: WireKind,
  data: Uint8Array,
  keyFor: (node: number | undefined) => Uint8Array | undefined,
): { body: unknown; node: number | undefined } | { error: string; node?: number } {
  let outer: Signed;
  try {
    outer = JSON.parse(new TextDecoder().decode(data)) as Signed;
  } catch {
    return { error: 'not JSON' };
  }
  if (
    typeof outer?.body !== 'string' ||
    typeof outer.sig !== 'string' ||
    !/^[0-9a-f]{128}$/.test(outer.sig)
  ) {
    return { error: 'malformed signed message' };
  }
  const node = typeof outer.node === 'number' ? outer.node : undefined;
  const pub = keyFor(node);
  if (!pub)
    return { error: `unknown signer ${node ?? '(control plane)'}`, ...(node !== undefined ? { node } : {}) };
  if (!ed25519Verify(pub, enc.encode(DOMAIN[kind] + outer.body), Buffer.from(outer.sig, 'hex'))) {
    return { error: 'bad signature', ...(node !== undefined ? { node } : {}) };
  }
  try {
    return { body: JSON.parse(outer.body), node };
  } catch {
    return { error: 'body not JSON' };
  }
}

const hex = (n?: number) =>
  n ? z.string().regex(new RegExp(`^[0-9a-f]{${n * 2}}$`)) : z.string().regex(/^([0-9a-f]{2})*$/);
const partyId = z.number().int().min(1).max(255);
const keyId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/);
const scheme = z.enum(['ecdsa-secp256k1', 'eddsa-ed25519', 'schnorr-bip340']);

const common = {
  v: z.literal(1),
  requestId: z.string().min(1).max(128),
  sessionId: hex(32),
  issuedAt: z.number().int(),
  expiresAt: z.number().int(),
  timeoutMs: z.number().int().positive().max(600_000),
};

/** Evidence that a signing request is authorised (approvals, a verifier quorum certificate, …). */
export const authorizationSchema = z.object({ kind: z.string().min(1).max(64) }).catchall(z.unknown());
export type Authorization = z.infer<typeof authorizationSchema>;

export const requestSchema = z.discriminatedUnion('type', [
  z.object({ ...common, type: z.literal('ping') }),
  z.object({
    ...common,
    type: z.literal('keygen'),
    keyId,
    scheme,
    threshold: z.number().int().min(1).max(255),
    parties: z.array(partyId).min(1).max(255),
    allowRawSigning: z.boolean(),
  }),
  z.object({
    ...common,
    type: z.literal('sign'),
    keyId,
    generation: z.number().int().min(0),
    signers: z.array(partyId).min(1).max(255),
    message: hex(),
    derivationPath: z.string().max(200).optional(),
    authorization: authorizationSchema.optional(),
  }),
  z.object({ ...common, type: z.literal('refresh'), keyId, generation: z.number().int().min(0) }),
  z.object({
    ...common,
    type: z.literal('reshare'),
    keyId,
    generation: z.number().int().min(0),
    scheme,
    info: z.object({
      threshold: z.number().int().min(1).max(255),
      parties: z.array(partyId).min(1).max(255),
      publicKey: hex(),
      chainCode: hex(32),
      allowRawSigning: z.boolean(),
      publicShares: z.record(z.string(), hex()).optional(),
    }),
    oldParties: z.array(partyId).min(1).max(255),
    newParties: z.array(partyId).min(1).max(255),
    newThreshold: z.number().int().min(1).max(255),
  }),
  z.object({
    ...common,
    type: z.literal('commit'),
    keyId,
    generation: z.number().int().min(0),
    action: z.enum(['commit', 'discard']),
  }),
  z.object({ ...common, type: z.literal('unlock'), keyId }),
]);

export type ControlRequest = z.infer<typeof requestSchema>;
export type ControlRequestOf<T extends ControlRequest['type']> = Extract<ControlRequest, { type: T }>;

export interface AbortInfo {
  code: string;
  message: string;
  culprit: number | null;
  reason: string | null;
  round: number | null;
  protocol: string | null;
  cheating: boolean;
  /** Nodes that did not answer (timeouts). */
  missing?: number[];
}

export type NodeReply =
  | { ok: true; requestId: string; result: Record<string, unknown> }
  | { ok: false; requestId: string; error: AbortInfo; unreachable?: number };

export interface HeartbeatKey {
  keyId: string;
  scheme: string;
  threshold: number;
  parties: number[];
  publicKey: string;
  generation: number;
  locked: boolean;
}

export interface Heartbeat {
  node: number;
  at: number;
  startedAt: number;
  keys: HeartbeatKey[];
  /** keyId → signer set ("1-2") → presignatures ready */
  pools: Record<string, Record<string, number>>;
}
