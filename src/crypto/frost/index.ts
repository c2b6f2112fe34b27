// Threshold Schnorr/EdDSA signing with FROST (RFC 9591): Ed25519 for Solana and other EdDSA chains,
// BIP340 for Bitcoin Taproot. Both implement the shared ThresholdScheme interface (src/crypto/threshold.ts).
// Protocol layer, message formats, refresh/reshare and HD: docs/crypto/frost.md.

export type { Ed25519Derivation } from './ed25519-hd.ts';
export { deriveEd25519 } from './ed25519-hd.ts';
export type { FrostBip340Scheme, FrostScheme } from './scheme.ts';
export { createFrostScheme, frostBip340, frostEd25519 } from './scheme.ts';
export { FrostKeyShare, SigningNonce } from './share.ts';
export type { FrostSignParams } from './sign.ts';
export { describePayload, FROST_PAYLOAD_VERSION, KIND } from './wire.ts';
