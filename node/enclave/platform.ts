/** What the host's TEE driver gives an enclave: evidence over the report data the enclave chose. */
export interface PlatformReport {
  platform: string;
  measurement: string;
  evidence: Uint8Array;
}

export interface TeePlatform {
  readonly name: string;
  readonly measurement: string;
  getReport(reportDataHex: string): Promise<PlatformReport>;
  /** The 32-byte key this platform derives for the measured enclave program (sealing). */
  sealingKey(): Promise<Uint8Array>;
}
