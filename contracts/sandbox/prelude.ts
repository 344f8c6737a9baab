/**
 * JavaScript that runs inside QuickJS, once per slot, before the contract's module.
 *
 * It is a function expression `setup(hGet, hSet, hDel, hEmit, hFail)` taking the
 * five host functions. It
 * 1. removes every global that is not a deterministic language built-in (eval,
 *    and anything an engine might add), deletes Math.random and disables the
 *    Function constructors (no dynamic code); Date is never installed;
 * 2. defines the frozen global `cloister` (the contract API);
 * 3. returns `bind(namespace, methodsJson)`, which checks that the module exports
 *    every manifest method and returns
 *    `entry(method, contract, caller, height, time, readonly, jsonMask, ...args)`, the
 *    function the host calls for each transaction.
 *
 * The host functions are reachable only through closures here. Intrinsics used
 * by the encoder are captured before contract code runs, so a contract that
 * replaces JSON.stringify cannot confuse it (and the host validates what it
 * receives in any case).
 *
 * entry returns 'R' + the JSON of the result, or 'E' + JSON [code, message]
 * when the method threw. API misuse (bad keys, non-encodable values, writes in a
 * read-only call) calls hFail, which makes the host stop the VM at its next poll
 * point with an uncatchable interrupt: such failures cannot be caught by the contract.
 */
