// analytics: aggregate statistics over records that are never stored.
//
// State holds only aggregates: "stats:<category>" -> { count, sum }, the list of
// categories under "categories", and "contributor:<account>" -> true to count
// distinct contributors (under "contributors"). Individual values are added to
// the sum and forgotten, and no method reveals who contributed what.
//
// Bounds keep every number a safe integer: |value| <= 1e9 and at most 1e6
// records per category, so |sum| <= 1e15 < 2^53. Means are computed with
// BigInt, never with floats (floats are not canonical JSON and are not
// guaranteed to round identically everywhere).

const CATEGORY_RE = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const MAX_CATEGORIES = 256;
const MAX_ABS_VALUE = 1_000_000_000;
const MAX_RECORDS_PER_CATEGORY = 1_000_000;
const CATEGORIES_KEY = 'categories';
const CONTRIBUTORS_KEY = 'contributors';

function statsKey(category) {
  return 'stats:' + category;
}

function requireCategory(category) {
  if (typeof category !== 'string' || !CATEGORY_RE.test(category)) {
    throw new Error('category must be 1-64 characters of a-z, 0-9, _ and -, starting with a letter or digit');
  }
  return category;
}

// sum / count with two decimals, rounded half away from zero, in integer arithmetic.
function mean(sum, count) {
  if (count === 0) return null;
  const negative = sum < 0;
  const abs = BigInt(negative ? -sum : sum);
  const n = BigInt(count);
  const hundredths = (abs * 200n + n) / (2n * n);
  const whole = hundredths / 100n;
  const cents = hundredths % 100n;
  const text = whole.toString() + '.' + (cents < 10n ? '0' : '') + cents.toString();
  return negative && hundredths !== 0n ? '-' + text : text;
}

function read(category) {
  return cloister.state.get(statsKey(category)) ?? { count: 0, sum: 0 };
}

export function submit(category, value) {
  requireCategory(category);
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || Math.abs(value) > MAX_ABS_VALUE) {
    throw new Error('value must be an integer from -1,000,000,000 to 1,000,000,000');
  }
  const current = read(category);
  if (current.count === 0) {
    const names = cloister.state.get(CATEGORIES_KEY) ?? [];
    if (names.length >= MAX_CATEGORIES) throw new Error('at most ' + MAX_CATEGORIES + ' categories');
    names.push(category);
    names.sort();
    cloister.state.set(CATEGORIES_KEY, names);
  }
  if (current.count >= MAX_RECORDS_PER_CATEGORY) throw new Error('category ' + category + ' is full');
  cloister.state.set(statsKey(category), { count: current.count + 1, sum: current.sum + value });

  const contributorKey = 'contributor:' + cloister.caller;
  if (cloister.state.get(contributorKey) === null) {
    cloister.state.set(contributorKey, true);
    cloister.state.set(CONTRIBUTORS_KEY, (cloister.state.get(CONTRIBUTORS_KEY) ?? 0) + 1);
  }
  // The event names the category only: not the value, not the submitter.
  cloister.emit('Submitted', { category });
  return null;
}

export function stats(category) {
  requireCategory(category);
  const { count, sum } = read(category);
  return { category, count, sum, mean: mean(sum, count) };
}

export function categories() {
  const names = cloister.state.get(CATEGORIES_KEY) ?? [];
  return names.map((category) => {
    const { count, sum } = read(category);
    return { category, count, mean: mean(sum, count) };
  });
}

export function contributors() {
  return cloister.state.get(CONTRIBUTORS_KEY) ?? 0;
}
