/**
 * Fuel metering for a WebAssembly module, by rewriting its binary.
 *
 * The sandbox runs QuickJS compiled to WebAssembly. QuickJS's own interrupt counter
 * only ticks at bytecode-level calls and loop iterations, so work inside one native
 * built-in (`indexOf` over a long string, BigInt `**`, `sort`, string concatenation,
 * regexp backtracking, the garbage collector) was invisible to gas. Metering the
 * engine's own compiled code sees all of it, whatever JavaScript caused it.
 *
 * The rewrite adds one mutable i64 global, the fuel, exported under a given name,
 * and inserts straight-line code at three kinds of places:
 * - at every function entry and at the start of every `loop` body (each iteration):
 *   fuel -= perStep; trap (`unreachable`) when fuel < 0;
 * - before every `memory.copy` and `memory.fill`: fuel -= perStep + (length >>
 *   bulkByteShift), read through an added i32 local (`local.tee`) so the length stays
 *   on the stack; trap when fuel < 0, before any byte is copied.
 * Between two charge points a function executes only straight-line code (every
 * backward jump starts a loop iteration, every call enters a function), so fuel bounds
 * the instructions executed; bulk memory operations are bounded by their length.
 * Imported (host) functions are not metered here: their callers account for them.
 *
 * The inserted code is balanced (an `if ... end` block that opens and closes at the
 * insertion point) and leaves the operand stack as it found it, so no branch depth,
 * index or type elsewhere changes. Everything else stays byte-identical: sections
 * other than Global, Export and Code are copied verbatim, and so are all original
 * instructions, local declarations and immediates (LEB128 encodings included); only
 * the section and body sizes are re-encoded. The walker refuses any opcode it does
 * not know (WASM_UNSUPPORTED) rather than risk mis-parsing: it knows the MVP
 * instruction set, sign extension, saturating truncation and bulk memory
 * (`memory.init`, `data.drop`, `memory.copy`, `memory.fill`).
 */
import { ByteReader, ByteWriter, encodeS64, encodeU32, malformed, WasmBinaryError } from './wasm-binary.js';

export interface FuelSchedule {
  /** Fuel taken at every function entry and every loop iteration (a "step"). */
  perStep: number;
  /** memory.copy / memory.fill take perStep + (length >> bulkByteShift) fuel. */
  bulkByteShift: number;
}

export interface FuelOptions {
  schedule: FuelSchedule;
  /** Export name of the fuel global. */
  exportName: string;
  /** The global's initial value (also what it holds while the module's start function runs). */
  initialFuel: bigint;
}

export interface FuelInstrumentation {
  bytes: Uint8Array;
  /** Index of the fuel global in the module's global index space. */
  fuelGlobal: number;
  /** Counts of what was instrumented. */
  functions: number;
  loops: number;
  copies: number;
  fills: number;
}

const MAGIC_AND_VERSION = [0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00];

const SECTION = { custom: 0, type: 1, import: 2, function: 3, global: 6, export: 7, code: 10 } as const;
/** Position of each known section id in the order the binary format requires (tag = 13, data count = 12). */
const SECTION_RANK: Record<number, number> = { 1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 13: 6, 6: 7, 7: 8, 8: 9, 9: 10, 12: 11, 10: 12, 11: 13 };

const VALTYPES = new Set([0x7f, 0x7e, 0x7d, 0x7c, 0x7b, 0x70, 0x6f]);
const I32 = 0x7f;
const I64 = 0x7e;

const OP = {
  unreachable: 0x00,
  block: 0x02,
  loop: 0x03,
  if: 0x04,
  end: 0x0b,
  localGet: 0x20,
  localTee: 0x22,
  globalGet: 0x23,
  globalSet: 0x24,
  i64Const: 0x42,
  i64LtS: 0x53,
  i64Add: 0x7c,
  i64Sub: 0x7d,
  i64ShrU: 0x88,
  i64ExtendI32U: 0xad,
  prefixFC: 0xfc,
  emptyBlockType: 0x40,
} as const;
const FC_MEMORY_COPY = 10;
const FC_MEMORY_FILL = 11;

interface Section {
  id: number;
  /** Content range (after the id and size). */
  start: number;
  end: number;
}

