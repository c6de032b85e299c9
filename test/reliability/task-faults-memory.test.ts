import t from 'tap';
import { ATTRIBUTABLE_FAULTS, memoryScenarios } from './task-faults-harness.js';

// One task's fault is that task's alone, on the in-memory default. Broker and worker share one
// child process (every case in a queue of its own), so a fault that killed it would show.
await memoryScenarios(t, ATTRIBUTABLE_FAULTS);
