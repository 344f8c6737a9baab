import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { ChainError } from '../../consensus/index.js';
import { RpcFault } from './errors.js';
import { findUncarriableNumber } from './exact-json.js';
import type { RpcMethod } from './method.js';

/**
 * Turns a request's `params` (array, object or absent) into the handler's
 * argument list, or throws -32602 (or INVALID_ARGS). `checkNumbers` false skips
 * the number check, for a payload already known to hold only safe integers.
 */
export type ParamBinder = (params: unknown, checkNumbers?: boolean) => unknown[];

const MAX_ECHO = 64;

function clip(text: string): string {
  return text.length > MAX_ECHO ? `${text.slice(0, MAX_ECHO)}…` : text;
}

function invalid(reason: string, param?: string, path?: string): RpcFault {
  const data: Record<string, string> = {};
  if (param !== undefined) data['param'] = param;
  if (path) data['path'] = clip(path);
  data['reason'] = reason;
  return RpcFault.of('INVALID_PARAMS', data);
}

/**
 * Numbers go first, before the schema: one that is not a safe integer, or that
 * the node would read as another value than the one written, is INVALID_ARGS
 * wherever it is (a height, a nonce, a contract argument), never changed.
 */
function refuseUncarriableNumbers(param: string, value: unknown): void {
  const found = findUncarriableNumber(value);
  if (!found) return;
  const at = found.path ? ` at ${clip(found.path)}` : '';
  throw new ChainError(
    'INVALID_ARGS',
    `param "${param}"${at}: ${found.reason}; numbers in params must be safe integers, written exactly`,
    { param, path: clip(found.path), reason: found.reason },
  );
}

function describe(error: ErrorObject | undefined): string {
  if (!error) return 'invalid';
  const extra = error.params as Record<string, unknown>;
  if (error.keyword === 'additionalProperties' && typeof extra['additionalProperty'] === 'string') {
    return `must not have property "${clip(extra['additionalProperty'])}"`;
  }
  return error.message ?? 'invalid';
}

/** Compiles every param schema of a method once; the binder then runs without compiling. */
export function compileParamBinder(ajv: Ajv, method: RpcMethod): ParamBinder {
  const specs = method.params.map((spec) => ({
    name: spec.name,
    required: spec.required !== false,
    validate: ajv.compile(spec.schema) as ValidateFunction,
  }));
  let seenOptional = false;
  for (const spec of specs) {
    if (!spec.required) seenOptional = true;
    else if (seenOptional) throw new Error(`${method.name}: required param "${spec.name}" follows an optional one`);
  }
  const names = new Set(specs.map((spec) => spec.name));

  return (params: unknown, checkNumbers = true): unknown[] => {
    let values: unknown[];
    if (params === undefined) {
      values = [];
    } else if (Array.isArray(params)) {
      if (params.length > specs.length) {
        throw invalid(`expected at most ${specs.length} params, got ${params.length}`);
      }
      values = params;
    } else {
      const byName = params as Record<string, unknown>;
      for (const key of Object.keys(byName)) {
        if (!names.has(key)) throw invalid('unknown parameter', clip(key));
      }
      values = specs.map((spec) => (Object.prototype.hasOwnProperty.call(byName, spec.name) ? byName[spec.name] : undefined));
    }
    const args: unknown[] = [];
    for (let i = 0; i < specs.length; i++) {
      const spec = specs[i]!;
      const value = values[i];
      // A positional `null` for an optional trailing param means "absent", as by-name omission does.
      if (value === undefined || (value === null && !spec.required)) {
        if (spec.required) throw invalid('required', spec.name);
        args.push(undefined);
        continue;
      }
      if (checkNumbers) refuseUncarriableNumbers(spec.name, value);
      if (!spec.validate(value)) {
        const first = spec.validate.errors?.[0];
        throw invalid(describe(first), spec.name, first?.instancePath);
      }
      args.push(value);
    }
    return args;
  };
}

/** The ajv instance the server uses: strict, no coercion, no defaults, first error only. */
export function createAjv(): Ajv {
  return new Ajv({ strict: true, allErrors: false, coerceTypes: false, useDefaults: false, validateFormats: false });
}
