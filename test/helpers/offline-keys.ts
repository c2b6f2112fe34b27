// The public half of a key made on an offline cluster, as POST /v1/vaults takes it in `offlineKeys`
// (from a KeyRecord or `custos offline-signer keygen --json`).
export interface OfflineKeyFields {
  keyId: string;
  scheme: string;
  publicKey: string;
  chainCode: string;
  threshold: number;
  parties: readonly number[];
}

export function offlineKeyOf(k: OfflineKeyFields): OfflineKeyFields {
  return {
    keyId: k.keyId,
    scheme: k.scheme,
    publicKey: k.publicKey,
    chainCode: k.chainCode,
    threshold: k.threshold,
    parties: k.parties,
  };
}
