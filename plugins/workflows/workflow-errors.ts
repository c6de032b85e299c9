import type { WorkflowFailure } from '../../sdk/contracts/workflow-store.js';
import { StemError } from '../../sdk/errors.js';

/**
 * A replay no longer matches the run's checkpoints: the durable call at `position` is not the one
 * recorded there (the workflow's code changed while the run was in flight). The run fails with it.
 */
export class WorkflowVersionMismatchError extends StemError {
  constructor(
    readonly runId: string,
    readonly position: number,
    readonly expected: string,
    readonly found: string,
  ) {
    super(
      'workflow-version-mismatch',
      `workflow run ${runId}: durable call ${position} is ${found} but the run recorded ${expected} there; the workflow's code ` +
        'changed under a run in flight: give the new code a higher `version` (runs stay on the version they started with)',
    );
  }
}

/** The run was started on a version this process does not register. */
export class UnknownWorkflowError extends StemError {
  constructor(name: string, version: number | undefined, known: readonly string[]) {
    super(
      'unknown-workflow',
      `workflow "${name}"${version === undefined ? '' : ` version ${version}`} is not registered here; ` +
        `known: ${known.length === 0 ? '(none)' : known.join(', ')}; pass it to workflows({ definitions }) on every worker and starter`,
    );
  }
}

/** No workflow run has this id. */
export class UnknownWorkflowRunError extends StemError {
  constructor(readonly runId: string) {
    super('unknown-workflow-run', `no workflow run has id ${runId}; list runs with \`stem wf list\``, { exitCode: 1 });
  }
}

/** `rewind` named a step the run has not recorded. */
export class UnknownWorkflowStepError extends StemError {
  constructor(runId: string, step: string, recorded: readonly string[]) {
    super(
      'unknown-workflow-step',
      `workflow run ${runId} has no recorded step "${step}"; recorded: ${recorded.length === 0 ? '(none)' : recorded.join(', ')}`,
    );
  }
}

/** A `waitForEvent` whose timeout passed before its event came. */
export class WorkflowEventTimeoutError extends StemError {
  constructor(
    readonly event: string,
    readonly key: string,
  ) {
    super('workflow-event-timeout', `no "${event}" event with key "${key}" came before the wait's timeout`);
  }
}

/** A step (or child task) that failed for good; replays throw it again with the recorded error. */
export class WorkflowStepFailedError extends StemError {
  constructor(
    readonly step: string,
    readonly failure: WorkflowFailure,
  ) {
    super('workflow-step-failed', `step "${step}" failed: ${failure.name}: ${failure.message}`);
  }
}

/** The run failed or was cancelled (thrown by `WorkflowRunHandle.result()`). */
export class WorkflowRunFailedError extends StemError {
  constructor(
    readonly runId: string,
    readonly status: 'failed' | 'cancelled',
    readonly failure: WorkflowFailure | undefined,
  ) {
    super(
      'workflow-run-failed',
      `workflow run ${runId} ${status === 'failed' ? 'failed' : 'was cancelled'}: ` +
        (failure ? `${failure.name}: ${failure.message}` : 'no reason'),
      { exitCode: 1 },
    );
  }
}

/** `wait` gave up before the run ended. */
export class WorkflowWaitTimeoutError extends StemError {
  constructor(runId: string, timeoutMs: number, status: string) {
    super(
      'workflow-wait-timeout',
      `workflow run ${runId} did not end within ${timeoutMs}ms (it is ${status}); wait longer or check it with \`stem wf show\``,
    );
  }
}
