import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

/** A TCP port nobody listens on right now (the OS picks it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** True when a `redis-server` binary is on the PATH. */
export function redisServerInstalled(): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = spawn('redis-server', ['--version'], { stdio: 'ignore' });
    probe.once('error', () => resolve(false));
    probe.once('exit', (code) => resolve(code === 0));
  });
}

/** A loopback address only the harness uses: a server bound to it alone is down for everyone else. */
const HIDDEN_HOST = '127.0.0.2';

/** How the owned server persists: nothing (the default), or an append-only file fsynced as named. */
export type RedisPersistence = 'none' | 'aof-always' | 'aof-everysec' | 'aof-no';

/** How a restart takes the server down: SIGTERM (Redis shuts down cleanly, flushing its AOF) or SIGKILL. */
export type RedisStop = 'sigterm' | 'sigkill';

/**
 * A redis-server this harness starts on a port of its own (never the shared 6379), so that it can be
 * restarted and killed without touching anyone else. Without persistence (`--save ""`,
 * `--appendonly no`) a restart loses everything; with an AOF persistence (`--appendonly yes
 * --appendfsync always|everysec|no`) it reloads its directory's append-only file on restart.
 */
export class OwnedRedisServer {
  private process: ChildProcess | undefined;
  private readonly dir = mkdtempSync(join(tmpdir(), 'stem-chaos-redis-'));
  private output = '';

  private constructor(
    readonly port: number,
    readonly persistence: RedisPersistence,
  ) {}

  /** Starts a server on `port` (default: a free one) and waits until it answers PING. */
  static async start(port?: number, persistence: RedisPersistence = 'none'): Promise<OwnedRedisServer> {
    const server = new OwnedRedisServer(port ?? (await freePort()), persistence);
    await server.launch();
    return server;
  }

  /** The server's URL. */
  get url(): string {
    return this.urlOn('127.0.0.1');
  }

  private urlOn(host: string): string {
    return `redis://${host}:${this.port}/0`;
  }

  /**
   * Takes the server down (`how`), waits `downMs`, and starts it again on the same port and
   * directory: without persistence it comes back empty, with AOF it reloads what it had written.
   * `beforeOpen` runs first against the restarted server on 127.0.0.2 only, while clients of
   * 127.0.0.1 still find it down, to read what it holds as it was when it went down.
   */
  async restart(downMs: number, how: RedisStop = 'sigkill', beforeOpen?: (url: string) => Promise<void>): Promise<void> {
    await this.kill(how === 'sigterm' ? 'SIGTERM' : 'SIGKILL');
    await new Promise((resolve) => setTimeout(resolve, downMs));
    if (beforeOpen === undefined) return this.launch();
    await this.launch(HIDDEN_HOST);
    const hidden = this.urlOn(HIDDEN_HOST);
    try {
      await beforeOpen(hidden);
    } finally {
      const client = new Redis(hidden, { maxRetriesPerRequest: 0 });
      client.on('error', () => undefined);
      await client.call('CONFIG', 'SET', 'bind', `127.0.0.1 ${HIDDEN_HOST}`).finally(() => client.disconnect());
    }
  }

  /** Stops the server and removes its directory. */
  async stop(): Promise<void> {
    await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async launch(bind = '127.0.0.1'): Promise<void> {
    const persistence =
      this.persistence === 'none'
        ? ['--appendonly', 'no']
        : ['--appendonly', 'yes', '--appendfsync', this.persistence.slice('aof-'.length)];
    const child = spawn('redis-server', ['--port', String(this.port), '--bind', bind, '--save', '', ...persistence, '--dir', this.dir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (chunk) => (this.output = (this.output + chunk).slice(-4_000)));
    child.stderr!.on('data', (chunk) => (this.output = (this.output + chunk).slice(-4_000)));
    this.process = child;
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`redis-server on port ${this.port} exited (${child.exitCode}):\n${this.output}`);
      const client = new Redis(this.urlOn(bind), {
        lazyConnect: true,
        maxRetriesPerRequest: 0,
        retryStrategy: () => null,
        connectTimeout: 500,
      });
      client.on('error', () => undefined);
      try {
        await client.connect();
        await client.ping();
        return;
      } catch {
        if (Date.now() > deadline) throw new Error(`redis-server on port ${this.port} did not answer within 10s:\n${this.output}`);
        await new Promise((resolve) => setTimeout(resolve, 50));
      } finally {
        client.disconnect();
      }
    }
  }

  private async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    const child = this.process;
    this.process = undefined;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill(signal);
    await exited;
  }
}
