/**
 * Adversarial contract workloads: each does unbounded native work inside built-ins
 * or operators, the kind that used to cost one interpreter poll point however large
 * its input. The gas benchmark (scripts/bench/gas.ts) runs each at the maximum gas
 * limit; the sandbox tests (test/unit/contracts/gas-builtins.test.ts) check that
 * each is charged by input size, deterministically.
 *
 * All shapes live in one bundle with a single read-only method `run(name, n, times)`
 * that calls shape `name` with input size `n`, `times` times. The inputs are built by
 * the module's top-level code (within the set-up gas) and are part of the memory
 * image every call starts from, so a call's gas is the shape's own work.
 */

export interface GasShape {
  name: string;
  /** What it exercises. */
  what: string;
  /** Body of `function (n)`: `n` scales the input. */
  body: string;
  /** An input size that runs well within the gas limit (so does twice that). */
  small: number;
  /** An input size that needs far more than `limit` gas. */
  big: number;
  /** A gas limit (at most the maximum) that `big` exceeds. */
  limit: number;
}

/** Top-level code: the inputs. Doubling builds long strings cheaply (repeat() costs steps per character). */
const INPUTS = String.raw`
function text(unit, length) { let s = unit; while (s.length < length) s += s; return s.slice(0, length); }
const HAY = text('a', 1 << 20);
const NEEDLE = text('a', 1000) + 'b';
const MARKS = 'a' + text('\u0301\u0316', 1 << 17);
const BIG = 7n ** 20000n;
const NUMS = Array.from({ length: 1 << 16 }, (_, i) => (i * 7919) % 65536);
const LONG_A = text('x', 1 << 22) + 'a';
const LONG_B = text('x', 1 << 22) + 'b';
const ITEM = '{"k":12345,"s":"abc"},';
const JSON_TEXT = '[' + ITEM.repeat(1 << 14);
const DOC = JSON.parse(JSON_TEXT + '0]');
const KEY = text('k', 1 << 22);
function lcg(x) { return (x * 1103515245 + 12345) % 2147483648; }
`;

