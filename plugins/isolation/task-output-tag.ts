/**
 * Prefixes each line a child writes to `stream` (console.log, console.error, process.stdout.write)
 * with the tag of the task it runs, `name[id] `, as the worker's own log lines name their task, so
 * that the output of several children on one worker's stdout can be told apart. Lines written
 * while no task runs (a setup module, a timer after the task) stay as they are. The child runs one
 * task at a time, so the task running now is the one a line belongs to.
 */
export function tagTaskOutput(stream: NodeJS.WriteStream, currentTag: () => string | undefined): void {
  const write = stream.write.bind(stream) as (chunk: unknown, encoding?: unknown, callback?: unknown) => boolean;
  let atLineStart = true;
  stream.write = ((chunk: unknown, encoding?: unknown, callback?: unknown): boolean => {
    const tag = currentTag();
    if (typeof chunk !== 'string' || chunk === '') {
      // Bytes pass as they are (a handler writing binary output means it); only the line state follows.
      if (chunk instanceof Uint8Array && chunk.length > 0) atLineStart = chunk[chunk.length - 1] === 0x0a;
      return write(chunk, encoding, callback);
    }
    let text = chunk;
    if (tag !== undefined) {
      // Every line start inside the chunk, but not after its final newline: that line has not begun.
      text = text.replace(/\n(?=.)/gs, `\n${tag}`);
      if (atLineStart) text = tag + text;
    }
    atLineStart = chunk.endsWith('\n');
    return write(text, encoding, callback);
  }) as typeof stream.write;
}
