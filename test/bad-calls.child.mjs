// One bad call of test/bad-calls.test.ts, in a process of its own: argv[2] is the prelude and
// the call (plain JS). Prints one line `RESULT {json}` describing what was thrown, then exits.
const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor;
const body = process.argv[2];
let result;
try {
  const value = await new AsyncFunction(body)();
  result = { threw: false, value: String(value).slice(0, 200) };
} catch (e) {
  result = { threw: true, isError: e instanceof Error, name: e?.constructor?.name ?? typeof e, message: e instanceof Error ? e.message : String(e) };
}
// Exit explicitly: a call may leave a timer or a worker behind, which is not what is tested.
process.stdout.write(`RESULT ${JSON.stringify(result)}\n`, () => process.exit(0));
