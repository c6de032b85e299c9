import type { TaskGlob } from './task-glob.js';

/** One glob in the index, with what it stands for and its place in file order. */
interface Indexed<T> {
  glob: TaskGlob;
  /** The characters after its last wildcard: a glob it covers must end with them. */
  suffix: string;
  value: T;
  order: number;
}

/** A node of the trie over the characters before a glob's first wildcard. */
interface PrefixNode<T> {
  children: Map<string, PrefixNode<T>>;
  here: Array<Indexed<T>>;
}

const WILDCARD = /[*?]/;

/**
 * Finds, among the globs added so far, the ones that cover a given glob (take every task it
 * matches), without comparing it with each of them. A glob can cover another only when its
 * characters before its first wildcard begin the other and its characters after its last wildcard
 * end it (a literal character matches only itself), so candidates are read off a trie of those
 * prefixes and filtered by suffix before the exact `covers` test. For the globs of a routing file
 * (`reports.*`, `billing.email-*`, literal names) that is a few candidates each, which keeps
 * checking a file of thousands of queues linear in its size instead of quadratic.
 */
export class GlobIndex<T> {
  private readonly root: PrefixNode<T> = { children: new Map(), here: [] };
  private added = 0;

  /** Adds a glob; later `coverersOf` calls find it. */
  add(glob: TaskGlob, value: T): void {
    const source = glob.source;
    const first = source.search(WILDCARD);
    const prefix = first === -1 ? source : source.slice(0, first);
    let node = this.root;
    for (const char of prefix) {
      let next = node.children.get(char);
      if (next === undefined) {
        next = { children: new Map(), here: [] };
        node.children.set(char, next);
      }
      node = next;
    }
    const last = Math.max(source.lastIndexOf('*'), source.lastIndexOf('?'));
    node.here.push({ glob, suffix: first === -1 ? '' : source.slice(last + 1), value, order: this.added++ });
  }

  /** The values of the added globs that cover `glob`, in the order they were added. */
  coverersOf(glob: TaskGlob): T[] {
    const inner = glob.source;
    const found: Array<Indexed<T>> = [];
    let node: PrefixNode<T> | undefined = this.root;
    let i = 0;
    const chars = [...inner];
    while (node !== undefined) {
      for (const entry of node.here) if (inner.endsWith(entry.suffix) && entry.glob.covers(glob)) found.push(entry);
      // A literal character of a covering glob matches only the same literal character.
      const char = chars[i++];
      if (char === undefined || char === '*' || char === '?') break;
      node = node.children.get(char);
    }
    return found.sort((a, b) => a.order - b.order).map((entry) => entry.value);
  }
}
