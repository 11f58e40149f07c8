/** `batchcast tail <url> <channels…>`: subscribe and print throughput once a second. */
import { connect } from '../client/index.js';

export interface TailOptions {
  url: string;
  channels: string[];
  /** Print one JSON object per line instead of text. */
  json: boolean;
  /** Stop after this many seconds (0: run until interrupted). */
  durationSeconds: number;
  /** Also print every message. */
  messages: boolean;
}

/** Runs the tail; resolves when it stops. */
export async function tail(options: TailOptions): Promise<void> {
  const client = connect(options.url, { channels: options.channels });
  const stats = client.stats;
  let last = { ...stats };
  let lastAt = performance.now();
  const startedAt = lastAt;

  client.on('open', () => !options.json && console.error(`connected to ${options.url}, channels ${options.channels.join(', ')}`));
  client.on('close', ({ code, willReconnect }) => !options.json && console.error(`disconnected (code ${code})${willReconnect ? ', reconnecting' : ''}`));
  client.on('error', (error) => console.error(`error: ${printable(error.message)}`));
  client.on('gap', (gap) => {
    if (options.json) return;
    if (gap.reason === 'epoch') console.error(printable(`gap on ${gap.channel}: the server's history started over (epoch ${gap.epoch}); going on from seq ${gap.received}`));
    else console.error(printable(`gap on ${gap.channel} (${gap.reason}): ${gap.missed} messages missed (expected seq ${gap.expected}, got ${gap.received})`));
  });
  client.on('recovered', (r) => !options.json && console.error(printable(`recovered ${r.messages} messages on ${r.channel} (seq ${r.since}..${r.to - 1})`)));
  client.on('notice', (notice) => {
    if (notice.op === 'error') console.error(`server: ${printable(String(notice.code))}: ${printable(String(notice.message))}`);
  });
  if (options.messages) client.on('message', (m) => console.log(JSON.stringify(m)));

  const report = () => {
    const now = performance.now();
    const seconds = (now - lastAt) / 1000;
    const line = {
      t: Math.round((now - startedAt) / 1000),
      messagesPerSecond: Math.round((stats.messages - last.messages) / seconds),
      framesPerSecond: Math.round((stats.frames - last.frames) / seconds),
      wireBytesPerSecond: Math.round((stats.wireBytes - last.wireBytes) / seconds),
      compressionRatio: stats.wireBytes === 0 ? 1 : Number((stats.rawBytes / stats.wireBytes).toFixed(2)),
      messages: stats.messages,
      gaps: stats.gaps,
      recovered: stats.recovered,
    };
    last = { ...stats };
    lastAt = now;
    if (options.json) console.log(JSON.stringify(line));
    else console.log(`${String(line.t).padStart(4)}s  ${String(line.messagesPerSecond).padStart(8)} msg/s  ${String(line.framesPerSecond).padStart(5)} frames/s  ${formatBytes(line.wireBytesPerSecond).padStart(10)}/s  ratio ${line.compressionRatio}x  total ${line.messages}  gaps ${line.gaps}`);
  };
  const timer = setInterval(report, 1000);

  await new Promise<void>((resolve) => {
    const stop = () => {
      clearInterval(timer);
      client.close();
      resolve();
    };
    if (options.durationSeconds > 0) setTimeout(stop, options.durationSeconds * 1000);
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
}

/** Text from the server, safe for a terminal: control characters (newlines, escape sequences) shown as \xNN. */
function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(2)} MiB`;
}
