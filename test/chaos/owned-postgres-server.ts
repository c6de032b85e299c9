import { execFile } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import { freePort } from './owned-redis-server.js';

const run = promisify(execFile);
const POSTGRES_USER = 'postgres';

/** The directory of the newest installed PostgreSQL binaries (initdb, pg_ctl), or undefined. */
export function postgresBinDir(): string | undefined {
  const root = '/usr/lib/postgresql';
  if (!existsSync(root)) return undefined;
  const versions = readdirSync(root)
    .filter((name) => existsSync(join(root, name, 'bin', 'pg_ctl')))
    .sort((a, b) => Number(b) - Number(a));
  return versions.length === 0 ? undefined : join(root, versions[0]!, 'bin');
}

/** The uid and gid of the `postgres` system user (from /etc/passwd), or undefined. */
function postgresUser(): { uid: number; gid: number } | undefined {
  const line = readFileSync('/etc/passwd', 'utf8')
    .split('\n')
    .find((entry) => entry.startsWith(`${POSTGRES_USER}:`));
  if (line === undefined) return undefined;
  const [, , uid, gid] = line.split(':');
  return { uid: Number(uid), gid: Number(gid) };
}

/**
 * A PostgreSQL cluster this harness makes with `initdb` in a temporary directory and runs on a free
 * port of its own, so that it can be restarted (`pg_ctl restart -m immediate`: no checkpoint, the WAL
 * is replayed on start, as after a power loss) without touching the shared server. Settings are the
 * defaults (fsync=on, synchronous_commit=on), trust auth on 127.0.0.1. As root, initdb refuses to
 * run, so the cluster runs as the `postgres` user.
 */
export class OwnedPostgresServer {
  private constructor(
    readonly port: number,
    private readonly dir: string,
    private readonly bin: string,
    private readonly asPostgres: boolean,
  ) {}

  /** The URL of its `postgres` database. */
  get url(): string {
    return `postgres://${POSTGRES_USER}@127.0.0.1:${this.port}/postgres`;
  }

  /** initdb + start; waits until it accepts connections. */
  static async start(): Promise<OwnedPostgresServer> {
    const bin = postgresBinDir();
    if (bin === undefined)
      throw new Error('no PostgreSQL binaries under /usr/lib/postgresql/*/bin: install postgresql to run the Postgres restart scenario');
    const asPostgres = process.getuid?.() === 0;
    const dir = mkdtempSync(join(tmpdir(), 'stem-chaos-pg-'));
    if (asPostgres) {
      const user = postgresUser();
      if (user === undefined) throw new Error('running as root, and there is no postgres user to run initdb as');
      chownSync(dir, user.uid, user.gid);
    }
    const server = new OwnedPostgresServer(await freePort(), dir, bin, asPostgres);
    try {
      await server.pg('initdb', ['-D', server.data, '-U', POSTGRES_USER, '-A', 'trust', '--no-sync', '-E', 'UTF8']);
      await server.pg('pg_ctl', ['-D', server.data, '-l', join(dir, 'log'), '-w', '-t', '60', '-o', server.options, 'start']);
      await server.waitReady();
    } catch (error) {
      await server.stop().catch(() => undefined);
      throw error;
    }
    return server;
  }

  /**
   * Restarts with `-m immediate`: every backend dies at once, nothing is checkpointed, the WAL is
   * replayed on start. `beforeOpen` runs first against the recovered cluster listening on its Unix
   * socket only (TCP clients still find it down), to read what it held when it went down; then it
   * is restarted once more (`-m fast`, nobody is connected) listening on 127.0.0.1 again.
   */
  async restartImmediate(beforeOpen?: (socketUrl: string) => Promise<void>): Promise<void> {
    const restart = (mode: string, options: string): Promise<void> =>
      this.pg('pg_ctl', ['-D', this.data, '-l', join(this.dir, 'log'), '-w', '-t', '60', '-m', mode, '-o', options, 'restart']);
    if (beforeOpen === undefined) {
      await restart('immediate', this.options);
    } else {
      await restart('immediate', this.options.replace('listen_addresses=127.0.0.1', "listen_addresses=''"));
      await beforeOpen(`postgres://${POSTGRES_USER}@/postgres?host=${encodeURIComponent(this.dir)}&port=${this.port}`);
      await restart('fast', this.options);
    }
    await this.waitReady();
  }

  /** Stops the cluster at once and removes its directory. */
  async stop(): Promise<void> {
    if (existsSync(join(this.data, 'postmaster.pid')))
      await this.pg('pg_ctl', ['-D', this.data, '-w', '-m', 'immediate', 'stop']).catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }

  private get data(): string {
    return join(this.dir, 'data');
  }

  /** Server options: its port, 127.0.0.1 only, the socket in its own directory. */
  private get options(): string {
    return `-p ${this.port} -c listen_addresses=127.0.0.1 -k ${this.dir} -c max_connections=200`;
  }

  private async pg(tool: string, args: string[]): Promise<void> {
    const path = join(this.bin, tool);
    try {
      if (this.asPostgres) await run('runuser', ['-u', POSTGRES_USER, '--', path, ...args], { cwd: this.dir });
      else await run(path, args);
    } catch (error) {
      const log = existsSync(join(this.dir, 'log')) ? readFileSync(join(this.dir, 'log'), 'utf8').slice(-2_000) : '';
      throw new Error(`${tool} ${args.join(' ')} failed: ${(error as Error).message}\n${log}`);
    }
  }

  private async waitReady(): Promise<void> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const client = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: 1_000 });
      client.on('error', () => undefined);
      try {
        await client.connect();
        await client.query('select 1');
        return;
      } catch (error) {
        if (Date.now() > deadline)
          throw new Error(`the owned Postgres on port ${this.port} did not accept connections within 30s: ${(error as Error).message}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      } finally {
        await client.end().catch(() => undefined);
      }
    }
  }
}
