/** A batchcast/client that records what it gets: messages, gaps, recoveries. Reconnects fast (20-100 ms). */
import { connect, type ClientMessage, type ClientOptions, type Gap, type Recovered } from '../../src/client/index.js';

/** Connects to `url` and records; pushes its close onto `cleanups`. */
export function follow(url: string, options: ClientOptions, cleanups: (() => unknown)[]) {
  const client = connect(url, { reconnect: { initialDelayMs: 20, maxDelayMs: 100 }, ...options });
  cleanups.push(() => client.close());
  const messages: ClientMessage[] = [];
  const gaps: Gap[] = [];
  const recovered: Recovered[] = [];
  client.on('message', (m) => messages.push(m));
  client.on('gap', (g) => gaps.push(g));
  client.on('recovered', (r) => recovered.push(r));
  return { client, messages, gaps, recovered };
}
