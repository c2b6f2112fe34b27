// In-process threshold signing for the devnet, tests and benchmarks: a DKLs23 key among n parties
// run in this process through the local runner (src/crypto/local-runner.ts), exactly the protocol
// the MPC nodes run, minus the network. There is no single-key signer here: the private key never
// exists; each signature is produced by `threshold` parties' shares.
import { randomBytes } from 'node:crypto';
import { runLocalProtocol } from '../../crypto/local-runner.ts';
import { SCHEMES } from '../../crypto/schemes.ts';
import type {
  KeyShare,
  PartyId,
  Presignature,
  PublicKeyInfo,
  SchemeSignature,
} from '../../crypto/threshold.ts';

const sid = () => randomBytes(32).toString('hex');

export interface LocalThresholdSignerParameters {
  threshold?: number;
  parties?: number;
  /** Which parties sign (default 1..threshold). */
  signers?: PartyId[];
}

export class LocalThresholdSigner {
  readonly info: PublicKeyInfo;
  readonly signers: readonly PartyId[];
  readonly #shares: Map<PartyId, KeyShare>;
  readonly #pool: Map<PartyId, Presignature>[] = [];
  #signatures = 0;

  private constructor(shares: Map<PartyId, KeyShare>, signers: PartyId[]) {
    this.#shares = shares;
    this.signers = signers;
    this.info = shares.get(signers[0]!)!.info;
  }

  /** Runs the DKG (about 2 s for 2-of-3). */
  static create(p: LocalThresholdSignerParameters = {}): LocalThresholdSigner {
    const t = p.threshold ?? 2;
    const n = p.parties ?? 3;
    const all = Array.from({ length: n }, (_, i) => i + 1);
    const scheme = SCHEMES['ecdsa-secp256k1'];
    const session = sid();
    const shares = runLocalProtocol(
      all.map((id) => scheme.dkg({ sessionId: session, partyId: id, parties: all, threshold: t })),
    );
    return new LocalThresholdSigner(shares, p.signers ?? all.slice(0, t));
  }

  /** Compressed child public key at a non-hardened path (e.g. 'm/0/7'). */
  publicKey(path = 'm'): Uint8Array {
    return SCHEMES['ecdsa-secp256k1'].derivePublicKey(this.info, path);
  }

  /** Pre-computes `count` message-independent presignatures (one per future signature). */
  presign(count: number): void {
    const scheme = SCHEMES['ecdsa-secp256k1'];
    for (let i = 0; i < count; i++) {
      const session = sid();
      this.#pool.push(
        runLocalProtocol(
          this.signers.map((id) =>
            scheme.presign!({ sessionId: session, share: this.#shares.get(id)!, signers: this.signers }),
          ),
        ),
      );
    }
  }

  get presignatures(): number {
    return this.#pool.length;
  }

  get signatureCount(): number {
    return this.#signatures;
  }

  /** Signs a 32-byte digest under `path`, with a pooled presignature when one is left. */
  sign(digest: Uint8Array, path = 'm'): SchemeSignature {
    if (digest.length !== 32) throw new TypeError('threshold-signer: digest must be 32 bytes');
    const scheme = SCHEMES['ecdsa-secp256k1'];
    if (this.#pool.length === 0) this.presign(1);
    const presigs = this.#pool.shift()!;
    const session = sid();
    const out = runLocalProtocol(
      this.signers.map((id) =>
        scheme.sign({
          sessionId: session,
          share: this.#shares.get(id)!,
          signers: this.signers,
          message: digest,
          ...(path !== 'm' ? { derivationPath: path } : {}),
          presignature: presigs.get(id)!,
        }),
      ),
    );
    const sig = out.get(this.signers[0]!)!;
    if (!scheme.verify(sig.signingPublicKey, digest, sig)) {
      throw new Error('threshold-signer: combined signature does not verify');
    }
    this.#signatures++;
    return sig;
  }
}
