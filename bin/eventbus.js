#!/usr/bin/env node
// The CLI is interactive: the SDK's Node 20 end-of-support notice is noise here (the supervisor keeps it).
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';
const { main } = await import('../dist/cli/index.js');
await main(process.argv.slice(2));
