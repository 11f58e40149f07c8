/**
 * Histogram values kept until the scrape (src/observe/deferred-observations.ts): a real
 * prom-client registry sees every value, with the exact sum and buckets, whether they
 * were handed over at the scrape or because the buffer filled up first.
 */
import { Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { DeferredObservations } from '../../src/observe/deferred-observations.js';

function histogramWith(deferred: DeferredObservations): Registry {
  const registry = new Registry();
  deferred.attach(new Histogram({ name: 'delay_seconds', help: 'h', buckets: [0.01, 0.1], registers: [registry], collect: () => deferred.flush() }));
  return registry;
}

describe('deferred histogram observations', () => {
  it('reach the histogram when the registry is scraped', async () => {
    const deferred = new DeferredObservations(8);
    const registry = histogramWith(deferred);
    for (const value of [0.005, 0.05, 0.5]) deferred.add(value);
    const text = await registry.metrics();
    expect(text).toMatch(/^delay_seconds_bucket\{le="0.01"\} 1$/m);
    expect(text).toMatch(/^delay_seconds_bucket\{le="0.1"\} 2$/m);
    expect(text).toMatch(/^delay_seconds_count 3$/m);
    expect(text).toMatch(/^delay_seconds_sum 0.555$/m);
    // Handed over once: a second scrape counts them once.
    expect(await registry.metrics()).toMatch(/^delay_seconds_count 3$/m);
  });

  it('hands values over when the buffer is full, losing none', async () => {
    const deferred = new DeferredObservations(4);
    const registry = histogramWith(deferred);
    for (let i = 0; i < 10; i++) deferred.add(1);
    expect(await registry.metrics()).toMatch(/^delay_seconds_count 10$/m);
  });
});
