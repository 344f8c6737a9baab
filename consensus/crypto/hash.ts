import { createHash } from 'node:crypto';

/** SHA-256 of the bytes, lowercase hex. */
export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

export function sha256(data: Uint8Array | string): Uint8Array {
  return new Uint8Array(createHash('sha256').update(data).digest());
}

export function sha384Hex(data: Uint8Array | string): string {
  return createHash('sha384').update(data).digest('hex');
}
