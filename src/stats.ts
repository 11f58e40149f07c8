/** Small measurement helpers for `stats()`: a sample ring with percentiles and a per-second rate. */

/** Keeps the last `capacity` samples; percentiles are computed on demand, never on the hot path. */
export class SampleRing {
  readonly #samples: Float64Array;
  #next = 0;
  #size = 0;

  constructor(capacity = 1024) {
    this.#samples = new Float64Array(capacity);
  }

  /** Records one sample. */
  add(value: number): void {
    this.#samples[this.#next] = value;
    this.#next = (this.#next + 1) % this.#samples.length;
    if (this.#size < this.#samples.length) this.#size++;
  }

  /** p50/p90/p99/max of the retained samples (zeros when empty). */
  percentiles(): { p50: number; p90: number; p99: number; max: number; samples: number } {
    if (this.#size === 0) return { p50: 0, p90: 0, p99: 0, max: 0, samples: 0 };
    const sorted = this.#samples.slice(0, this.#size).sort();
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
    return { p50: at(0.5), p90: at(0.9), p99: at(0.99), max: sorted[sorted.length - 1]!, samples: this.#size };
  }
}

/** Messages per second over the last whole second, from a counter sampled once a second. */
export class RateMeter {
  #last = 0;
  #lastAt = performance.now();
  #rate = 0;
  readonly #timer: NodeJS.Timeout;

  constructor(read: () => number) {
    this.#timer = setInterval(() => {
      const now = performance.now();
      const value = read();
      this.#rate = ((value - this.#last) * 1000) / (now - this.#lastAt);
      this.#last = value;
      this.#lastAt = now;
    }, 1000);
    this.#timer.unref();
  }

  get perSecond(): number {
    return Math.round(this.#rate);
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
