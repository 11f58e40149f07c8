/**
 * The measuring side of a cluster-bench node process (batchcast or Socket.IO): answers
 * `measure-start` / `measure-stop` from the parent with the main thread's cost over the
 * window (event-loop utilization, schedstat CPU, event-loop delay) and `stop` by closing.
 */
import { monitorEventLoopDelay, performance, type IntervalHistogram } from 'node:perf_hooks';
import { mainThreadSched } from './stats.js';

export type ToClusterNode = { type: 'measure-start' } | { type: 'measure-stop' } | { type: 'stop' };

export interface NodeMeasure {
  type: 'measure';
  windowMs: number;
  elu: number;
  /** Main-thread CPU time in the window (schedstat), µs. */
  mainCpuUs: number;
  published: number;
  framesSent: number;
  eldP99Ms: number;
  eldMaxMs: number;
}

/** Running totals of the node: messages it published and frames it wrote to sockets. */
export interface NodeCounts {
  published: number;
  framesSent: number;
}

/** Answers the parent's measurement requests; `stop` calls `close` and exits. */
export function answerMeasurements(counts: () => NodeCounts, close: () => Promise<void>): void {
  let eld: IntervalHistogram | null = null;
  let start = { at: 0, elu: performance.eventLoopUtilization(), sched: mainThreadSched(), ...counts() };
  process.on('message', (message: ToClusterNode) => {
    if (message.type === 'measure-start') {
      eld = monitorEventLoopDelay({ resolution: 10 });
      eld.enable();
      start = { at: performance.now(), elu: performance.eventLoopUtilization(), sched: mainThreadSched(), ...counts() };
    } else if (message.type === 'measure-stop' && eld !== null) {
      eld.disable();
      const sched = mainThreadSched();
      const now = counts();
      const measure: NodeMeasure = {
        type: 'measure', windowMs: performance.now() - start.at, elu: performance.eventLoopUtilization(start.elu).utilization,
        mainCpuUs: sched === null || start.sched === null ? Number.NaN : (sched.runNs - start.sched.runNs) / 1000,
        published: now.published - start.published, framesSent: now.framesSent - start.framesSent,
        eldP99Ms: eld.percentile(99) / 1e6, eldMaxMs: eld.max / 1e6,
      };
      process.send!(measure);
    } else if (message.type === 'stop') {
      void close().then(() => process.exit(0));
    }
  });
}
