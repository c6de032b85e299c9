import t from 'tap';
import { isolation } from '../../plugins/isolation/index.js';
import { telemetry } from '../../plugins/telemetry/index.js';
import { Stem, type TaskDefinition } from '../../sdk/index.js';
import { registerGlobalContext, SpanRecorder } from '../telemetry/otel-harness.js';
import { waitFor } from '../helpers/wait.js';
import * as isolated from './isolated-tasks.js';

registerGlobalContext();

for (const pool of ['threads', 'processes'] as const) {
  t.test(`${pool}: the process span stays on the worker; its context is active in the child, and child tasks join the trace`, async (t) => {
    const recorder = new SpanRecorder();
    const tasks = Object.values(isolated).filter((value): value is TaskDefinition => typeof value === 'object' && 'handler' in value);
    const stem = await Stem.create({
      tasks,
      plugins: [
        isolation({ pool, setup: [new URL('./otel-child-setup.ts', import.meta.url)] }),
        telemetry({ tracerProvider: recorder.provider }),
      ],
    });
    t.teardown(async () => {
      await stem.close();
      await recorder.close();
    });
    await stem.worker().start();
    const handle = await stem.enqueue(isolated.traced, { a: 1, b: 2 });
    const seen = await handle.result({ timeoutMs: 120_000 });
    await waitFor(() => recorder.named('process default').length === 2, 'both process spans to end', 120_000);
    const processSpan = recorder.named('process default').find((span) => span.attributes['messaging.message.id'] === handle.id);
    t.ok(processSpan, 'the isolated task has its process span');
    t.equal(seen.traceId, processSpan!.spanContext().traceId, "the child's active trace is the process span's");
    t.equal(seen.spanId, processSpan!.spanContext().spanId, "the child's active span is the process span");
    const sendChild = recorder.named('send default').find((span) => span.attributes['messaging.message.id'] === seen.childId);
    t.equal(sendChild?.parentSpanContext?.spanId, processSpan!.spanContext().spanId, 'the child task was sent under the process span');
  });
}
