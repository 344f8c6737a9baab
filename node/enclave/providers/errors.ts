/**
 * Errors of the evidence providers (node side: talking to the kernel's or
 * Gramine's attestation interface). Callers branch on `code`.
 */
export const PROVIDER_ERROR_CODES = [
  /** The attestation interface is not there (no configfs-tsm / no sev-guest provider / not under Gramine). */
  'INTERFACE_UNAVAILABLE',
  /** The interface exists but this process may not use it. */
  'PERMISSION_DENIED',
  /** configfs-tsm is served by another TSM than the one this provider speaks for (e.g. tdx_guest). */
  'PROVIDER_MISMATCH',
  /** Gramine runs without DCAP remote attestation (attestation_type "none" or "epid"). */
  'UNSUPPORTED_ATTESTATION_TYPE',
  /** Another writer changed the report request between our writes and our reads. Retry. */
  'GENERATION_MISMATCH',
  /** Bad argument (report data not 64 bytes of hex, bad privilege level). */
  'INVALID_ARGUMENT',
  /** The report/quote returned cannot be parsed. */
  'REPORT_MALFORMED',
  /** The report/quote returned does not carry the report data we asked for (stale or raced). */
  'REPORT_DATA_MISMATCH',
  /** Any other I/O failure (see `details.errno` and `cause`). */
  'IO_ERROR',
] as const;

export type ProviderErrorCode = (typeof PROVIDER_ERROR_CODES)[number];

export class EvidenceProviderError extends Error {
  override readonly name = 'EvidenceProviderError';
  constructor(
    readonly code: ProviderErrorCode,
    message: string,
    readonly details?: Readonly<Record<string, unknown>>,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** errno code of a Node.js system error, if any. */
export function errnoOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Maps a failed file operation to a typed error. ENOENT/ENXIO/ENODEV mean the interface is missing. */
export function ioError(err: unknown, what: string, path: string, missing: string): EvidenceProviderError {
  if (err instanceof EvidenceProviderError) return err;
  const errno = errnoOf(err);
  const details = { path, errno: errno ?? null };
  if (errno === 'ENOENT' || errno === 'ENXIO' || errno === 'ENODEV' || errno === 'ENOTDIR') {
    return new EvidenceProviderError('INTERFACE_UNAVAILABLE', `${what}: ${path}: ${errno}. ${missing}`, details, { cause: err });
  }
  if (errno === 'EACCES' || errno === 'EPERM') {
    return new EvidenceProviderError('PERMISSION_DENIED', `${what}: ${path}: ${errno} (run the node with access to the attestation interface)`, details, {
      cause: err,
    });
  }
  return new EvidenceProviderError('IO_ERROR', `${what}: ${path}: ${errno ?? String(err)}`, details, { cause: err });
}
