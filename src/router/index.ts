/** The router: subscription trie, shared subscription groups and the retained message index. */
export { TopicTree, type TopicTreeOptions } from './topic-tree.js';
export { SharedGroup, type ShareStrategy, type SharedGroupState } from './shared-groups.js';
export { RetainedIndex } from './retained-index.js';
