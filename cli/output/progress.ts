/**
 * A one-line progress display for long commands (big enqueues, waiting for a result, replaying
 * dead letters). It draws only when the stream is a TTY, so scripts and pipes see nothing of it.
 */
export class TtyProgress {
  private readonly enabled: boolean;
  private drawn = false;

  constructor(
    private readonly stream: NodeJS.WritableStream,
    private readonly label: string,
  ) {
    this.enabled = Boolean((stream as { isTTY?: boolean }).isTTY);
  }

  /** Replaces the line with `label: text`. */
  update(text: string): void {
    if (!this.enabled) return;
    this.stream.write(`\r\x1b[2K${this.label}: ${text}`);
    this.drawn = true;
  }

  /** Clears the line. */
  done(): void {
    if (this.enabled && this.drawn) this.stream.write('\r\x1b[2K');
    this.drawn = false;
  }
}
