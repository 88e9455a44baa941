// The package's ES-module entry: the CommonJS build, re-exported by name (Node reads the names
// from dist/lib/index.js), so `import { SmolVLAPolicy } from 'smolvla-node'` and `require()` give
// the same objects.
export * from '../dist/lib/index.js';
