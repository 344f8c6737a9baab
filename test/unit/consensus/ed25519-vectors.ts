/**
 * ed25519 test vectors for the signature rule (consensus/crypto/ed25519-key-rule.ts).
 *
 * RFC 8032 section 7.1, TEST 1-3: seed, public key, message, signature.
 *
 * "Taming the many EdDSAs" (Chalkias, Garillot, Nikolaenko, SSR 2020), the 12
 * edge-case vectors of https://github.com/novifinancial/ed25519-speccheck
 * (cases.json, Apache-2.0), in its order. `openssl` is what node:crypto alone
 * answers on Node 20 and 22 (S < L and R compared as bytes, but small-order and
 * non-canonical keys accepted; Node 24 refuses small-order keys, small-order R
 * and non-canonical keys itself); `cloister` is our verdict, `why` the rule that
 * decides it. Notation: A the public key, R and S the two halves of the
 * signature, L the group order; "mixed" = a torsion component but not of small
 * order.
 */

export interface Rfc8032Vector {
  name: string;
  seed: string;
  publicKey: string;
  message: string;
  signature: string;
}

export const RFC8032_VECTORS: readonly Rfc8032Vector[] = [
  {
    name: 'TEST 1 (empty message)',
    seed: '9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60',
    publicKey: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a',
    message: '',
    signature:
      'e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b',
  },
  {
    name: 'TEST 2 (one byte)',
    seed: '4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb',
    publicKey: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c',
    message: '72',
    signature:
      '92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00',
  },
  {
    name: 'TEST 3 (two bytes)',
    seed: 'c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7',
    publicKey: 'fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025',
    message: 'af82',
    signature:
      '6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a',
  },
];

export type EdgeCaseReason =
  | 'accepted: A and R mixed, and the cofactorless equation holds'
  | 'A is of small order'
  | 'R is of small order'
  | 'the cofactorless equation fails (only cofactored verification accepts it)'
  | 'S >= L'
  | 'R is a non-canonical encoding'
  | 'A is a non-canonical encoding';

export interface EdgeCaseVector {
  index: number;
  message: string;
  publicKey: string;
  /** R (32 bytes) then S (32 bytes, little-endian). */
  signature: string;
  openssl: boolean;
  cloister: boolean;
  why: EdgeCaseReason;
}

const SMALL_A = 'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa';
const MIXED_A1 = 'f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43';
const MIXED_A2 = 'cdb267ce40c5cd45306fa5d2f29731459387dbf9eb933b7bd5aed9a765b88d4d';
const PRIME_A = '442aad9f089ad9e14647b1ef9099a1ff4798d78589e66f28eca69c11f582a623';
/** The order-2 point (0, -1) with the sign bit set although x = 0: small order and non-canonical. */
const NON_CANONICAL_A = 'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff';