/** Rewrites `module` with fuel metering. Throws WasmBinaryError when the module cannot be handled. */
export function instrumentFuel(module: Uint8Array, options: FuelOptions): FuelInstrumentation {
  const { schedule, exportName, initialFuel } = options;
  if (!Number.isSafeInteger(schedule.perStep) || schedule.perStep < 1) throw new RangeError('perStep must be a positive integer');
  if (!Number.isInteger(schedule.bulkByteShift) || schedule.bulkByteShift < 0 || schedule.bulkByteShift > 32) {
    throw new RangeError('bulkByteShift must be an integer from 0 to 32');
  }
  checkHeader(module);
  const sections = readSections(module);
  const find = (id: number): Section | undefined => sections.find((s) => s.id === id);

  const paramCounts = readFunctionTypes(module, find(SECTION.type));
  const importedGlobals = countImportedGlobals(module, find(SECTION.import));
  const functionTypes = readFunctionSection(module, find(SECTION.function));
  const globalSection = find(SECTION.global);
  const definedGlobals = globalSection ? new ByteReader(module, globalSection.start, globalSection.end).u32() : 0;
  const exportSection = find(SECTION.export);
  if (exportSection && readExportNames(module, exportSection).includes(exportName)) {
    throw new WasmBinaryError('WASM_UNSUPPORTED', `the module already exports "${exportName}"`);
  }
  const fuelGlobal = importedGlobals + definedGlobals;
  const code = find(SECTION.code);
  if ((code ? new ByteReader(module, code.start, code.end).u32() : 0) !== functionTypes.length) {
    malformed('the function and code sections disagree on the number of functions');
  }

  const stats = { functions: 0, loops: 0, copies: 0, fills: 0 };
  const newGlobal = new ByteWriter().byte(I64).byte(1).byte(OP.i64Const).bytes(encodeS64(initialFuel)).byte(OP.end).finish();
  const newExport = new ByteWriter().name(exportName).byte(0x03).u32(fuelGlobal).finish();

  const out = new ByteWriter().bytes(Uint8Array.from(MAGIC_AND_VERSION));
  const emit = (id: number, content: Uint8Array): void => void out.byte(id).sized(content);
  let globalDone = false;
  let exportDone = false;
  // A module without a global (or export) section gets one, placed where the format requires it.
  const catchUp = (rank: number): void => {
    if (!globalDone && rank > SECTION_RANK[SECTION.global]!) {
      emit(SECTION.global, new ByteWriter().u32(1).bytes(newGlobal).finish());
      globalDone = true;
    }
    if (!exportDone && rank > SECTION_RANK[SECTION.export]!) {
      emit(SECTION.export, new ByteWriter().u32(1).bytes(newExport).finish());
      exportDone = true;
    }
  };
  for (const section of sections) {
    if (section.id !== SECTION.custom) catchUp(SECTION_RANK[section.id]!);
    if (section.id === SECTION.global) {
      emit(section.id, appendToVector(module, section, newGlobal));
      globalDone = true;
    } else if (section.id === SECTION.export) {
      emit(section.id, appendToVector(module, section, newExport));
      exportDone = true;
    } else if (section.id === SECTION.code) {
      const bodies = rewriteCode(module, section, functionTypes.map((t) => paramCountOf(paramCounts, t)), fuelGlobal, schedule, stats);
      emit(section.id, bodies);
    } else {
      out.byte(section.id).sized(module.subarray(section.start, section.end));
    }
  }
  catchUp(Number.POSITIVE_INFINITY);
  return { bytes: out.finish(), fuelGlobal, ...stats };
}

/** Imported and defined globals of a module. */
export function countGlobals(module: Uint8Array): { imported: number; defined: number } {
  checkHeader(module);
  const sections = readSections(module);
  const imported = countImportedGlobals(module, sections.find((s) => s.id === SECTION.import));
  const globalSection = sections.find((s) => s.id === SECTION.global);
  const defined = globalSection ? new ByteReader(module, globalSection.start, globalSection.end).u32() : 0;
  return { imported, defined };
}

