import { Command, Option } from 'clipanion';
import { renderTable } from '../../output/table.js';
import { ServiceCommand } from '../../service-command.js';

/** `stem tasks list`: the registered tasks and their options. */
export class TasksListCommand extends ServiceCommand {
  static override paths = [['tasks', 'list']];
  static override usage = Command.Usage({
    category: 'Tasks',
    description: 'List the tasks of the config and --registry with their options',
    examples: [['Tasks of a registry module', '$0 tasks list --registry tasks.ts']],
  });

  json = Option.Boolean('--json', false, { description: 'Print JSON' });

  async run(): Promise<number> {
    const config = await this.loadConfig(this.serviceOverrides());
    const tasks = [...(config.tasks ?? [])].sort((a, b) => a.name.localeCompare(b.name));
    if (this.json) this.printJson(tasks.map((task) => ({ name: task.name, options: task.options })));
    else {
      const rows = tasks.map((task) => [
        task.name,
        task.options.queue ?? config.defaultQueue ?? 'default',
        task.options.priority ?? 5,
        task.options.maxRetries ?? 0,
        String(task.options.timeLimit ?? ''),
      ]);
      this.context.stdout.write(`${renderTable(this.context.stdout, ['task', 'queue', 'priority', 'maxRetries', 'timeLimit'], rows)}\n`);
    }
    return 0;
  }
}
