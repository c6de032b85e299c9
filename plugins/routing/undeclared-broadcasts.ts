import type { RoutingTable } from './routing-table.js';

/** The warning type of routing's process warnings, for `process.on('warning')` listeners. */
export const ROUTING_WARNING = 'StemRoutingWarning';

/**
 * Warns, once per channel, when a producer publishes on or a worker subscribes to a broadcast
 * channel the routing file does not declare: most often a typo, and then the broadcast reaches no
 * worker (it waits, queued, for a subscriber that never comes) or the worker waits on a channel
 * nothing is sent to. A warning, not an error: channels may be used without being declared.
 */
export class UndeclaredBroadcasts {
  private readonly declared: ReadonlySet<string>;
  private readonly warned = new Set<string>();

  constructor(private readonly table: RoutingTable) {
    this.declared = new Set(table.broadcastChannels);
  }

  /** A producer publishes on `channel`. */
  published(channel: string): void {
    if (!this.firstUndeclared(`publish ${channel}`, channel)) return;
    process.emitWarning(
      `routing: broadcast://${channel} is not a channel ${this.table.source} declares (${this.declaredList()}); ` +
        `workers subscribe only to declared channels unless given --broadcasts, so it may reach no worker: fix the name or ` +
        `declare it under broadcasts`,
      ROUTING_WARNING,
    );
  }

  /** A worker subscribes to `channels` it was given explicitly. */
  subscribed(channels: readonly string[]): void {
    for (const channel of channels) {
      if (!this.firstUndeclared(`subscribe ${channel}`, channel)) continue;
      process.emitWarning(
        `routing: the worker subscribes to broadcast channel "${channel}", which ${this.table.source} does not declare ` +
          `(${this.declaredList()}); ` +
          `no route sends to it: fix the name (--broadcasts, STEM_WORKER_BROADCASTS or worker.broadcasts) or declare it under broadcasts`,
        ROUTING_WARNING,
      );
    }
  }

  private firstUndeclared(key: string, channel: string): boolean {
    if (this.declared.has(channel) || this.warned.has(key)) return false;
    this.warned.add(key);
    return true;
  }

  private declaredList(): string {
    const names = [...this.declared];
    if (names.length === 0) return 'it declares none';
    return `declared: ${names.slice(0, 8).join(', ')}${names.length > 8 ? ', …' : ''}`;
  }
}