export const PRELUDE_SOURCE = String.raw`(function setup(hGet, hSet, hDel, hEmit, hFail) {
  'use strict';
  const G = globalThis;
  const ObjectCtor = Object;
  const parse = JSON.parse;
  const stringify = JSON.stringify;
  const keysOf = ObjectCtor.keys;
  const protoOf = ObjectCtor.getPrototypeOf;
  const freeze = ObjectCtor.freeze;
  const defineProperty = ObjectCtor.defineProperty;
  const isArray = Array.isArray;
  const isSafeInteger = Number.isSafeInteger;
  const apply = Reflect.apply;
  const ownKeys = Reflect.ownKeys;
  const uncurry = (fn) => Function.prototype.call.bind(fn);
  const isWellFormed = uncurry(String.prototype.isWellFormed);
  const slice = uncurry(String.prototype.slice);
  const StringCtor = String;
  const ObjectProto = ObjectCtor.prototype;
  const PromiseProto = Promise.prototype;
  const ErrorCtor = Error;
  const TypeErrorCtor = TypeError;
  const InternalErrorCtor = InternalError;
  const MAX_DEPTH = 64;
  const MAX_MESSAGE = 1000;
  // Where an uncaught error was thrown, from its stack (QuickJS writes "at f (contract.js:LINE:COLUMN)").
  const execRegExp = uncurry(RegExp.prototype.exec);
  const PLACE = /contract\.js:(\d+)(?::(\d+))?/;

  // 1. Only deterministic language built-ins stay global.
  const KEEP = {
    Object: 1, Function: 1, Array: 1, Number: 1, Boolean: 1, String: 1, Symbol: 1, BigInt: 1,
    Math: 1, JSON: 1, Reflect: 1, Proxy: 1, Map: 1, Set: 1, WeakMap: 1, WeakSet: 1, RegExp: 1,
    Promise: 1, Iterator: 1, globalThis: 1,
    Error: 1, EvalError: 1, RangeError: 1, ReferenceError: 1, SyntaxError: 1, TypeError: 1,
    URIError: 1, InternalError: 1, AggregateError: 1,
    parseInt: 1, parseFloat: 1, isNaN: 1, isFinite: 1, Infinity: 1, NaN: 1, undefined: 1,
    decodeURI: 1, decodeURIComponent: 1, encodeURI: 1, encodeURIComponent: 1, escape: 1, unescape: 1,
  };
  const globals = ownKeys(G);
  for (let i = 0; i < globals.length; i++) {
    const name = globals[i];
    if (typeof name !== 'string' || KEEP[name] !== 1) delete G[name];
  }
  delete Math.random;

  // 2. No dynamic code: every function constructor throws.
  const noDynamicCode = function Function() {
    throw new TypeErrorCtor('dynamic code evaluation is disabled in contracts');
  };
  defineProperty(noDynamicCode, 'prototype', { value: Function.prototype, writable: false });
  const functionPrototypes = [
    Function.prototype,
    protoOf(function* () {}),
    protoOf(async function () {}),
    protoOf(async function* () {}),
  ];
  for (let i = 0; i < functionPrototypes.length; i++) {
    defineProperty(functionPrototypes[i], 'constructor', { value: noDynamicCode, writable: false, enumerable: false, configurable: false });
  }
  defineProperty(G, 'Function', { value: noDynamicCode, writable: true, enumerable: false, configurable: true });

  // 3. Fatal API errors: the host records the code and interrupts the VM. The host
  // reads what it is given in full, without metering, and keeps MAX_MESSAGE characters
  // of a message: longer text (a huge property name in it) is cut here, in the VM.
  function fatal(code, message) {
    hFail(code, message.length > MAX_MESSAGE ? slice(message, 0, MAX_MESSAGE) : message);
    throw new InternalErrorCtor(code + ': ' + message);
  }

  // The value rules of consensus/encoding/canonical-json.ts: safe integers only,
  // plain objects and arrays, no undefined, at most 64 levels. check() walks the
  // value (so that NaN or undefined fail loudly instead of turning into null, as
  // JSON.stringify would make them); the native JSON.stringify then writes it.
  // Key order does not matter here: the host re-validates what it receives and
  // consensus canonicalises whatever it hashes.
  function check(v, depth, what) {
    if (depth > MAX_DEPTH) fatal('VALUE_NOT_ENCODABLE', what + ' is nested deeper than ' + MAX_DEPTH + ' levels');
    switch (typeof v) {
      case 'string':
      case 'boolean':
        return;
      case 'number':
        if (!isSafeInteger(v)) fatal('VALUE_NOT_ENCODABLE', what + ' contains the number ' + v + '; only safe integers are allowed (no floats, NaN or Infinity)');
        return;
      case 'object': {
        if (v === null) return;
        if (isArray(v)) {
          const n = v.length;
          for (let i = 0; i < n; i++) check(v[i], depth + 1, what);
          return;
        }
        const proto = protoOf(v);
        if (proto !== ObjectProto && proto !== null) {
          fatal('VALUE_NOT_ENCODABLE', what + (proto === PromiseProto
            ? ' is a Promise; contract methods must be synchronous'
            : ' contains an object that is neither a plain object nor an array'));
        }
        const keys = keysOf(v);
        for (let i = 0; i < keys.length; i++) {
          const item = v[keys[i]];
          if (item === undefined) fatal('VALUE_NOT_ENCODABLE', what + ' has the property "' + keys[i] + '" set to undefined');
          check(item, depth + 1, what);
        }
        return;
      }
      case 'undefined':
        return fatal('VALUE_NOT_ENCODABLE', what + ' contains undefined');
      case 'bigint':
        return fatal('VALUE_NOT_ENCODABLE', what + ' contains a BigInt; convert it to a number or a string');
      default:
        return fatal('VALUE_NOT_ENCODABLE', what + ' contains a ' + typeof v);
    }
  }
  function encode(v, what) {
    switch (typeof v) {
      case 'number':
        if (isSafeInteger(v)) return v === 0 ? '0' : '' + v;
        break;
      case 'string':
        return stringify(v);
      case 'boolean':
        return v ? 'true' : 'false';
    }
    if (v === null) return 'null';
    check(v, 0, what);
    const text = stringify(v);
    if (typeof text !== 'string') fatal('VALUE_NOT_ENCODABLE', what + ' has no JSON form');
    return text;
  }

  // 4. The contract API. The call's context lives in these variables; the host
  // restores the whole VM after every call, so nothing here outlives a call.
  let inCall = false;
  let callContract = '';
  let callCaller = '';
  let callHeight = 0;
  let callTime = 0;
  let callReadonly = true;
  let callBlock = null;
  function notInCall(what) {
    throw new TypeErrorCtor(what + ' is only available while a contract method runs, not in top-level code');
  }
  function readonlyViolation(what) {
    fatal('READONLY_VIOLATION', what + ' is not allowed in a read-only call');
  }
  // U+0000 is caught by the host: it passes the key's length along and compares.
  function checkKey(key) {
    if (typeof key !== 'string') fatal('INVALID_KEY', 'state keys must be strings, got ' + typeof key);
    if (key.length === 0 || key.length > 256) fatal('INVALID_KEY', 'state keys must be 1 to 256 bytes long');
    if (!isWellFormed(key)) fatal('INVALID_KEY', 'state keys must be valid Unicode without U+0000');
  }
  // (Checks are written out in each function: a call costs more than a test in QuickJS.)
  const state = freeze({
    get(key) {
      if (!inCall) notInCall('cloister.state.get');
      checkKey(key);
      // The host answers undefined (no value), a number, or JSON text.
      const found = hGet(key, key.length);
      return found === undefined ? null : typeof found === 'number' ? found : parse(found);
    },
    set(key, value) {
      if (!inCall) notInCall('cloister.state.set');
      if (callReadonly) readonlyViolation('cloister.state.set');
      checkKey(key);
      if (value === null) hDel(key, key.length);
      else hSet(key, key.length, encode(value, 'the state value'));
    },
    delete(key) {
      if (!inCall) notInCall('cloister.state.delete');
      if (callReadonly) readonlyViolation('cloister.state.delete');
      checkKey(key);
      hDel(key, key.length);
    },
  });
  const emit = function emit(name, data) {
    if (!inCall) notInCall('cloister.emit');
    if (callReadonly) readonlyViolation('cloister.emit');
    if (typeof name !== 'string') fatal('INVALID_EVENT', 'event names must be strings');
    // (An event name has at most 64 characters: 65 are enough for the host to refuse a longer one.)
    hEmit(name.length > 65 ? slice(name, 0, 65) : name, encode(data === undefined ? null : data, 'the event data'));
  };
  const cloister = freeze({
    get contract() { if (!inCall) notInCall('cloister.contract'); return callContract; },
    get caller() { if (!inCall) notInCall('cloister.caller'); return callCaller; },
    get block() {
      if (!inCall) notInCall('cloister.block');
      if (callBlock === null) callBlock = freeze({ height: callHeight, time: callTime });
      return callBlock;
    },
    get readonly() { if (!inCall) notInCall('cloister.readonly'); return callReadonly; },
    state,
    emit,
  });
  defineProperty(G, 'cloister', { value: cloister, writable: false, enumerable: false, configurable: false });

  // 5. Uncaught exceptions become [code, message].
  function describe(e) {
    let code = 'CONTRACT_ERROR';
    let message;
    try {
      if (e instanceof ErrorCtor) {
        // QuickJS reports these as InternalError, or wraps them (JSON.parse with a reviver).
        message = StringCtor(e.message);
        if (message === 'out of memory') code = 'OUT_OF_MEMORY';
        else if (message === 'stack overflow' || message === 'Maximum call stack size exceeded') code = 'STACK_OVERFLOW';
        else {
          // The contract's line, so that its developer finds the throw (the same on every node: it depends on the code only).
          const stack = e.stack;
          const at = typeof stack === 'string' ? execRegExp(PLACE, stack) : null;
          if (at !== null) message = message + ' (at contract.js:' + at[1] + (at[2] !== undefined ? ':' + at[2] : '') + ')';
        }
      } else {
        message = 'uncaught ' + StringCtor(e);
      }
    } catch (ignored) {
      message = 'uncaught exception (its message could not be read)';
    }
    if (message.length > MAX_MESSAGE) message = slice(message, 0, MAX_MESSAGE) + '...';
    return stringify([code, message]);
  }

  return function bind(ns, methodsJson) {
    const methods = parse(methodsJson);
    for (let i = 0; i < methods.length; i++) {
      if (typeof ns[methods[i]] !== 'function') {
        throw new TypeErrorCtor('contract.js does not export a function "' + methods[i] + '" (listed in manifest.json)');
      }
    }
    // jsonMask: bit i set means argument i arrived as JSON text; -1 means the single
    // argument is the JSON text of the whole argument array. (Strings, numbers,
    // booleans and null arrive as values: JSON.parse is slow in QuickJS.)
    return function entry(method, contract, caller, height, time, readonly, jsonMask, ...args) {
      inCall = true;
      callContract = contract;
      callCaller = caller;
      callHeight = height;
      callTime = time;
      callReadonly = readonly;
      const fn = ns[method];
      if (jsonMask === -1) args = parse(args[0]);
      else if (jsonMask !== 0) {
        for (let i = 0; i < args.length; i++) if ((jsonMask & (1 << i)) !== 0) args[i] = parse(args[i]);
      }
      let result;
      try {
        result = apply(fn, undefined, args);
      } catch (e) {
        return 'E' + describe(e);
      }
      return 'R' + (result === undefined ? 'null' : encode(result, 'the return value'));
    };
  };
})`;
