import { ConfigError } from './errors.js';

/**
 * Every key of an options interface, each set to `true`. Declare a factory's list as
 * `{ url: true, … } satisfies OptionKeys<XOptions>`: an option added to the interface and not to
 * the list (or listed and not in the interface) then fails the typecheck.
 */
export type OptionKeys<T> = { readonly [K in keyof T]-?: true };

/**
 * Throws ConfigError when `options` holds a key `known` does not list: a misspelt option would
 * otherwise be ignored and its default used without a word. `factory` names the caller in the
 * message (`postgres()`), which suggests the closest known key. Anything but a plain object is left
 * to the factory's own checks. Exported from `stem` for third-party plugin factories.
 *
 * @example
 * const KEYS = { url: true, batchSize: true } as const satisfies OptionKeys<MyBrokerOptions>;
 * export function myBroker(options: MyBrokerOptions = {}): StemPlugin {
 *   assertKnownOptions('myBroker()', options, KEYS); // myBroker(): unknown option "batchsize" (did you mean "batchSize"?); …
 *   …
 * }
 */
export function assertKnownOptions(factory: string, options: unknown, known: Readonly<Record<string, true>>): void {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) return;
  const unknown = Object.keys(options).filter((key) => !Object.hasOwn(known, key));
  if (unknown.length === 0) return;
  const names = Object.keys(known);
  const described = unknown.map((key) => {
    const near = closestKey(key, names);
    return near === undefined ? JSON.stringify(key) : `${JSON.stringify(key)} (did you mean "${near}"?)`;
  });
  const list = names.length === 0 ? 'it takes none' : `known options: ${names.join(', ')}`;
  throw new ConfigError(`${factory}: unknown option${unknown.length > 1 ? 's' : ''} ${described.join(', ')}; ${list}`);
}

/** The known key nearest `key`: the same but for case, a few edits away for its length, or one that contains it. */
function closestKey(key: string, names: readonly string[]): string | undefined {
  const lower = key.toLowerCase();
  const sameLetters = names.find((name) => name.toLowerCase() === lower);
  if (sameLetters !== undefined) return sameLetters;
  const limit = Math.max(1, Math.floor(key.length / 3));
  let best: string | undefined;
  let bestDistance = limit + 1;
  for (const name of names) {
    const distance = editDistance(lower, name.toLowerCase());
    if (distance < bestDistance) {
      best = name;
      bestDistance = distance;
    }
  }
  if (best !== undefined || lower.length < 4) return best;
  // Part of a longer name: `prefix` for `keyPrefix`, `timeout` for `connectTimeoutMs`.
  return names.find((name) => name.toLowerCase().includes(lower));
}

/** Edits (insert, delete, substitute, swap two neighbours) that turn `a` into `b`: "shcema" is 1 from "schema". */
function editDistance(a: string, b: string): number {
  // Three rows of the optimal-string-alignment table: two back for the swap.
  let before = new Array<number>(b.length + 1).fill(0);
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  let current = new Array<number>(b.length + 1).fill(0);
  for (let i = 1; i <= a.length; i++) {
    current[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let value = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) value = Math.min(value, before[j - 2]! + 1);
      current[j] = value;
    }
    [before, previous, current] = [previous, current, before];
  }
  return previous[b.length]!;
}
