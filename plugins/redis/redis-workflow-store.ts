import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type {
  NewWorkflowRun,
  WorkflowCheckpoint,
  WorkflowClaim,
  WorkflowDelivery,
  WorkflowEnding,
  WorkflowRun,
  WorkflowRunFilter,
  WorkflowStore,
  WorkflowSuspension,
  WorkflowWaiter,
} from '../../sdk/contracts/workflow-store.js';
import { newWorkflowRunMeta } from '../../sdk/contracts/workflow-store.js';
import { isNoScript } from './lua-scripts.js';
import type { RedisConnection } from './redis-connection.js';
import type { RedisConnectionOptions } from './redis-options.js';
import { RedisService } from './redis-service.js';

/** lua/workflow.lua, read once per process. */
let script: { lua: string; sha: string } | undefined;

function workflowScript(): { lua: string; sha: string } {
  if (script === undefined) {
    const lua = readFileSync(new URL('./lua/workflow.lua', import.meta.url), 'utf8');
    script = { lua, sha: createHash('sha1').update(lua).digest('hex') };
  }
  return script;
}

/** Rebuilds a run from its meta JSON, its input JSON and, when succeeded, its result JSON. */
function toRun(meta: string, input: string | null, result?: string | null): WorkflowRun {
  const run = JSON.parse(meta) as WorkflowRun;
  run.input = input === null ? null : JSON.parse(input);
  if (result !== undefined && result !== null) run.result = JSON.parse(result);
  return run;
}

/** JSON of a user value; `undefined` is stored as null. */
function json(value: unknown): string {
  return JSON.stringify(value ?? null);
}

/**
 * The WorkflowStore contract on Redis: each run a hash (meta, input, result), its checkpoints a
 * hash by position, waiters a set per (event, key), early events a list per pair; every change one
 * call of lua/workflow.lua, all keys under one hash tag `{<namespace>:wf}` (one slot on a cluster).
 * Runs are kept until removed (no TTL): `stem wf list` shows finished runs too.
 */
export class RedisWorkflowStore extends RedisService implements WorkflowStore {
  private readonly prefix: string;
  private readonly index: string;

  /** Wraps an open connection (retained until close). */
  constructor(connection: RedisConnection) {
    super(connection, 'RedisWorkflowStore');
    this.prefix = `{${connection.namespace}:wf}`;
    this.index = `${this.prefix}:runs`;
  }

  /** Connects to `url` and returns a store that owns its connection. */
  static async connect(url: string, options: RedisConnectionOptions = {}): Promise<RedisWorkflowStore> {
    return RedisService.openWith(url, options, 'RedisWorkflowStore', (connection) => new RedisWorkflowStore(connection));
  }

  async createRun(run: NewWorkflowRun, now: number): Promise<{ run: WorkflowRun; created: boolean }> {
    this.assertOpen();
    const meta = newWorkflowRunMeta(run, now);
    const created = (await this.call('create', [run.id, JSON.stringify(meta), json(run.input)])) === 1;
    if (created) return { run: { ...meta, input: structuredClone(run.input ?? null) }, created };
    return { run: (await this.getRun(run.id))!, created };
  }

  async getRun(id: string): Promise<WorkflowRun | null> {
    this.assertOpen();
    const [meta, input, result] = await this.client.hmget(this.runKey(id), 'meta', 'input', 'result');
    return meta === null || meta === undefined ? null : toRun(meta, input ?? null, result);
  }

  async listRuns(filter: WorkflowRunFilter = {}): Promise<WorkflowRun[]> {
    this.assertOpen();
    const limit = filter.limit ?? 100;
    const runs: WorkflowRun[] = [];
    const page = 500;
    for (let start = 0; runs.length < limit; start += page) {
      const ids = await this.client.zrevrange(this.index, start, start + page - 1);
      if (ids.length === 0) break;
      const pipeline = this.client.pipeline();
      for (const id of ids) pipeline.hmget(this.runKey(id), 'meta', 'input', 'result');
      const replies = (await pipeline.exec()) ?? [];
      for (const [error, fields] of replies) {
        if (error) throw error;
        const [meta, input, result] = fields as Array<string | null>;
        if (meta === null || meta === undefined) continue;
        const run = toRun(meta, input ?? null, result);
        if (filter.workflow !== undefined && run.workflow !== filter.workflow) continue;
        if (filter.status !== undefined && run.status !== filter.status) continue;
        runs.push(run);
        if (runs.length >= limit) break;
      }
      if (ids.length < page) break;
    }
    return runs;
  }

