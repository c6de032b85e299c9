import type { ResultBackend, TaskError, TaskState, TaskStatus } from '../../sdk/contracts/result-backend.js';

/** A group (or a chord's body) as read from the backend, members in the order they were given. */
export interface GroupResult<Result = unknown> {
  /** The group id (for a chord: the chord id). */
  id: string;
  /** Member task ids, in order. */
  taskIds: string[];
  /** How many members there are. */
  expected: number;
  /** How many members have reached a terminal state (succeeded, failed or cancelled). */
  completed: number;
  /** True when every member is terminal. */
  done: boolean;
  /** Each member's task name, when known (a member that is a chain reads `stem.chain`). */
  names: Array<string | undefined>;
  /** Each member's state: its terminal state once recorded, else its live state (queued, running, retried, pending). */
  states: TaskState[];
  /** Each member's result; undefined until it succeeded (and for members that failed). */
  results: Array<Result | undefined>;
  /** Each member's error, for members that failed or were cancelled. */
  errors: Array<TaskError | undefined>;
}

/** Reads group `id` with its members' states and results in order; null when the backend does not know it. */
export async function readGroupResult<Result = unknown>(backend: ResultBackend, id: string): Promise<GroupResult<Result> | null> {
  const group = await backend.getGroup(id);
  if (group === null) return null;
  // Members that recorded nothing yet are still moving: their own status says where they are.
  const live = await Promise.all(group.memberIds.map((memberId, i) => (group.results[i] ? null : backend.get(memberId))));
  const statuses: Array<TaskStatus | null> = group.memberIds.map((_, i) => group.results[i] ?? live[i] ?? null);
  return {
    id,
    taskIds: group.memberIds,
    expected: group.expected,
    completed: group.completed,
    done: group.completed >= group.expected,
    names: statuses.map((status) => status?.name),
    states: statuses.map((status) => status?.state ?? 'pending'),
    results: statuses.map((status) => (status?.state === 'succeeded' ? (status.result as Result) : undefined)),
    errors: statuses.map((status) => (status?.state === 'failed' || status?.state === 'cancelled' ? status.error : undefined)),
  };
}
