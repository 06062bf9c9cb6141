// A plugin: moves messages published under one topic prefix to another. Load it from the
// server's configuration:
//   plugins:
//     - module: ./examples/topic-rewrite-plugin.mjs
//       options: { from: "legacy/", to: "v2/" }
// or in code: await broker.use(topicRewrite, { from: 'legacy/', to: 'v2/' })
export default {
  name: 'topic-rewrite',
  setup(broker, options) {
    const { from, to } = options ?? {};
    if (typeof from !== 'string' || typeof to !== 'string') throw new TypeError('topic-rewrite needs { from, to } strings');
    let rewritten = 0;
    const remove = broker.intercept('publish', (message) => {
      if (!message.topic.startsWith(from)) return message;
      rewritten++;
      return { ...message, topic: to + message.topic.slice(from.length) };
    }, { name: 'topic-rewrite' });
    return {
      close() {
        remove();
        console.log(`topic-rewrite: ${rewritten} messages rewritten`);
      },
    };
  },
};
