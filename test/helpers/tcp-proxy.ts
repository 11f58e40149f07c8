/** A TCP proxy on 127.0.0.1 that a test can cut (every connection through it dies) or close to new connections. */
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

export class TcpProxy {
  readonly port: number;
  /** Where new connections go (change it to move clients to another server). */
  target: number;
  /** Added latency, each way, in ms (0: none). Chunks keep their order. */
  delayMs = 0;
  /** Connections cut so far. */
  cuts = 0;
  readonly #server: Server;
  readonly #pairs = new Set<[Socket, Socket]>();
  #refusing = false;

  private constructor(server: Server, target: number) {
    this.#server = server;
    this.port = (server.address() as AddressInfo).port;
    this.target = target;
  }

  /** Starts a proxy to 127.0.0.1:`targetPort`. */
  static async start(targetPort: number): Promise<TcpProxy> {
    const server = createServer();
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    const proxy = new TcpProxy(server, targetPort);
    server.on('connection', (client) => proxy.#accept(client));
    return proxy;
  }

  /** Destroys every connection through the proxy, both sides, at once (like a proxy restart). */
  cut(): void {
    for (const [client, upstream] of this.#pairs) {
      client.destroy();
      upstream.destroy();
      this.cuts++;
    }
    this.#pairs.clear();
  }

  /** While refusing, new connections are closed at once. */
  refuse(refusing: boolean): void {
    this.#refusing = refusing;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise((resolve) => this.#server.close(resolve));
  }

  #accept(client: Socket): void {
    client.on('error', () => {});
    if (this.#refusing) {
      client.destroy();
      return;
    }
    const upstream = connect(this.target, '127.0.0.1');
    upstream.on('error', () => {});
    const pair: [Socket, Socket] = [client, upstream];
    this.#pairs.add(pair);
    const done = () => {
      this.#pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.once('close', done);
    upstream.once('close', done);
    if (this.delayMs === 0) {
      client.pipe(upstream);
      upstream.pipe(client);
      return;
    }
    const delay = this.delayMs;
    // Timers of equal delay fire in the order they were set: the byte stream stays in order.
    client.on('data', (chunk: Buffer) => setTimeout(() => upstream.write(chunk), delay));
    upstream.on('data', (chunk: Buffer) => setTimeout(() => client.write(chunk), delay));
  }
}
