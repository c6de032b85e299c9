/**
 * A glob over task names: `*` stands for any run of characters (dots included, so `reports.*`
 * takes `reports.weekly.pdf`), `?` for exactly one, everything else for itself.
 */
export class TaskGlob {
  private readonly pattern: RegExp;

  constructor(readonly source: string) {
    const body = [...source]
      .map((char) => (char === '*' ? '.*' : char === '?' ? '.' : char.replace(/[.+^${}()|[\]\\/-]/g, '\\$&')))
      .join('');
    this.pattern = new RegExp(`^${body}$`, 's');
  }

  /** True when `taskName` matches this glob. */
  matches(taskName: string): boolean {
    return this.pattern.test(taskName);
  }

  /** True when this glob has no wildcard: it names exactly one task. */
  get isLiteral(): boolean {
    return !/[*?]/.test(this.source);
  }

  /**
   * True when every task name `other` matches is also matched by this glob, so a rule with
   * `other` placed after a rule with this glob can never be the first match. Sound, not complete:
   * it may answer false for some exotic pairs that do cover each other, never true wrongly.
   */
  covers(other: TaskGlob): boolean {
    const outer = [...this.source];
    const inner = [...other.source];
    const memo = new Map<number, boolean>();
    const coversFrom = (i: number, j: number): boolean => {
      const slot = i * (inner.length + 1) + j;
      const known = memo.get(slot);
      if (known !== undefined) return known;
      let answer: boolean;
      if (i === outer.length) answer = j === inner.length;
      else if (outer[i] === '*') answer = coversFrom(i + 1, j) || (j < inner.length && coversFrom(i, j + 1));
      else if (j === inner.length || inner[j] === '*') answer = false;
      else if (outer[i] === '?') answer = coversFrom(i + 1, j + 1);
      else answer = inner[j] === outer[i] && coversFrom(i + 1, j + 1);
      memo.set(slot, answer);
      return answer;
    };
    return coversFrom(0, 0);
  }

  /** The glob as written. */
  toString(): string {
    return this.source;
  }
}
