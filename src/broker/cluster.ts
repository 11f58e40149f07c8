/** Makes a broadcaster a node of a cluster: the Redis connections and the relay, wired to the local pipeline. */
import type { Cluster as RedisCluster, Redis } from 'ioredis';
import type { ChannelState, ChannelTable } from '../channels.js';
import type { ResolvedConfig } from '../config.js';
import { BrokerError, InvalidConfigError } from '../errors.js';
import { writeFrame, type FanoutOptions } from '../fanout/fanout.js';
import { noticeFrame, type Notice } from '../fanout/notice.js';
import type { DeflateInfo } from '../encode/task.js';
import { RedisBroker } from './redis.js';
import { ClusterRelay } from './relay.js';

export interface Cluster {
  broker: RedisBroker;
  relay: ClusterRelay;
}

export interface ClusterDeps {
  channels: ChannelTable;
  forgetHistory: (state: ChannelState) => void;
  deliver: (state: ChannelState, firstSeq: number, count: number, frame: Buffer, deflate: DeflateInfo | null) => void;
  onSendError: FanoutOptions['onSendError'];
  /** Redis went away, or a batch could not reach it (then its messages are a gap for every node's subscribers). */
  onBrokerError: (error: BrokerError) => void;
}

/** Connects to Redis (`redis`: a URL or seed URLs, or an ioredis client or Cluster to copy settings from) and links the pipeline to it. */
export function createCluster(config: ResolvedConfig, redis: string | Redis | RedisCluster, deps: ClusterDeps): Cluster {
  if (typeof redis === 'string' && redis.includes(',') && !config.redisCluster) {
    throw new InvalidConfigError('redisUrl', 'several URLs are the seeds of a Redis Cluster: set redisCluster (BATCHCAST_REDIS_CLUSTER=true) too');
  }
  const broker = new RedisBroker({
    redis,
    cluster: config.redisCluster,
    prefix: config.redisPrefix,
    maxPending: config.redisMaxPending,
    streamLength: config.redisStreamLength,
    keyTtlMs: config.redisKeyTtlMs,
    connectTimeoutMs: config.redisConnectTimeoutMs,
  });
  const relay = new ClusterRelay({
    broker,
    channels: deps.channels,
    forgetHistory: deps.forgetHistory,
    deliver: deps.deliver,
    // Redis lost the channel's data: its subscribers cannot relate old positions to new ones; tell them where it stands.
    epochChanged: (state, _oldEpoch, oldNextSeq) => {
      const notice: Notice = {
        op: 'recovery', channel: state.name, status: 'epoch', epoch: state.epoch, since: oldNextSeq, from: state.nextSeq, to: state.nextSeq, missed: null,
      };
      for (const connection of state.subscribers) {
        connection.lags?.delete(state.name);
        const frame = noticeFrame(notice, connection.format);
        if (frame !== null) writeFrame(connection, frame, deps.onSendError);
      }
    },
    dropped: (channel, messages, error) => {
      deps.onBrokerError(new BrokerError(`${messages} messages on "${channel}" did not reach Redis (${error.message}); subscribers will see the gap`, { cause: error }));
    },
  });
  broker.on('down', deps.onBrokerError);
  return { broker, relay };
}