export const EDGE_CASE_VECTORS: readonly EdgeCaseVector[] = [
  {
    index: 0,
    message: '8c93255d71dcab10e8f379c26200f3c7bd5f09d9bc3068d3ef4edeb4853022b6',
    publicKey: SMALL_A,
    signature:
      'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a0000000000000000000000000000000000000000000000000000000000000000',
    openssl: true,
    cloister: false,
    why: 'A is of small order',
  },
  {
    index: 1,
    message: '9bd9f44f4dcc75bd531b56b2cd280b0bb38fc1cd6d1230e14861d861de092e79',
    publicKey: SMALL_A,
    signature:
      'f7badec5b8abeaf699583992219b7b223f1df3fbbea919844e3f7c554a43dd43a5bb704786be79fc476f91d3f3f89b03984d8068dcf1bb7dfc6637b45450ac04',
    openssl: true,
    cloister: false,
    why: 'A is of small order',
  },
  {
    index: 2,
    message: 'aebf3f2601a0c8c5d39cc7d8911642f740b78168218da8471772b35f9d35b9ab',
    publicKey: MIXED_A1,
    signature:
      'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac03fa8c4bd45aecaca5b24fb97bc10ac27ac8751a7dfe1baff8b953ec9f5833ca260e',
    openssl: true,
    cloister: false,
    why: 'R is of small order',
  },
  {
    index: 3,
    message: '9bd9f44f4dcc75bd531b56b2cd280b0bb38fc1cd6d1230e14861d861de092e79',
    publicKey: MIXED_A2,
    signature:
      '9046a64750444938de19f227bb80485e92b83fdb4b6506c160484c016cc1852f87909e14428a7a1d62e9f22f3d3ad7802db02eb2e688b6c52fcd6648a98bd009',
    openssl: true,
    cloister: true,
    why: 'accepted: A and R mixed, and the cofactorless equation holds',
  },
  {
    index: 4,
    message: 'e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec4011eaccd55b53f56c',
    publicKey: MIXED_A2,
    signature:
      '160a1cb0dc9c0258cd0a7d23e94d8fa878bcb1925f2c64246b2dee1796bed5125ec6bc982a269b723e0668e540911a9a6a58921d6925e434ab10aa7940551a09',
    openssl: false,
    cloister: false,
    why: 'the cofactorless equation fails (only cofactored verification accepts it)',
  },
  {
    index: 5,
    message: 'e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec4011eaccd55b53f56c',
    publicKey: MIXED_A2,
    signature:
      '21122a84e0b5fca4052f5b1235c80a537878b38f3142356b2c2384ebad4668b7e40bc836dac0f71076f9abe3a53f9c03c1ceeeddb658d0030494ace586687405',
    openssl: false,
    cloister: false,
    why: 'the cofactorless equation fails (only cofactored verification accepts it)',
  },
  {
    index: 6,
    message: '85e241a07d148b41e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec40',
    publicKey: PRIME_A,
    signature:
      'e96f66be976d82e60150baecff9906684aebb1ef181f67a7189ac78ea23b6c0e547f7690a0e2ddcd04d87dbc3490dc19b3b3052f7ff0538cb68afb369ba3a514',
    openssl: false,
    cloister: false,
    why: 'S >= L',
  },
  {
    index: 7,
    message: '85e241a07d148b41e47d62c63f830dc7a6851a0b1f33ae4bb2f507fb6cffec40',
    publicKey: PRIME_A,
    signature:
      '8ce5b96c8f26d0ab6c47958c9e68b937104cd36e13c33566acd2fe8d38aa19427e71f98a473474f2f13f06f97c20d58cc3f54b8bd0d272f42b695dd7e89a8c22',
    openssl: false,
    cloister: false,
    why: 'S >= L',
  },
  {
    index: 8,
    message: '9bedc267423725d473888631ebf45988bad3db83851ee85c85e241a07d148b41',
    publicKey: MIXED_A1,
    signature:
      'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff03be9678ac102edcd92b0210bb34d7428d12ffc5df5f37e359941266a4e35f0f',
    openssl: false,
    cloister: false,
    why: 'R is a non-canonical encoding',
  },
  {
    index: 9,
    message: '9bedc267423725d473888631ebf45988bad3db83851ee85c85e241a07d148b41',
    publicKey: MIXED_A1,
    signature:
      'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffca8c5b64cd208982aa38d4936621a4775aa233aa0505711d8fdcfdaa943d4908',
    openssl: false,
    cloister: false,
    why: 'R is a non-canonical encoding',
  },
  {
    index: 10,
    message: 'e96b7021eb39c1a163b6da4e3093dcd3f21387da4cc4572be588fafae23c155b',
    publicKey: NON_CANONICAL_A,
    signature:
      'a9d55260f765261eb9b84e106f665e00b867287a761990d7135963ee0a7d59dca5bb704786be79fc476f91d3f3f89b03984d8068dcf1bb7dfc6637b45450ac04',
    openssl: false,
    cloister: false,
    why: 'A is a non-canonical encoding',
  },
  {
    index: 11,
    message: '39a591f5321bbe07fd5a23dc2f39d025d74526615746727ceefd6e82ae65c06f',
    publicKey: NON_CANONICAL_A,
    signature:
      'a9d55260f765261eb9b84e106f665e00b867287a761990d7135963ee0a7d59dca5bb704786be79fc476f91d3f3f89b03984d8068dcf1bb7dfc6637b45450ac04',
    openssl: true,
    cloister: false,
    why: 'A is a non-canonical encoding',
  },
];
