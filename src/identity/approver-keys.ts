// Approver keys: Ed25519 key pairs held by the approvers themselves (`custos keys approver-init`
// writes the private key to a local file); the platform stores only public keys. Registration needs
// a proof of possession — a signature over the org, the user and the key — so nobody can register
// someone else's public key as theirs. Approvals (transactions) are signatures by these keys over
// an intent hash; `verifyApproverSignature` is the one check for them.
import { randomBytes } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import { ed25519VerifyHex } from '../crypto/ed25519-openssl.ts';
import { ValidationError } from '../errors.ts';

export interface ApproverKeyFile {
  type: 'custos-approver-key';
  version: 1;
  publicKey: string;
  /** Ed25519 32-byte seed, hex. */
  privateKey: string;
  createdAt: string;
}

export function generateApproverKey(now = new Date()): ApproverKeyFile {
  const seed = randomBytes(32);
  const publicKey = Buffer.from(ed25519.getPublicKey(seed)).toString('hex');
  return {
    type: 'custos-approver-key',
    version: 1,
    publicKey,
    privateKey: seed.toString('hex'),
    createdAt: now.toISOString(),
  };
}

export function parseApproverKeyFile(text: string): ApproverKeyFile {
  const f = JSON.parse(text) as ApproverKeyFile;
  if (
    f?.type !== 'custos-approver-key' ||
    !/^[0-9a-f]{64}$/.test(f.privateKey ?? '') ||
    Buffer.from(ed25519.getPublicKey(Buffer.from(f.privateKey, 'hex'))).toString('hex') !== f.publicKey
  ) {
    throw new ValidationError('CUSTOS_INVALID_APPROVER_KEY', 'not a valid custos approver key file');
  }
  return f;
}

/** Normalises a public key given as 64 hex characters or base64/base64url of 32 bytes. */
export function parseApproverPublicKey(input: string): string {
  const s = input.trim();
  let bytes: Buffer | undefined;
  if (/^[0-9a-fA-F]{64}$/.test(s)) bytes = Buffer.from(s, 'hex');
  else if (/^[A-Za-z0-9+/_-]{43}=?$/.test(s)) bytes = Buffer.from(s, 'base64url');
  if (bytes?.length !== 32) {
    throw new ValidationError(
      'CUSTOS_INVALID_APPROVER_KEY',
      'publicKey must be an Ed25519 public key (32 bytes)',
    );
  }
  try {
    ed25519.Point.fromBytes(bytes); // on the curve
  } catch {
    throw new ValidationError('CUSTOS_INVALID_APPROVER_KEY', 'publicKey is not a point on Ed25519');
  }
  return bytes.toString('hex');
}

export function approverKeyProofMessage(orgId: string, userId: string, publicKeyHex: string): Uint8Array {
  return new TextEncoder().encode(
    `custos/approver-key-registration/v1\n${orgId}\n${userId}\n${publicKeyHex}`,
  );
}

export function signApproverProof(file: ApproverKeyFile, orgId: string, userId: string): string {
  const sig = ed25519.sign(
    approverKeyProofMessage(orgId, userId, file.publicKey),
    Buffer.from(file.privateKey, 'hex'),
  );
  return Buffer.from(sig).toString('hex');
}

/** Signs arbitrary bytes (e.g. an intent hash) with an approver key file. */
export function signWithApproverKey(file: ApproverKeyFile, message: Uint8Array): string {
  return Buffer.from(ed25519.sign(message, Buffer.from(file.privateKey, 'hex'))).toString('hex');
}

/** True when `signatureHex` is a valid Ed25519 signature of `message` by `publicKeyHex`. Never throws. */
export const verifyApproverSignature = ed25519VerifyHex;
