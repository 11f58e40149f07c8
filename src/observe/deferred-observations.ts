/**
 * Observations for a prom-client Histogram, kept in a preallocated buffer and handed to
 * it in one loop when the registry is scraped (or the buffer is full). The release step
 * observes two histograms per batch, dozens of times a second: too rarely for V8 to
 * optimize `Histogram.observe` (label hashing, bucket search). On the 2-core VM two such
 * calls every 20 ms cost 38 µs p50, two stores here 17 µs (mostly the cold call itself);
 * in the scrape's loop the calls run hot: 1 000 values in 0.2-1 ms.
 */
import type { Histogram } from 'prom-client';

/** Values waiting for their histogram. */
export class DeferredObservations {
  readonly #values: Float64Array;
  #length = 0;
  #histogram: Histogram | null = null;

  /** At most `capacity` values wait; the next one hands them all over first. */
  constructor(capacity = 1024) {
    this.#values = new Float64Array(capacity);
  }

  /** The histogram that gets the values (set once it exists: its `collect` calls {@link flush}). */
  attach(histogram: Histogram): void {
    this.#histogram = histogram;
  }

  /** Records one observation. */
  add(value: number): void {
    if (this.#length === this.#values.length) this.flush();
    this.#values[this.#length++] = value;
  }

  /** Hands every waiting value to the histogram. */
  flush(): void {
    const histogram = this.#histogram;
    if (histogram === null) return;
    for (let i = 0; i < this.#length; i++) histogram.observe(this.#values[i]!);
    this.#length = 0;
  }
}
