// The Redis plugin on a real master + replica watched by three sentinels (ports 7200-7201, 27200-27202), started and stopped here.
import t from 'tap';
import { RedisSentinelTopology } from '../helpers/redis-topologies.js';
import { contractSuites, failoverSuites, requireRedisBinaries, workloadSuites, type TopologyUnderTest } from './topology-suites.js';

t.setTimeout(900_000);

if (requireRedisBinaries(t)) {
  const sentinel = await RedisSentinelTopology.start({ masterPort: 7200, sentinelBasePort: 27200 });
  t.teardown(() => sentinel.stop());
  const topology: TopologyUnderTest = {
    label: 'sentinel',
    url: sentinel.url,
    failovers: [['SENTINEL FAILOVER', () => sentinel.failover()]],
  };
  await contractSuites(t, topology);
  await workloadSuites(t, topology);
  await failoverSuites(t, topology);
}