function checkHeader(module: Uint8Array): void {
  for (let i = 0; i < MAGIC_AND_VERSION.length; i++) {
    if (module[i] !== MAGIC_AND_VERSION[i]) malformed('not a WebAssembly version 1 module');
  }
}

function readSections(module: Uint8Array): Section[] {
  const reader = new ByteReader(module, MAGIC_AND_VERSION.length);
  const sections: Section[] = [];
  let lastRank = 0;
  while (!reader.done) {
    const id = reader.byte();
    const size = reader.u32();
    const start = reader.pos;
    reader.skip(size);
    if (id !== SECTION.custom) {
      const rank = SECTION_RANK[id];
      if (rank === undefined) throw new WasmBinaryError('WASM_UNSUPPORTED', `unknown section id ${id}`);
      if (rank <= lastRank) malformed(`section ${id} is out of order or repeated`);
      lastRank = rank;
    }
    sections.push({ id, start, end: reader.pos });
  }
  return sections;
}

/** The elements of a vector section, read by `item` (nothing when the section is absent). */
function readVector<T>(module: Uint8Array, section: Section | undefined, what: string, item: (reader: ByteReader, index: number) => T): T[] {
  if (!section) return [];
  const reader = new ByteReader(module, section.start, section.end);
  const count = reader.u32();
  const items: T[] = [];
  for (let i = 0; i < count; i++) items.push(item(reader, i));
  expectEnd(reader, what);
  return items;
}

/** The number of parameters of each type in the type section (function types only). */
function readFunctionTypes(module: Uint8Array, section: Section | undefined): number[] {
  return readVector(module, section, 'type', (reader, i) => {
    const form = reader.byte();
    if (form !== 0x60) throw new WasmBinaryError('WASM_UNSUPPORTED', `type ${i} is not a function type (form 0x${form.toString(16)})`);
    const paramCount = reader.u32();
    for (let p = 0; p < paramCount; p++) valtype(reader);
    const resultCount = reader.u32();
    for (let r = 0; r < resultCount; r++) valtype(reader);
    return paramCount;
  });
}

/** The kind of every import (0 function, 1 table, 2 memory, 3 global). */
function readImportKinds(module: Uint8Array, section: Section | undefined): number[] {
  return readVector(module, section, 'import', (reader) => {
    reader.name();
    reader.name();
    const kind = reader.byte();
    if (kind === 0) {
      reader.u32();
    } else if (kind === 1) {
      reader.byte(); // reference type
      limits(reader);
    } else if (kind === 2) {
      limits(reader);
    } else if (kind === 3) {
      valtype(reader);
      reader.byte(); // mutability
    } else {
      throw new WasmBinaryError('WASM_UNSUPPORTED', `import kind ${kind}`);
    }
    return kind;
  });
}

function countImportedGlobals(module: Uint8Array, section: Section | undefined): number {
  return readImportKinds(module, section).filter((kind) => kind === 3).length;
}

function readFunctionSection(module: Uint8Array, section: Section | undefined): number[] {
  return readVector(module, section, 'function', (reader) => reader.u32());
}

function readExportNames(module: Uint8Array, section: Section): string[] {
  return readVector(module, section, 'export', (reader) => {
    const name = reader.name();
    reader.byte();
    reader.u32();
    return name;
  });
}

function paramCountOf(paramCounts: number[], typeIndex: number): number {
  const count = paramCounts[typeIndex];
  if (count === undefined) malformed(`a function uses type ${typeIndex}, which does not exist`);
  return count;
}

function limits(reader: ByteReader): void {
  const flags = reader.u32();
  if (flags > 1) throw new WasmBinaryError('WASM_UNSUPPORTED', `limits flags ${flags} (shared or 64-bit memory)`);
  reader.u32();
  if (flags & 1) reader.u32();
}

function valtype(reader: ByteReader): number {
  const type = reader.byte();
  if (!VALTYPES.has(type)) throw new WasmBinaryError('WASM_UNSUPPORTED', `value type 0x${type.toString(16)} at offset ${reader.pos - 1}`);
  return type;
}

function expectEnd(reader: ByteReader, what: string): void {
  if (reader.pos !== reader.end) malformed(`the ${what} section has trailing bytes`);
}

