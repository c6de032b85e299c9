/**
 * Control characters (C0, DEL, C1), line and paragraph separators, and bidi overrides: printed
 * raw, a name holding them could move the cursor, recolour the terminal or forge a log line.
 */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/**
 * Makes a name (task, queue, channel, worker) or a message safe to print on a terminal or in a
 * line-based log: each unsafe character becomes a visible escape (`\n`, `\x1b`, `\u2028`), so
 * one event stays one line and what is shown is what is stored.
 */
export function printable(text: string): string {
  return text.replace(UNSAFE, (char) => {
    switch (char) {
      case '\n':
        return '\\n';
      case '\r':
        return '\\r';
      case '\t':
        return '\\t';
      default: {
        const code = char.charCodeAt(0);
        return code < 0x100 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
      }
    }
  });
}
