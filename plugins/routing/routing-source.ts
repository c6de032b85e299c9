import type { LineCounter, Node } from 'yaml';
import { ConfigError } from '../../sdk/errors.js';

/**
 * Where a routing config came from (a file, or "routing config" for an object given in code), and
 * how to turn a parsed node into `file:line:column` for error messages.
 */
export class RoutingSource {
  constructor(
    /** The file as the user named it, or a label for an in-code config. */
    readonly name: string,
    private readonly lines?: LineCounter,
  ) {}

  /** `file:line:column` of a node; just the name when the config has no positions. */
  where(node: Node | null | undefined): string {
    const offset = node?.range?.[0];
    if (this.lines === undefined || offset === undefined) return this.name;
    const { line, col } = this.lines.linePos(offset);
    return `${this.name}:${line}:${col}`;
  }

  /** `file:line:column` of a character offset in the source. */
  whereOffset(offset: number): string {
    if (this.lines === undefined) return this.name;
    const { line, col } = this.lines.linePos(offset);
    return `${this.name}:${line}:${col}`;
  }

  /** The 1-based line of a node, when known. */
  line(node: Node | null | undefined): number | undefined {
    const offset = node?.range?.[0];
    return this.lines === undefined || offset === undefined ? undefined : this.lines.linePos(offset).line;
  }

  /** A ConfigError reading `file:line:column: key: message`. */
  error(node: Node | null | undefined, key: string, message: string): ConfigError {
    return new ConfigError(`${this.where(node)}: ${key}: ${message}`);
  }
}