/** A vector section's content with one more (already encoded) element at the end. */
function appendToVector(module: Uint8Array, section: Section, element: Uint8Array): Uint8Array {
  const reader = new ByteReader(module, section.start, section.end);
  const count = reader.u32();
  return new ByteWriter().u32(count + 1).bytes(module.subarray(reader.pos, section.end)).bytes(element).finish();
}

/** `fuel -= amount-on-stack-or-constant; if (fuel < 0) unreachable`, as bytes, given what computes the amount. */
function chargeCode(global: Uint8Array, amount: Uint8Array): Uint8Array {
  return new ByteWriter()
    .byte(OP.globalGet)
    .bytes(global)
    .bytes(amount)
    .byte(OP.i64Sub)
    .byte(OP.globalSet)
    .bytes(global)
    .byte(OP.globalGet)
    .bytes(global)
    .byte(OP.i64Const)
    .byte(0)
    .byte(OP.i64LtS)
    .byte(OP.if)
    .byte(OP.emptyBlockType)
    .byte(OP.unreachable)
    .byte(OP.end)
    .finish();
}

/** The charge at a function entry or loop start. */
export function stepChargeCode(fuelGlobal: number, perStep: number): Uint8Array {
  return chargeCode(encodeU32(fuelGlobal), new ByteWriter().byte(OP.i64Const).bytes(encodeS64(BigInt(perStep))).finish());
}

/** The charge before memory.copy / memory.fill; `lengthLocal` receives the length operand (left on the stack). */
export function bulkChargeCode(fuelGlobal: number, schedule: FuelSchedule, lengthLocal: number): Uint8Array {
  const local = encodeU32(lengthLocal);
  const amount = new ByteWriter()
    .byte(OP.localGet)
    .bytes(local)
    .byte(OP.i64ExtendI32U)
    .byte(OP.i64Const)
    .bytes(encodeS64(BigInt(schedule.bulkByteShift)))
    .byte(OP.i64ShrU)
    .byte(OP.i64Const)
    .bytes(encodeS64(BigInt(schedule.perStep)))
    .byte(OP.i64Add)
    .finish();
  return new ByteWriter().byte(OP.localTee).bytes(local).bytes(chargeCode(encodeU32(fuelGlobal), amount)).finish();
}

function rewriteCode(
  module: Uint8Array,
  section: Section,
  paramCounts: number[],
  fuelGlobal: number,
  schedule: FuelSchedule,
  stats: { functions: number; loops: number; copies: number; fills: number },
): Uint8Array {
  const reader = new ByteReader(module, section.start, section.end);
  const count = reader.u32();
  const out = new ByteWriter().u32(count);
  const stepCharge = stepChargeCode(fuelGlobal, schedule.perStep);
  for (let i = 0; i < count; i++) {
    const size = reader.u32();
    const start = reader.pos;
    reader.skip(size);
    out.sized(rewriteBody(new ByteReader(module, start, reader.pos), paramCounts[i]!, fuelGlobal, schedule, stepCharge, stats));
    stats.functions++;
  }
  expectEnd(reader, 'code');
  return out.finish();
}

