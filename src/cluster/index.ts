/** Several Petrel nodes acting as one broker, over Redis (docs/cluster.md). */
export { ClusterNode, type ClusterNodeOptions, type ClusterStats } from './node.js';
