/** A synthetic ticker feed so a new user sees live traffic at once (`batchcast serve --demo`). */
import type { Broadcaster } from '../broadcaster.js';

const SYMBOLS = ['BTC-USD', 'ETH-USD', 'SOL-USD', 'DOGE-USD'];
const TICK_MS = 10;

/** Publishes about `ratePerSecond` trade messages spread over `ticker.<symbol>` channels and `trades`. Returns a stop function. */
export function startDemoFeed(broadcaster: Broadcaster, ratePerSecond: number): () => void {
  const prices = new Map(SYMBOLS.map((symbol, i) => [symbol, [43000, 2300, 95, 0.08][i]!]));
  let id = 0;
  let carry = 0;
  const timer = setInterval(() => {
    carry += (ratePerSecond * TICK_MS) / 1000;
    const count = Math.floor(carry);
    carry -= count;
    for (let i = 0; i < count; i++) {
      const symbol = SYMBOLS[id % SYMBOLS.length]!;
      const price = prices.get(symbol)! * (1 + (Math.random() - 0.5) * 0.0004);
      prices.set(symbol, price);
      const trade = {
        type: 'trade', symbol, price: Number(price.toPrecision(8)), size: Number((Math.random() * 2).toFixed(4)),
        side: Math.random() < 0.5 ? 'buy' : 'sell', ts: Date.now(), id: ++id,
      };
      broadcaster.publish(`ticker.${symbol}`, trade);
      broadcaster.publish('trades', trade);
    }
  }, TICK_MS);
  return () => clearInterval(timer);
}