function rewriteBody(
  body: ByteReader,
  paramCount: number,
  fuelGlobal: number,
  schedule: FuelSchedule,
  stepCharge: Uint8Array,
  stats: { loops: number; copies: number; fills: number },
): Uint8Array {
  const { bytes } = body;
  const bodyStart = body.pos;
  const groups = body.u32();
  const groupsStart = body.pos;
  let localCount = 0;
  for (let g = 0; g < groups; g++) {
    localCount += body.u32();
    valtype(body);
  }
  if (paramCount + localCount >= 0xffff_ffff) malformed('too many locals');
  const lengthLocal = paramCount + localCount;
  const localsEnd = body.pos;

  const code = new ByteWriter().bytes(stepCharge);
  let bulkCharge: Uint8Array | null = null;
  let copyFrom = body.pos;
  const flush = (to: number): void => {
    code.bytes(bytes.subarray(copyFrom, to));
    copyFrom = to;
  };
  let depth = 0;
  for (;;) {
    const at = body.pos;
    const op = body.byte();
    switch (op) {
      case OP.block:
      case OP.if:
        blockType(body);
        depth++;
        break;
      case OP.loop:
        blockType(body);
        depth++;
        flush(body.pos);
        code.bytes(stepCharge);
        stats.loops++;
        break;
      case OP.end:
        depth--;
        break;
      case OP.prefixFC: {
        const sub = body.u32();
        if (sub <= 7) break; // saturating truncations
        if (sub === 8) {
          body.u32(); // memory.init data index
          zeroByte(body);
        } else if (sub === 9) {
          body.u32(); // data.drop
        } else if (sub === FC_MEMORY_COPY || sub === FC_MEMORY_FILL) {
          zeroByte(body);
          if (sub === FC_MEMORY_COPY) zeroByte(body);
          flush(at);
          bulkCharge ??= bulkChargeCode(fuelGlobal, schedule, lengthLocal);
          code.bytes(bulkCharge);
          if (sub === FC_MEMORY_COPY) stats.copies++;
          else stats.fills++;
        } else {
          unsupported(`0xfc ${sub}`, at);
        }
        break;
      }
      default:
        skipImmediates(body, op, at);
    }
    if (depth < 0) break;
  }
  if (body.pos !== body.end) malformed(`a function body continues after its final end (offset ${body.pos})`);
  flush(body.end);

  // The local declarations stay as they were; a function with bulk memory gets one more i32.
  const header = new ByteWriter();
  if (bulkCharge) header.u32(groups + 1).bytes(bytes.subarray(groupsStart, localsEnd)).u32(1).byte(I32);
  else header.bytes(bytes.subarray(bodyStart, localsEnd));
  return header.bytes(code.finish()).finish();
}

function blockType(reader: ByteReader): void {
  const first = reader.bytes[reader.pos];
  if (first === OP.emptyBlockType || (first !== undefined && VALTYPES.has(first))) {
    reader.byte();
    return;
  }
  if (reader.s33() < 0) malformed(`bad block type at offset ${reader.pos}`);
}

function zeroByte(reader: ByteReader): void {
  if (reader.byte() !== 0) throw new WasmBinaryError('WASM_UNSUPPORTED', `a non-zero memory index at offset ${reader.pos - 1}`);
}

function unsupported(what: string, at: number): never {
  throw new WasmBinaryError('WASM_UNSUPPORTED', `instruction ${what} at offset ${at}`);
}

/** Skips the immediates of every instruction other than block/loop/if/end and the 0xFC prefix. */
function skipImmediates(reader: ByteReader, op: number, at: number): void {
  if (op >= 0x45 && op <= 0xc4) return; // numeric instructions, including sign extension: no immediates
  if (op >= 0x28 && op <= 0x3e) {
    // loads and stores: alignment (bit 6 would announce a memory index), offset
    if (reader.u32() & 0x40) throw new WasmBinaryError('WASM_UNSUPPORTED', `multi-memory access at offset ${at}`);
    reader.u32();
    return;
  }
  switch (op) {
    case 0x00: // unreachable
    case 0x01: // nop
    case 0x05: // else
    case 0x0f: // return
    case 0x1a: // drop
    case 0x1b: // select
      return;
    case 0x0c: // br
    case 0x0d: // br_if
    case 0x10: // call
    case 0x20: // local.get
    case 0x21: // local.set
    case 0x22: // local.tee
    case 0x23: // global.get
    case 0x24: // global.set
      reader.u32();
      return;
    case 0x0e: {
      // br_table: vector of labels, then the default label
      const count = reader.u32();
      for (let i = 0; i <= count; i++) reader.u32();
      return;
    }
    case 0x11: // call_indirect: type index, table index
      reader.u32();
      reader.u32();
      return;
    case 0x1c: {
      // select with a type vector
      const count = reader.u32();
      for (let i = 0; i < count; i++) valtype(reader);
      return;
    }
    case 0x3f: // memory.size
    case 0x40: // memory.grow
      zeroByte(reader);
      return;
    case 0x41:
      reader.skipSigned(32);
      return;
    case 0x42:
      reader.skipSigned(64);
      return;
    case 0x43:
      reader.skip(4);
      return;
    case 0x44:
      reader.skip(8);
      return;
    default:
      unsupported(`0x${op.toString(16)}`, at);
  }
}

