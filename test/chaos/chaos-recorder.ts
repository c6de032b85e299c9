// The side table of the chaos harness, opened from the environment by whoever imports this: the
// worker process, and each isolation child when the handlers run isolated (CHAOS_ISOLATE).
import { Redis } from 'ioredis';
import pg from 'pg';

const env = process.env;
/** The worker's pid: an isolation child process records its parent's (the harness explains duplicates by the worker it killed). */
const workerPid = env.STEM_ISOLATION_BOOT !== undefined ? process.ppid : process.pid;

/** Records one finished run: "<task id> <pid> <started> <done>". */
export let record: (taskId: string, startedAt: number) => Promise<void>;
/** Closes the recorder's connection. */
export let closeRecorder: () => Promise<void>;

if (env.CHAOS_BACKEND === 'redis') {
  const recorder = new Redis(env.CHAOS_RECORD_URL!, { connectionName: 'chaos-recorder' });
  recorder.on('error', () => undefined);
  const [runsKey, doneKey] = [env.CHAOS_RUNS_KEY!, env.CHAOS_DONE_KEY!];
  record = async (taskId, startedAt) => {
    const replies = await recorder
      .multi()
      .rpush(runsKey, `${taskId} ${workerPid} ${startedAt} ${Date.now()}`)
      .hincrby(doneKey, taskId, 1)
      .exec();
    for (const [error] of replies ?? []) if (error) throw error;
  };
  closeRecorder = async () => void recorder.disconnect();
} else if (env.CHAOS_BACKEND === 'postgres') {
  const schema = env.CHAOS_SCHEMA!;
  // The side table is on the shared test database even when the queue's server is one the harness restarts.
  const recorder = new pg.Pool({
    connectionString: env.CHAOS_RECORD_URL ?? env.CHAOS_URL!,
    max: 4,
    application_name: `recorder-${env.CHAOS_APP}`,
  });
  recorder.on('error', () => undefined);
  record = async (taskId, startedAt) =>
    void (await recorder.query(`insert into "${schema}".chaos_runs (task_id, pid, started_at, done_at) values ($1, $2, $3, $4)`, [
      taskId,
      workerPid,
      startedAt,
      Date.now(),
    ]));
  closeRecorder = () => recorder.end();
} else {
  throw new Error(`CHAOS_BACKEND must be redis or postgres, got ${JSON.stringify(env.CHAOS_BACKEND)}`);
}
