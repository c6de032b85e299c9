// The Redis plugin on a real 3-master, 3-replica Redis Cluster (ports 7100-7105), started and stopped here.
import t from 'tap';
import { RedisClusterTopology } from '../helpers/redis-topologies.js';
import { contractSuites, failoverSuites, requireRedisBinaries, workloadSuites, type TopologyUnderTest } from './topology-suites.js';

t.setTimeout(900_000);

if (requireRedisBinaries(t)) {
  const cluster = await RedisClusterTopology.start({ basePort: 7100, masters: 3 });
  t.teardown(() => cluster.stop());
  const topology: TopologyUnderTest = {
    label: 'cluster',
    url: cluster.url,
    failovers: [
      ['CLUSTER FAILOVER on a replica', () => cluster.failover()],
      ['SIGKILL of a master', () => cluster.killMaster()],
    ],
  };
  await contractSuites(t, topology);
  await workloadSuites(t, topology);
  await failoverSuites(t, topology);
}
