// The part of node:crypto that the receipt verifier (node/proofs) uses, for its
// browser build in the explorer page (scripts/build-explorer.mjs aliases
// node:crypto here): SHA-2 from @noble/hashes, ed25519 and P-384 ECDSA from
// @noble/curves. Anything else throws when called, and the page says what it
// could not check in the browser. Never used by the node itself.
'use strict';
const { sha256, sha384, sha512 } = require('@noble/hashes/sha2.js');
const { ed25519 } = require('@noble/curves/ed25519.js');
const { p384 } = require('@noble/curves/nist.js');
const { Buffer } = require('buffer');

const HASHES = { sha256, sha384, sha512 };
const ED25519_OID = '06032b6570';
const P384_OID = '06052b81040022';

function bytes(data) {
  return typeof data === 'string' ? new TextEncoder().encode(data) : new Uint8Array(data.buffer ? data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) : data);
}

function hashFn(algorithm) {
  const fn = HASHES[String(algorithm).toLowerCase()];
  if (!fn) throw new Error(`hash ${algorithm} is not available in the browser`);
  return fn;
}

function output(digest, encoding) {
  const buffer = Buffer.from(digest);
  return encoding === undefined || encoding === 'buffer' ? buffer : buffer.toString(encoding);
}

function createHash(algorithm) {
  const fn = hashFn(algorithm);
  const parts = [];
  return {
    update(data) {
      parts.push(bytes(data));
      return this;
    },
    digest(encoding) {
      return output(fn(Buffer.concat(parts)), encoding);
    },
  };
}

function hash(algorithm, data, encoding = 'hex') {
  return output(hashFn(algorithm)(bytes(data)), encoding);
}

/** A public key as the verifier uses one: its SPKI DER, its curve and raw point. */
class BrowserPublicKey {
  constructor(spki) {
    const hex = Buffer.from(spki).toString('hex');
    if (hex.includes(ED25519_OID)) {
      this.curve = 'ed25519';
      this.raw = spki.slice(spki.length - 32);
      this.asymmetricKeyType = 'ed25519';
    } else if (hex.includes(P384_OID)) {
      this.curve = 'p384';
      this.raw = spki.slice(spki.length - 97);
      this.asymmetricKeyType = 'ec';
      this.asymmetricKeyDetails = { namedCurve: 'secp384r1' };
    } else {
      throw new Error('only ed25519 and P-384 public keys are available in the browser');
    }
    this.spki = spki;
    this.type = 'public';
  }
  export() {
    return Buffer.from(this.spki);
  }
}

function createPublicKey(input) {
  if (input instanceof BrowserPublicKey) return input;
  const { key, format } = input && typeof input === 'object' && !(input instanceof Uint8Array) ? input : { key: input, format: 'pem' };
  if (format === 'der') return new BrowserPublicKey(bytes(key));
  const pem = String(key);
  const body = pem.replace(/-----(BEGIN|END) PUBLIC KEY-----/g, '').replace(/\s+/g, '');
  return new BrowserPublicKey(new Uint8Array(Buffer.from(body, 'base64')));
}

function verify(algorithm, data, keyInput, signature) {
  const options = keyInput instanceof BrowserPublicKey ? {} : keyInput;
  const key = keyInput instanceof BrowserPublicKey ? keyInput : createPublicKey(keyInput.key);
  if (key.curve === 'ed25519') return ed25519.verify(bytes(signature), bytes(data), key.raw, { zip215: false });
  if (String(algorithm).toLowerCase() !== 'sha384' || options.dsaEncoding !== 'ieee-p1363') throw new Error('only SHA-384 P-384 signatures in IEEE P1363 form are available in the browser');
  return p384.verify(bytes(signature), bytes(data), key.raw, { lowS: false, format: 'compact', prehash: true });
}

function timingSafeEqual(a, b) {
  if (a.length !== b.length) throw new RangeError('Input buffers must have the same byte length');
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a[i] ^ b[i];
  return diff === 0;
}

const available = { createHash, hash, createPublicKey, verify, timingSafeEqual, KeyObject: BrowserPublicKey };
module.exports = new Proxy(available, {
  get(target, name) {
    if (name in target) return target[name];
    if (name === '__esModule' || typeof name === 'symbol') return undefined;
    return function unavailable() {
      throw new Error(`node:crypto ${String(name)} is not available in the browser`);
    };
  },
});
