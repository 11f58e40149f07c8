// Test fixture: the real built encoder, but a batch whose first message is { delayMs: N }
// finishes N ms late. With two workers this forces batches to complete out of order.
import encode from '../../dist/workers/encode.js';
// Batches of plain values arrive packed (see src/encode/handoff.ts): unpack to look for the marker.
import { receiveHandoff } from '../../dist/src/encode/handoff.js';

export default async function delayedEncode(task) {
  const first = receiveHandoff(task).task.items[0];
  if (first !== null && typeof first === 'object' && typeof first.delayMs === 'number') {
    await new Promise((resolve) => setTimeout(resolve, first.delayMs));
  }
  return encode(task);
}
