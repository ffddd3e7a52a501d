// Runs in every test worker. Tests that compute synchronously (a VGG forward, say)
// never let vitest's worker read its messages: awaiting a finished test only runs
// microtasks. A file of them in a row can outlast the 60 s an RPC to the main
// process may take, which then fails as "Timeout calling onTaskUpdate". One turn
// of the event loop before each test lets the replies in.
import { beforeEach } from 'vitest';

beforeEach(() => new Promise<void>((resolve) => setImmediate(resolve)));
