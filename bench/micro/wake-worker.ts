// Piscina worker for wake.ts: returns its task, so the timing is the hand-off alone.
export default function echo(task: unknown): unknown {
  return task;
}