  async checkpoints(id: string): Promise<WorkflowCheckpoint[]> {
    this.assertOpen();
    const points = Object.values(await this.client.hgetall(`${this.prefix}:cp:${id}`)).map((raw) => JSON.parse(raw) as WorkflowCheckpoint);
    return points.sort((a, b) => a.position - b.position);
  }

  async claim(id: string, owner: string, leaseMs: number, now: number): Promise<WorkflowClaim> {
    this.assertOpen();
    const [code, meta, input] = (await this.call('claim', [id, owner, leaseMs, now])) as [string, string?, string?];
    if (code === 'missing') return { claimed: false, reason: 'missing' };
    const run = toRun(meta!, input ?? null, code === 'final' ? await this.client.hget(this.runKey(id), 'result') : undefined);
    if (code === 'claimed') return { claimed: true, run };
    return { claimed: false, reason: code as 'final' | 'leased', run };
  }

  async renew(id: string, owner: string, leaseMs: number, now: number): Promise<boolean> {
    this.assertOpen();
    return (await this.call('renew', [id, owner, leaseMs, now])) === 1;
  }

  async saveCheckpoint(
    id: string,
    checkpoint: WorkflowCheckpoint,
    owner: string | undefined,
    now: number,
  ): Promise<WorkflowCheckpoint | null> {
    this.assertOpen();
    const stored = await this.call('save', [id, owner ?? '', now, checkpoint.position, JSON.stringify(checkpoint)]);
    return typeof stored === 'string' ? (JSON.parse(stored) as WorkflowCheckpoint) : null;
  }

  async suspend(id: string, owner: string, until: { wakeAt?: number; waiter?: WorkflowWaiter }, now: number): Promise<WorkflowSuspension> {
    this.assertOpen();
    const waiter = until.waiter === undefined ? '' : JSON.stringify(until.waiter);
    const [code, checkpoint] = (await this.call('suspend', [id, owner, now, until.wakeAt ?? '', waiter])) as [string, string?];
    if (code === 'suspended') return { suspended: true };
    if (code === 'lost') return { suspended: false, lost: true };
    return { suspended: false, checkpoint: JSON.parse(checkpoint!) as WorkflowCheckpoint };
  }

  async finish(id: string, owner: string, ending: WorkflowEnding, now: number): Promise<boolean> {
    this.assertOpen();
    const value = ending.status === 'succeeded' ? json(ending.result) : JSON.stringify(ending.error);
    return (await this.call('finish', [id, owner, now, ending.status, value])) === 1;
  }

  async release(id: string, owner: string, now: number): Promise<void> {
    this.assertOpen();
    await this.call('release', [id, owner, now]);
  }

  async emit(event: string, key: string, payload: unknown, options: { now: number; bufferTtlMs: number }): Promise<WorkflowDelivery[]> {
    this.assertOpen();
    const reply = (await this.call('emit', [
      event,
      key,
      json(payload),
      options.now,
      Math.max(1, Math.ceil(options.bufferTtlMs)),
    ])) as string[];
    const deliveries: WorkflowDelivery[] = [];
    for (let i = 0; i < reply.length; i += 3) {
      deliveries.push({ run: toRun(reply[i + 1]!, null), checkpoint: JSON.parse(reply[i + 2]!) as WorkflowCheckpoint });
    }
    // The run's input is not needed to schedule it; read it so callers get whole runs.
    await Promise.all(
      deliveries.map(async (delivery) => {
        delivery.run.input = JSON.parse((await this.client.hget(this.runKey(delivery.run.id), 'input')) ?? 'null');
      }),
    );
    return deliveries;
  }

  async cancel(id: string, reason: string, now: number): Promise<WorkflowRun | null> {
    this.assertOpen();
    const meta = await this.call('cancel', [id, reason, now]);
    return typeof meta === 'string' ? this.getRun(id) : null;
  }

  async rewind(id: string, position: number, now: number): Promise<WorkflowRun | null> {
    this.assertOpen();
    const meta = await this.call('rewind', [id, position, now]);
    return typeof meta === 'string' ? this.getRun(id) : null;
  }

  private runKey(id: string): string {
    return `${this.prefix}:run:${id}`;
  }

  /** One operation of lua/workflow.lua (EVALSHA, EVAL when the server lost it). */
  private async call(op: string, args: ReadonlyArray<string | number>): Promise<unknown> {
    const { lua, sha } = workflowScript();
    const argv = [op, this.prefix, ...args];
    try {
      return await this.client.evalsha(sha, 1, this.index, ...argv);
    } catch (error) {
      if (!isNoScript(error)) throw error;
      return this.client.eval(lua, 1, this.index, ...argv);
    }
  }
}