export const GAS_SHAPES: readonly GasShape[] = [
  { name: 'indexOf', what: 'String indexOf, long haystack and needle', body: 'return HAY.slice(0, n).indexOf(NEEDLE);', small: 2000, big: 1 << 20, limit: 2_000_000 },
  { name: 'includes', what: 'String includes', body: 'return HAY.slice(0, n).includes(NEEDLE);', small: 2000, big: 1 << 20, limit: 2_000_000 },
  { name: 'lastIndexOf', what: 'String lastIndexOf', body: 'return HAY.slice(0, n).lastIndexOf(NEEDLE);', small: 2000, big: 1 << 20, limit: 2_000_000 },
  { name: 'split', what: 'String split by a long separator', body: 'return HAY.slice(0, n).split(NEEDLE).length;', small: 2000, big: 1 << 20, limit: 2_000_000 },
  { name: 'replace', what: 'String replace of a long pattern', body: "return HAY.slice(0, n).replace(NEEDLE, 'x').length;", small: 2000, big: 1 << 20, limit: 2_000_000 },
  { name: 'normalize', what: 'normalize of a long run of combining marks', body: "return MARKS.slice(0, n).normalize('NFD').length;", small: 500, big: 1 << 17, limit: 2_000_000 },
  { name: 'bigMul', what: 'BigInt * of 56,000-bit values', body: 'const x = BigInt.asUintN(n, BIG); return Number((x * x) & 1n);', small: 4000, big: 56_000, limit: 1_000_000 },
  { name: 'bigPow', what: 'BigInt ** with a huge exponent', body: 'return Number((3n ** BigInt(n)) & 1n);', small: 4000, big: 10_000_000, limit: 2_000_000 },
  {
    name: 'bigDiv',
    what: 'BigInt / of 56,000 by 28,000 bits',
    body: 'const x = BigInt.asUintN(2 * n, BIG); const y = BigInt.asUintN(n, BIG) | 1n; return Number((x / y) & 1n);',
    small: 4000,
    big: 28_000,
    limit: 500_000,
  },
  { name: 'sort', what: 'Array sort without comparator (string comparison)', body: 'return NUMS.slice(0, n).sort()[0];', small: 1000, big: 1 << 16, limit: 2_000_000 },
  { name: 'sortWithComparator', what: 'Array sort with a comparator', body: 'return NUMS.slice(0, n).sort((a, b) => a - b)[0];', small: 1000, big: 1 << 16, limit: 2_000_000 },
  { name: 'stringify', what: 'JSON.stringify of 16,384 objects', body: 'return JSON.stringify(DOC.slice(0, n)).length;', small: 1000, big: 1 << 14, limit: 2_000_000 },
  { name: 'parse', what: 'JSON.parse of 360 KB', body: "return JSON.parse(JSON_TEXT.slice(0, 1 + n * ITEM.length) + '0]').length;", small: 1000, big: 1 << 14, limit: 2_000_000 },
  { name: 'concat', what: 'concatenating and flattening MiB strings', body: 'const s = HAY.slice(0, n); return (s + s + s + s).slice(1).length;', small: 1 << 16, big: 1 << 20, limit: 100_000 },
  { name: 'compare', what: '=== of two 4 MiB strings (copies)', body: 'return LONG_A.slice(0, n) === LONG_B.slice(0, n) && n < 0;', small: 1 << 16, big: 1 << 22, limit: 2_000_000 },
  { name: 'compareWhole', what: '< of two 4 MiB strings, one operator', body: 'return n > 0 && LONG_A < LONG_B;', small: 0, big: 1, limit: 2_000_000 },
  { name: 'regexp', what: 'regexp backtracking /(a+)+b/', body: "return /(a+)+b/.test('a'.repeat(n) + 'c');", small: 10, big: 40, limit: 2_000_000 },
  { name: 'arrayIndexOf', what: 'Array indexOf over 65,536 elements', body: 'return NUMS.slice(0, n).indexOf(-1);', small: 4000, big: 1 << 16, limit: 500_000 },
  { name: 'hugeKey', what: 'property with a 4 MiB string key', body: 'const o = {}; o[KEY.slice(0, n)] = 1; return Object.keys(o).length;', small: 1 << 16, big: 1 << 22, limit: 1_000_000 },
  {
    name: 'gcPressure',
    what: 'allocation and garbage collection',
    body: 'let keep = []; for (let i = 0; i < n; i++) { keep.push({ a: [i] }); if (keep.length > 1000) keep = []; } return keep.length;',
    small: 1000,
    big: 1_000_000,
    limit: 2_000_000,
  },
  {
    name: 'objectGraph',
    what: 'garbage collection over a random object graph',
    body:
      'const nodes = []; let x = 1; for (let i = 0; i < n; i++) nodes.push({ a: null, b: null }); ' +
      'for (let i = 0; i < n; i++) { x = lcg(x); nodes[i].a = nodes[x % n]; nodes[i].b = nodes[(x >> 7) % n]; } ' +
      'let g = 0; for (let i = 0; i < 20 * n; i++) g += [i].length; return g;',
    small: 2000,
    big: 150_000,
    limit: 2_000_000,
  },
  {
    name: 'mapRandom',
    what: 'Map lookups spread over a large table',
    body: 'const m = new Map(); for (let i = 0; i < n; i++) m.set(i * 2654435761 % 4294967296, i); let x = 7, s = 0; for (let i = 0; i < 10 * n; i++) { x = lcg(x); s += m.get((x % n) * 2654435761 % 4294967296); } return s;',
    small: 1000,
    big: 300_000,
    limit: 2_000_000,
  },
  {
    name: 'allocationFailures',
    what: 'catching failed 256 MiB allocations',
    body: "let caught = 0; for (let i = 0; i < n; i++) { try { 'x'.repeat(1 << 28); } catch (e) { caught++; } } return caught;",
    small: 10,
    big: 1_000_000,
    limit: 2_000_000,
  },
  { name: 'loop', what: 'plain interpreted loop (reference)', body: 'let s = 0; for (let i = 0; i < n; i++) s += i; return s;', small: 1000, big: 100_000_000, limit: 2_000_000 },
];

/** The shapes bundle's contract.js. */
export function gasShapesCode(): string {
  const functions = GAS_SHAPES.map((s) => `function ${s.name}(n) { ${s.body} }`).join('\n');
  return `${INPUTS}
${functions}
const SHAPES = { ${GAS_SHAPES.map((s) => s.name).join(', ')} };
export function run(name, n, times) {
  const shape = SHAPES[name];
  let result = null;
  for (let i = 0; i < times; i++) result = shape(n);
  return result;
}
`;
}

/** The shapes bundle's manifest (its name is `gas_shapes`). */
export const GAS_SHAPES_MANIFEST = {
  name: 'gas_shapes',
  version: '1.0.0',
  methods: { run: { readonly: true, description: 'runs shape `name` on input size `n`, `times` times' } },
};
