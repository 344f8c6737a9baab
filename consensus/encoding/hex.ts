const HEX_RE = /^[0-9a-f]*$/;

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex');
}

/** Decodes lowercase hex; returns undefined for anything else (odd length, upper case, other chars). */
export function fromHex(text: string): Uint8Array | undefined {
  if (text.length % 2 !== 0 || !HEX_RE.test(text)) return undefined;
  return new Uint8Array(Buffer.from(text, 'hex'));
}

/** True when `text` is lowercase hex of exactly `bytes` bytes. */
export function isHexOfLength(text: unknown, bytes: number): text is string {
  return typeof text === 'string' && text.length === bytes * 2 && HEX_RE.test(text);
}
