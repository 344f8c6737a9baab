/**
 * The engine binary every node runs: the pinned QuickJS WebAssembly build, checked
 * by SHA-256, rewritten in memory with fuel metering (wasm-fuel.ts), and checked
 * again by SHA-256. The instrumenter is our own code, part of the enclave program;
 * pinning its output too makes any change to it, or to the fuel schedule it compiles
 * in, a visible consensus change rather than a silent one.
 */
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { sha256Hex } from '../../consensus/index.js';
import { ContractError } from '../bundle/errors.js';
import { FUEL } from './gas.js';
import { WasmBinaryError } from './wasm-binary.js';
import { countGlobals, instrumentFuel } from './wasm-fuel.js';

/** SHA-256 of @jitl/quickjs-wasmfile-release-sync@0.32.0 dist/emscripten-module.wasm. */
export const QUICKJS_WASM_SHA256 = '105c3bed22d457e43e3d1c3c1c6959fda62a8fe06f0fc8a985303c3a2be72232';

/** SHA-256 of that build after instrumentFuel with the FUEL schedule, FUEL_EXPORT and UNMETERED_FUEL. */
export const METERED_WASM_SHA256 = 'b86145e519153fa3c6fb292e0a072e6e689f1793fa3e390c7ce4fbd1a17347f3';

/** Export name of the fuel global in the metered build. */
export const FUEL_EXPORT = 'cloister_fuel';

/**
 * What the fuel global holds whenever the host rather than a contract runs the engine
 * (start-up, creating argument strings, reading results, inside host API callbacks):
 * more than any host operation can use, so host work never traps. The host's own work
 * is charged by the explicit schedule (GAS), not by fuel.
 */
export const UNMETERED_FUEL = 2n ** 62n;

export interface MeteredBuild {
  /** The instrumented binary, ready to compile. */
  bytes: Uint8Array;
  /** SHA-256 of the original (pinned) binary. */
  sha256: string;
}

function unsupported(message: string): never {
  throw new ContractError('SANDBOX_UNSUPPORTED', `QuickJS engine self-check failed: ${message}`);
}

/** Path of the pinned build's WebAssembly file, as quickjs-emscripten resolves it. */
export function quickjsWasmPath(): string {
  return createRequire(createRequire(import.meta.url).resolve('quickjs-emscripten')).resolve('@jitl/quickjs-wasmfile-release-sync/wasm');
}

/** Reads, checks and instruments the engine binary. */
export async function loadMeteredBuild(expectedSha256: string): Promise<MeteredBuild> {
  const path = quickjsWasmPath();
  const original = await readFile(path);
  const sha256 = sha256Hex(original);
  if (sha256 !== expectedSha256) {
    throw new ContractError(
      'SANDBOX_UNSUPPORTED',
      `QuickJS WebAssembly at ${path} has SHA-256 ${sha256}, expected ${expectedSha256}: every node must run the same engine build`,
    );
  }
  let bytes: Uint8Array;
  try {
    // Restoring linear memory restores the whole engine only if memory and the stack
    // pointer are its only mutable state (the table is never written at run time in
    // this build): check that before adding the fuel global, which the host sets itself.
    const globals = countGlobals(original);
    if (globals.imported !== 0 || globals.defined !== 1) {
      unsupported(`the engine imports ${globals.imported} and defines ${globals.defined} globals, expected only the stack pointer`);
    }
    const metered = instrumentFuel(original, {
      schedule: { perStep: FUEL.PER_STEP, bulkByteShift: FUEL.BULK_BYTE_SHIFT },
      exportName: FUEL_EXPORT,
      initialFuel: UNMETERED_FUEL,
    });
    if (metered.fuelGlobal !== 1) unsupported(`the fuel global has index ${metered.fuelGlobal}, expected 1`);
    bytes = metered.bytes;
  } catch (err) {
    if (err instanceof WasmBinaryError) unsupported(`the engine binary cannot be instrumented (${err.code}): ${err.message}`);
    throw err;
  }
  const meteredSha256 = sha256Hex(bytes);
  if (meteredSha256 !== METERED_WASM_SHA256) {
    unsupported(`the metered engine has SHA-256 ${meteredSha256}, expected ${METERED_WASM_SHA256}: the instrumenter or the fuel schedule changed`);
  }
  return { bytes, sha256 };
}
