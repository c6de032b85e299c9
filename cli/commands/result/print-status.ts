import type { TaskStatus } from '../../../sdk/contracts/result-backend.js';
import { QUEUED_META } from '../../../sdk/producer.js';
import type { GroupResult } from '../../../plugins/canvas/index.js';

/** One member of a group or chord, as `stem result get` shows it. */
export interface MemberLine {
  /** The member's task id (a chain's id for a member that is a chain). */
  id: string;
  /** Its task name, when known. */
  task?: string;
  /** Its state. */
  state: string;
}

/** The members of group `group`, in order, as `stem result get` prints them. */
export function memberLines(group: GroupResult): MemberLine[] {
  return group.taskIds.map((id, i) => {
    const line: MemberLine = { id, state: group.states[i] ?? 'pending' };
    const name = group.names[i];
    if (name !== undefined) line.task = name;
    return line;
  });
}

/** What the enqueue decided that a `queued` state records: a changed priority, a not-before time, an expiry. */
function enqueueLines(status: TaskStatus): Array<[string, unknown]> {
  const meta = status.meta ?? {};
  const time = (value: unknown): string | undefined => (typeof value === 'number' ? new Date(value).toISOString() : undefined);
  const priority = meta[QUEUED_META.priority] as { asked?: unknown; enqueued?: unknown } | undefined;
  return [
    [
      'priority',
      priority === undefined ? undefined : `${String(priority.enqueued)} (asked for ${String(priority.asked)}, changed at enqueue)`,
    ],
    ['not before', time(meta[QUEUED_META.notBefore])],
    ['expires', time(meta[QUEUED_META.expiresAt])],
  ];
}

/**
 * Prints a task status as `key: value` lines or as JSON. With `group` (the id is also a group or a
 * chord's body), adds the group's counts and each member's id, task and state (`group` and
 * `members` in JSON).
 */
export function printStatus(out: NodeJS.WritableStream, status: TaskStatus, json: boolean, group?: GroupResult | null): void {
  const members = group ? memberLines(group) : undefined;
  if (json) {
    const document = group
      ? { ...status, group: { id: group.id, expected: group.expected, completed: group.completed, done: group.done }, members }
      : status;
    out.write(`${JSON.stringify(document, null, 2)}\n`);
    return;
  }
  const lines: Array<[string, unknown]> = [
    ['id', status.id],
    ['state', status.state],
    ['task', status.name],
    ['queue', status.queue],
    ['attempt', status.attempt],
    ...enqueueLines(status),
    ['result', status.result === undefined ? undefined : JSON.stringify(status.result)],
    ['error', status.error ? `${status.error.type}: ${status.error.message}` : undefined],
    ['progress', status.progress === undefined ? undefined : JSON.stringify(status.progress)],
    ['worker', status.workerId],
    ['updated', status.updatedAt ? new Date(status.updatedAt).toISOString() : undefined],
    ['group', group ? `${group.completed} of ${group.expected} members finished` : undefined],
  ];
  for (const [key, value] of lines) if (value !== undefined) out.write(`${key.length < 9 ? key.padEnd(9) : `${key} `}${String(value)}\n`);
  if (members === undefined || members.length === 0) return;
  out.write('members\n');
  members.forEach((member, i) => out.write(`  ${String(i).padEnd(4)}${member.id}  ${(member.task ?? '?').padEnd(24)} ${member.state}\n`));
}
