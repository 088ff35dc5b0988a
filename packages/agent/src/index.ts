export * from './guard/index.js';
export * from './loop.js';
export * from './models.js';
export * from './tools.js';
