/**
 * Reading and writing the WebAssembly binary format at the byte level: LEB128
 * integers, a cursor over a byte array and a growable output buffer. Only what
 * the fuel instrumenter (wasm-fuel.ts) needs; nothing here knows about QuickJS.
 */

export type WasmBinaryErrorCode =
  /** The bytes are not a well-formed module (truncated, bad LEB128, sections out of order, ...). */
  | 'WASM_MALFORMED'
  /** A well-formed module uses something the instrumenter does not handle (an unknown opcode, ...). */
  | 'WASM_UNSUPPORTED';

export class WasmBinaryError extends Error {
  override readonly name = 'WasmBinaryError';
  constructor(
    readonly code: WasmBinaryErrorCode,
    message: string,
  ) {
    super(message);
  }
}

export function malformed(message: string): never {
  throw new WasmBinaryError('WASM_MALFORMED', message);
}

/** A read position in a byte array. Every read checks bounds. */
export class ByteReader {
  pos: number;

  constructor(
    readonly bytes: Uint8Array,
    start = 0,
    readonly end = bytes.length,
  ) {
    this.pos = start;
  }

  get done(): boolean {
    return this.pos >= this.end;
  }

  byte(): number {
    if (this.pos >= this.end) malformed(`unexpected end of data at offset ${this.pos}`);
    return this.bytes[this.pos++]!;
  }

  /** Unsigned LEB128 of at most 32 bits. */
  u32(): number {
    let result = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      const byte = this.byte();
      result += (byte & 0x7f) * 2 ** shift;
      if ((byte & 0x80) === 0) {
        if (result > 0xffff_ffff) malformed(`u32 out of range at offset ${this.pos}`);
        return result;
      }
    }
    return malformed(`u32 LEB128 longer than 5 bytes at offset ${this.pos}`);
  }

  /** Skips a signed LEB128 of at most `bits` bits (the instrumenter copies constants verbatim). */
  skipSigned(bits: 32 | 33 | 64): void {
    const maxBytes = Math.ceil(bits / 7);
    for (let i = 0; i < maxBytes; i++) {
      if ((this.byte() & 0x80) === 0) return;
    }
    malformed(`s${bits} LEB128 too long at offset ${this.pos}`);
  }

  /** Signed LEB128 of at most 33 bits (block types), as a number. */
  s33(): number {
    let result = 0;
    let shift = 0;
    let byte: number;
    do {
      if (shift >= 35) malformed(`s33 LEB128 too long at offset ${this.pos}`);
      byte = this.byte();
      result += (byte & 0x7f) * 2 ** shift;
      shift += 7;
    } while (byte & 0x80);
    if (byte & 0x40) result -= 2 ** shift;
    return result;
  }

  skip(count: number): void {
    if (count < 0 || this.pos + count > this.end) malformed(`unexpected end of data at offset ${this.pos}`);
    this.pos += count;
  }

  /** A UTF-8 name (length-prefixed), decoded strictly. */
  name(): string {
    const length = this.u32();
    const start = this.pos;
    this.skip(length);
    try {
      return new TextDecoder('utf-8', { fatal: true }).decode(this.bytes.subarray(start, start + length));
    } catch {
      return malformed(`a name at offset ${start} is not UTF-8`);
    }
  }
}

/** An append-only byte buffer. */
export class ByteWriter {
  private buf = new Uint8Array(1024);
  private length = 0;

  get size(): number {
    return this.length;
  }

  private reserve(extra: number): void {
    if (this.length + extra <= this.buf.length) return;
    let capacity = this.buf.length * 2;
    while (capacity < this.length + extra) capacity *= 2;
    const next = new Uint8Array(capacity);
    next.set(this.buf.subarray(0, this.length));
    this.buf = next;
  }

  byte(value: number): this {
    this.reserve(1);
    this.buf[this.length++] = value;
    return this;
  }

  bytes(data: Uint8Array): this {
    this.reserve(data.length);
    this.buf.set(data, this.length);
    this.length += data.length;
    return this;
  }

  u32(value: number): this {
    return this.bytes(encodeU32(value));
  }

  /** A length-prefixed byte vector (section contents, function bodies). */
  sized(data: Uint8Array): this {
    return this.u32(data.length).bytes(data);
  }

  name(text: string): this {
    return this.sized(new TextEncoder().encode(text));
  }

  finish(): Uint8Array {
    return this.buf.slice(0, this.length);
  }
}

/** Minimal unsigned LEB128 of a 32-bit value. */
export function encodeU32(value: number): Uint8Array {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff_ffff) throw new RangeError(`not a u32: ${value}`);
  const out: number[] = [];
  let rest = value;
  do {
    let byte = rest % 128;
    rest = Math.floor(rest / 128);
    if (rest !== 0) byte |= 0x80;
    out.push(byte);
  } while (rest !== 0);
  return Uint8Array.from(out);
}

/** Minimal signed LEB128 of a 64-bit value. */
export function encodeS64(value: bigint): Uint8Array {
  if (value < -(2n ** 63n) || value >= 2n ** 63n) throw new RangeError(`not an s64: ${value}`);
  const out: number[] = [];
  let rest = value;
  for (;;) {
    const byte = Number(rest & 0x7fn);
    rest >>= 7n; // arithmetic shift: BigInt keeps the sign
    const signBitClear = (byte & 0x40) === 0;
    if ((rest === 0n && signBitClear) || (rest === -1n && !signBitClear)) {
      out.push(byte);
      return Uint8Array.from(out);
    }
    out.push(byte | 0x80);
  }
}
