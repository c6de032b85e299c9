import { Option } from 'clipanion';
import type { Stem } from '../../../sdk/kernel.js';
import type { ControlClient, ControlReply } from '../../../plugins/control/index.js';
import type { ConfigOverrides } from '../../config/index.js';
import { ServiceCommand } from '../../service-command.js';

/**
 * The base of `stem worker ping|stats|inspect|revoke|pause|resume|shutdown|rate-limit`: sends one
 * control request to the live workers of the control namespace (`-w` to pick some) and gathers
 * their replies for `--timeout`.
 */
export abstract class WorkerControlCommand extends ServiceCommand {
  /** Only these workers (ids or host names). */
  workers = Option.Array('--worker,-w', { description: 'Only this worker (id or host name); repeat for several' });
  /** How long replies are collected. */
  timeout = Option.String('--timeout', '1s', { description: 'How long to wait for replies (default 1s)' });
  /** The revoke store URL (beats STEM_REVOKE_STORE_URL). */
  revokeStore = Option.String('--revoke-store', {
    description: 'Revoke store URL, where revokes and pauses persist (default: STEM_REVOKE_STORE_URL)',
  });
  /** Print JSON. */
  json = Option.Boolean('--json', false, { description: 'Print JSON' });

  /** Creates a Stem with this command's flags, runs `body` with a control client, and closes it. */
  protected withControl<T>(body: (client: ControlClient, stem: Stem) => Promise<T>): Promise<T> {
    const extra: ConfigOverrides = this.revokeStore === undefined ? {} : { revokeStoreUrl: this.revokeStore };
    return this.withStem(async (stem) => {
      const { ControlClient } = await import('../../../plugins/control/index.js');
      return body(new ControlClient(stem), stem);
    }, extra);
  }

  /** The request options the flags make. */
  protected requestOptions(): { destination?: string[]; timeout: string } {
    return this.workers === undefined ? { timeout: this.timeout } : { destination: this.workers, timeout: this.timeout };
  }

  /** Says on stderr that nobody answered, and how to find out why; returns exit status 1. */
  protected noReplies(client: ControlClient): number {
    const who = this.workers === undefined ? 'no worker' : `none of ${this.workers.join(', ')}`;
    this.context.stderr.write(
      `stem: ${who} replied within ${this.timeout} on control namespace "${client.namespace}": check that workers run with the ` +
        `control plugin, on the same broker and --namespace, or raise --timeout\n`,
    );
    return 1;
  }

  /** Writes the failed replies on stderr; true when there were any. */
  protected reportFailures(replies: readonly ControlReply[]): boolean {
    const failed = replies.filter((reply) => !reply.ok);
    for (const reply of failed) this.context.stderr.write(`stem: worker ${reply.workerId}: ${reply.error}\n`);
    return failed.length > 0;
  }

  /** Warns when revokes and pauses cannot outlive this process: no revoke store is configured. */
  protected warnIfNotPersisted(stem: Stem, what: string): void {
    if (!stem.provides('revokeStore')) {
      this.context.stderr.write(
        `stem: warning: no revoke store is configured (STEM_REVOKE_STORE_URL, --revoke-store, or a broker URL it can share); ` +
          `${what} reaches the live workers only and is forgotten when they restart\n`,
      );
    }
  }
}
