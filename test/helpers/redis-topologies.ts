import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

/**
 * Real Redis topologies for the cluster and sentinel suites, started from the redis-server binary
 * in a temp directory on fixed loopback ports (never the shared 6379): a cluster of masters with
 * one replica each (`redis-cli --cluster create`), and a master with one replica watched by three
 * sentinels. Every process is a child of the test process, recorded by PID, killed by that PID on
 * stop (and on exit), and the directory removed.
 */

const HOST = '127.0.0.1';

/** How long a topology may take to become ready, or to settle after a failover (ms). */
const READY_CEILING_MS = 120_000;

/** True when redis-server and redis-cli are on the PATH. */
export function redisBinariesInstalled(): boolean {
  return ['redis-server', 'redis-cli'].every((binary) => spawnSync(binary, ['--version'], { stdio: 'ignore' }).status === 0);
}

/** Resolves true when nobody listens on `port` of 127.0.0.1. */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, HOST, () => server.close(() => resolve(true)));
  });
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `probe` until it returns true; throws naming `what` after the ceiling. */
async function until(what: string, probe: () => Promise<boolean>, ceilingMs = READY_CEILING_MS): Promise<void> {
  const deadline = Date.now() + ceilingMs;
  for (;;) {
    try {
      if (await probe()) return;
    } catch {
      // not up yet
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${ceilingMs}ms waiting for ${what}`);
    await sleep(100);
  }
}

/** A one-off command to the server on `port`, on a connection that neither retries nor queues. */
async function command(port: number, ...args: Array<string | number>): Promise<unknown> {
  const client = new Redis({
    host: HOST,
    port,
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
    connectTimeout: 1_000,
  });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return await client.call(String(args[0]), ...args.slice(1));
  } finally {
    client.disconnect();
  }
}

/** The `field:value` lines of an INFO-style reply. */
function infoFields(reply: unknown): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const line of String(reply).split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon > 0) fields[line.slice(0, colon)] = line.slice(colon + 1).trim();
  }
  return fields;
}

/** A redis-server (or sentinel) child process. */
class ServerProcess {
  private output = '';

  private constructor(
    readonly port: number,
    readonly child: ChildProcess,
  ) {
    child.stdout!.on('data', (chunk) => (this.output = (this.output + chunk).slice(-4_000)));
    child.stderr!.on('data', (chunk) => (this.output = (this.output + chunk).slice(-4_000)));
  }

  /** Starts `redis-server` with `args` and waits until it answers PING. */
  static async start(port: number, args: string[]): Promise<ServerProcess> {
    const child = spawn('redis-server', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const server = new ServerProcess(port, child);
    LIVE.add(server);
    // the server's PID and this process's: a later run kills the server only once this process is gone
    writeFileSync(pidFile(port), `${child.pid} ${process.pid}`);
    await until(`redis-server on port ${port}`, async () => {
      if (child.exitCode !== null) throw new Error(`redis-server on port ${port} exited (${child.exitCode}):\n${server.output}`);
      return (await command(port, 'PING')) === 'PONG';
    }).catch((error: Error) => {
      throw new Error(`${error.message}\n${server.output}`);
    });
    return server;
  }

  /** The recorded PID. */
  get pid(): number {
    return this.child.pid!;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Sends `signal` to the recorded PID and waits for the process to exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    LIVE.delete(this);
    rmSync(pidFile(this.port), { force: true });
    if (!this.alive) return;
    const exited = new Promise((resolve) => this.child.once('exit', resolve));
    process.kill(this.pid, signal);
    await exited;
  }
}

/** Every server started and not yet stopped: killed by PID should the test process exit first. */
const LIVE = new Set<ServerProcess>();
process.once('exit', () => {
  for (const server of LIVE) {
    try {
      process.kill(server.pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
});

/** Where the PID of the server on `port` is recorded while it runs. */
function pidFile(port: number): string {
  return join(tmpdir(), `stem-redis-topology-${port}.pid`);
}

/**
 * Kills the server an earlier run recorded for `port` and left running (its test process was
 * killed by a signal, which runs no exit handler): only that PID, only once the process that
 * started it is gone (a run going on at the same time keeps its servers), and only while it is
 * a redis-server on that port.
 */
async function killLeftover(port: number): Promise<void> {
  const file = pidFile(port);
  if (!existsSync(file)) return;
  const [pid, owner] = readFileSync(file, 'utf8').split(' ').map(Number);
  if (pid === undefined || owner === undefined || processAlive(owner)) return;
  rmSync(file, { force: true });
  let commandLine = '';
  try {
    commandLine = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return;
  }
  if (!commandLine.includes('redis') || !commandLine.includes(String(port))) return;
  process.kill(pid, 'SIGKILL');
  await until(`port ${port} to be free`, () => portFree(port), 10_000);
}

/** True while a process with this PID exists. */
function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Throws when a port of the topology is taken (by someone else's server: a leftover of ours is killed first). */
async function requireFreePorts(ports: readonly number[]): Promise<void> {
  for (const port of ports) {
    if (!(await portFree(port))) await killLeftover(port);
    if (!(await portFree(port))) {
      throw new Error(
        `port ${port} on ${HOST} is in use; the topology needs ${ports.join(', ')} free (a server left from an earlier run?)`,
      );
    }
  }
}

/** A Redis Cluster of `masters` masters with one replica each, on consecutive ports from `basePort`. */
export class RedisClusterTopology {
  private constructor(
    private readonly dir: string,
    private readonly servers: Map<number, ServerProcess>,
    /** The number of masters. */
    readonly masters: number,
  ) {}

  /** Starts the nodes, creates the cluster and waits until every slot is served and every replica in sync. */
  static async start(options: { basePort?: number; masters?: number } = {}): Promise<RedisClusterTopology> {
    const basePort = options.basePort ?? 7100;
    const masters = options.masters ?? 3;
    const ports = Array.from({ length: masters * 2 }, (_, i) => basePort + i);
    await requireFreePorts(ports);
    const dir = mkdtempSync(join(tmpdir(), 'stem-redis-cluster-'));
    const servers = new Map<number, ServerProcess>();
    const topology = new RedisClusterTopology(dir, servers, masters);
    try {
      await Promise.all(
        ports.map(async (port) => {
          const nodeDir = join(dir, String(port));
          mkdirSync(nodeDir);
          servers.set(
            port,
            await ServerProcess.start(port, [
              '--port',
              String(port),
              '--bind',
              HOST,
              '--dir',
              nodeDir,
              '--save',
              '',
              '--appendonly',
              'no',
              '--cluster-enabled',
              'yes',
              '--cluster-config-file',
              'nodes.conf',
              '--cluster-node-timeout',
              '2000',
            ]),
          );
        }),
      );
      const created = spawnSync(
        'redis-cli',
        ['--cluster', 'create', ...ports.map((port) => `${HOST}:${port}`), '--cluster-replicas', '1', '--cluster-yes'],
        { encoding: 'utf8', timeout: 60_000 },
      );
      if (created.status !== 0) throw new Error(`redis-cli --cluster create failed:\n${created.stdout}\n${created.stderr}`);
      await topology.waitHealthy();
      return topology;
    } catch (error) {
      await topology.stop();
      throw error;
    }
  }

  /** The seed nodes as a Stem URL. */
  get url(): string {
    return `redis+cluster://${[...this.servers.keys()]
      .slice(0, this.masters)
      .map((port) => `${HOST}:${port}`)
      .join(',')}`;
  }

  /** The ports of the nodes that are running. */
  get livePorts(): number[] {
    return [...this.servers.values()].filter((server) => server.alive).map((server) => server.port);
  }

  /** The ports of the running nodes that are masters now. */
  async masterPorts(): Promise<number[]> {
    const roles = await Promise.all(this.livePorts.map(async (port) => [port, ((await command(port, 'ROLE')) as unknown[])[0]] as const));
    return roles.filter(([, role]) => role === 'master').map(([port]) => port);
  }

  /**
   * Waits until every running node says cluster_state:ok, knows the same masters, serves all 16384
   * slots with running masters, and every running replica is in sync with its master.
   */
  async waitHealthy(): Promise<void> {
    await until('the cluster to be healthy', async () => {
      for (const port of this.livePorts) {
        const info = infoFields(await command(port, 'CLUSTER', 'INFO'));
        if (info.cluster_state !== 'ok' || info.cluster_slots_assigned !== '16384' || info.cluster_slots_ok !== '16384') return false;
        const role = (await command(port, 'ROLE')) as unknown[];
        if (role[0] === 'slave' && role[3] !== 'connected') return false;
      }
      const live = new Set(this.livePorts);
      const slots = (await command(this.livePorts[0]!, 'CLUSTER', 'SLOTS')) as Array<[number, number, [string, number]]>;
      return slots.every(([, , master]) => live.has(Number(master[1])));
    });
  }

  /**
   * `CLUSTER FAILOVER` on a replica of the master on `masterPort` (default: the first master): the
   * replica catches up, takes over the master's slots, and the old master becomes its replica.
   * Resolves with the promoted replica's port once the cluster is healthy again.
   */
  async failover(masterPort?: number): Promise<number> {
    const master = masterPort ?? (await this.masterPorts())[0]!;
    const replica = await this.replicaOf(master);
    await command(replica, 'CLUSTER', 'FAILOVER');
    await until(`the replica on ${replica} to become master`, async () => ((await command(replica, 'ROLE')) as unknown[])[0] === 'master');
    await this.waitHealthy();
    return replica;
  }

  /** Kills the master on `masterPort` (default: the first master) with SIGKILL; resolves with its port once its replica serves its slots. */
  async killMaster(masterPort?: number): Promise<number> {
    const master = masterPort ?? (await this.masterPorts())[0]!;
    const replica = await this.replicaOf(master);
    await this.servers.get(master)!.kill('SIGKILL');
    await until(`the replica on ${replica} to take over from the killed master on ${master}`, async () => {
      return ((await command(replica, 'ROLE')) as unknown[])[0] === 'master';
    });
    await this.waitHealthy();
    return master;
  }

  /** Kills every node by its recorded PID and removes the directory. */
  async stop(): Promise<void> {
    await Promise.all([...this.servers.values()].map((server) => server.kill('SIGKILL')));
    rmSync(this.dir, { recursive: true, force: true });
  }

  private async replicaOf(masterPort: number): Promise<number> {
    for (const port of this.livePorts) {
      const role = (await command(port, 'ROLE')) as unknown[];
      if (role[0] === 'slave' && Number(role[2]) === masterPort) return port;
    }
    throw new Error(`no running replica of the master on port ${masterPort}`);
  }
}

/** A master and one replica watched by three sentinels (quorum 2). */
export class RedisSentinelTopology {
  /** The master group name in the sentinels. */
  readonly name = 'stem-test';

  private constructor(
    private readonly dir: string,
    private readonly data: Map<number, ServerProcess>,
    private readonly sentinels: Map<number, ServerProcess>,
  ) {}

  /** Starts master, replica and sentinels; waits until the sentinels agree on the master and know the replica and each other. */
  static async start(options: { masterPort?: number; sentinelBasePort?: number } = {}): Promise<RedisSentinelTopology> {
    const masterPort = options.masterPort ?? 7200;
    const replicaPort = masterPort + 1;
    const sentinelBase = options.sentinelBasePort ?? 27200;
    const sentinelPorts = [sentinelBase, sentinelBase + 1, sentinelBase + 2];
    await requireFreePorts([masterPort, replicaPort, ...sentinelPorts]);
    const dir = mkdtempSync(join(tmpdir(), 'stem-redis-sentinel-'));
    const topology = new RedisSentinelTopology(dir, new Map(), new Map());
    try {
      const dataArgs = (port: number): string[] => {
        const nodeDir = join(dir, String(port));
        mkdirSync(nodeDir);
        return ['--port', String(port), '--bind', HOST, '--dir', nodeDir, '--save', '', '--appendonly', 'no'];
      };
      topology.data.set(masterPort, await ServerProcess.start(masterPort, dataArgs(masterPort)));
      topology.data.set(
        replicaPort,
        await ServerProcess.start(replicaPort, [...dataArgs(replicaPort), '--replicaof', HOST, String(masterPort)]),
      );
      await until('the replica to sync', async () => ((await command(replicaPort, 'ROLE')) as unknown[])[3] === 'connected');
      for (const port of sentinelPorts) {
        const file = join(dir, `sentinel-${port}.conf`);
        writeFileSync(
          file,
          [
            `port ${port}`,
            `bind ${HOST}`,
            `dir ${dir}`,
            `sentinel monitor ${topology.name} ${HOST} ${masterPort} 2`,
            `sentinel down-after-milliseconds ${topology.name} 2000`,
            `sentinel failover-timeout ${topology.name} 10000`,
            `sentinel parallel-syncs ${topology.name} 1`,
            '',
          ].join('\n'),
        );
        topology.sentinels.set(port, await ServerProcess.start(port, [file, '--sentinel']));
      }
      await topology.waitHealthy();
      return topology;
    } catch (error) {
      await topology.stop();
      throw error;
    }
  }

  /** The sentinels as a Stem URL. */
  get url(): string {
    return `redis+sentinel://${[...this.sentinels.keys()].map((port) => `${HOST}:${port}`).join(',')}/${this.name}`;
  }

  /** The port the sentinels name as master now. */
  async masterPort(): Promise<number> {
    const [, port] = (await command(this.sentinels.keys().next().value!, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', this.name)) as [
      string,
      string,
    ];
    return Number(port);
  }

  /** Waits until every sentinel names the same running master, sees one replica in sync and two other sentinels. */
  async waitHealthy(): Promise<void> {
    await until('the sentinels to agree', async () => {
      let master: number | undefined;
      for (const port of this.sentinels.keys()) {
        const info = (await command(port, 'SENTINEL', 'MASTER', this.name)) as string[];
        const fields: Record<string, string> = {};
        for (let i = 0; i + 1 < info.length; i += 2) fields[info[i]!] = info[i + 1]!;
        if (fields.flags !== 'master' || fields['num-slaves'] !== '1' || fields['num-other-sentinels'] !== '2') return false;
        const replicas = (await command(port, 'SENTINEL', 'REPLICAS', this.name)) as string[][];
        if (replicas.length !== 1 || !replicas[0]!.includes('slave') || replicas[0]![replicas[0]!.indexOf('flags') + 1] !== 'slave')
          return false;
        if (master !== undefined && Number(fields.port) !== master) return false;
        master = Number(fields.port);
      }
      if (master === undefined || !this.data.get(master)?.alive) return false;
      const role = (await command(master, 'ROLE')) as unknown[];
      if (role[0] !== 'master') return false;
      const replica = [...this.data.keys()].find((port) => port !== master)!;
      return ((await command(replica, 'ROLE')) as unknown[])[3] === 'connected';
    });
  }

  /** `SENTINEL FAILOVER`: the replica becomes master, the old master its replica; resolves with the new master's port once all agree. */
  async failover(): Promise<number> {
    const before = await this.masterPort();
    await command(this.sentinels.keys().next().value!, 'SENTINEL', 'FAILOVER', this.name);
    await until('the sentinels to name a new master', async () => (await this.masterPort()) !== before);
    await this.waitHealthy();
    return this.masterPort();
  }

  /** Kills every process by its recorded PID and removes the directory. */
  async stop(): Promise<void> {
    await Promise.all([...this.data.values(), ...this.sentinels.values()].map((server) => server.kill('SIGKILL')));
    rmSync(this.dir, { recursive: true, force: true });
  }
}
