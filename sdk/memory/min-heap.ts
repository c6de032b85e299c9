/**
 * A binary min-heap ordered by `before(a, b)` (true when `a` must come out first). The memory
 * broker keeps its ready and delayed messages in heaps so that priority, FIFO order and due times
 * cost O(log n) per message instead of a sort or a scan.
 */
export class MinHeap<T> {
  private readonly items: T[] = [];

  constructor(private readonly before: (a: T, b: T) => boolean) {}

  /** How many items it holds. */
  get size(): number {
    return this.items.length;
  }

  /** The first item, left in place. */
  peek(): T | undefined {
    return this.items[0];
  }

  /** Adds an item. */
  push(item: T): void {
    const items = this.items;
    let index = items.length;
    items.push(item);
    while (index > 0) {
      const parent = (index - 1) >> 1;
      const above = items[parent]!;
      if (!this.before(item, above)) break;
      items[index] = above;
      index = parent;
    }
    items[index] = item;
  }

  /** Removes and returns the first item. */
  pop(): T | undefined {
    const items = this.items;
    const top = items[0];
    const last = items.pop();
    if (items.length === 0 || last === undefined) return top;
    let index = 0;
    const length = items.length;
    for (;;) {
      const left = 2 * index + 1;
      if (left >= length) break;
      const right = left + 1;
      const child = right < length && this.before(items[right]!, items[left]!) ? right : left;
      if (!this.before(items[child]!, last)) break;
      items[index] = items[child]!;
      index = child;
    }
    items[index] = last;
    return top;
  }

  /**
   * Removes and returns the item that comes first by another order (`first(a, b)`: true when `a`
   * does), in one scan: a bounded queue drops its oldest message whatever its priority.
   */
  takeFirstBy(first: (a: T, b: T) => boolean): T | undefined {
    const items = this.items;
    if (items.length === 0) return undefined;
    let found = 0;
    for (let i = 1; i < items.length; i++) if (first(items[i]!, items[found]!)) found = i;
    const item = items[found]!;
    const last = items.pop()!;
    if (found === items.length) return item;
    // The last item fills the hole, then moves up or down to where the heap order wants it.
    let index = found;
    while (index > 0 && this.before(last, items[(index - 1) >> 1]!)) {
      items[index] = items[(index - 1) >> 1]!;
      index = (index - 1) >> 1;
    }
    for (;;) {
      const left = 2 * index + 1;
      if (left >= items.length) break;
      const right = left + 1;
      const child = right < items.length && this.before(items[right]!, items[left]!) ? right : left;
      if (!this.before(items[child]!, last)) break;
      items[index] = items[child]!;
      index = child;
    }
    items[index] = last;
    return item;
  }

  /** Removes every item and returns how many there were. */
  clear(): number {
    const count = this.items.length;
    this.items.length = 0;
    return count;
  }
}
