import type { Redis } from 'ioredis';
import type { RedisConnection } from './redis-connection.js';

/**
 * A connection a consumer blocks on (XREADGROUP/XREAD … BLOCK), with what it takes to end a wait
 * early: its CLIENT ID, and a connection to the same server to send CLIENT UNBLOCK on. On one
 * server (or a sentinel-watched master) that is the command connection; on a cluster a line is
 * opened to the master of one hash slot (a blocking command may only name keys of one slot), and
 * the cluster client's own connection to that node unblocks it.
 */
export class BlockingLine {
  private id: number | undefined;
  private broken = false;

  private constructor(
    private readonly connection: RedisConnection,
    /** The blocking connection. */
    readonly client: Redis,
    /** The cluster node (`host:port`) it is connected to; '' off a cluster. */
    readonly node: string,
  ) {}

  /** Opens the line of one server, or (given `slot`) of the master that serves `slot` on a cluster. */
  static async open(connection: RedisConnection, role: string, slot?: number): Promise<BlockingLine> {
    let line: BlockingLine;
    if (slot === undefined) {
      line = new BlockingLine(connection, (await connection.duplicate(role)) as Redis, '');
      // after a reconnect (a failover, a restart) the connection has a new id
      line.client.on('ready', () => void line.identify());
    } else {
      const { client, node } = await connection.slotDuplicate(slot, role);
      line = new BlockingLine(connection, client, node);
      client.on('close', () => {
        line.broken = true;
      });
    }
    await line.identify();
    return line;
  }

  /** True once the line knows its CLIENT ID (a wait on it can be ended early). */
  get identified(): boolean {
    return this.id !== undefined;
  }

  /** False once a cluster line lost its node, or its slot moved to another master: open a new one. */
  usableFor(slot: number | undefined): boolean {
    if (slot === undefined) return true;
    return !this.broken && this.connection.slotOwner(slot) === this.node;
  }

  /** Ends the blocking command under way on this line, if any (CLIENT UNBLOCK from another connection). */
  unblock(): void {
    if (this.id === undefined) return;
    const unblocker = this.node === '' ? this.connection.client : this.connection.nodeClient(this.node);
    unblocker?.client('UNBLOCK', this.id).catch(() => undefined);
  }

  /** Closes the connection. */
  close(): void {
    this.broken = true;
    this.connection.closeDuplicate(this.client);
  }

  private async identify(): Promise<void> {
    try {
      this.id = (await this.client.client('ID')) as number;
    } catch {
      this.id = undefined;
    }
  }
}
