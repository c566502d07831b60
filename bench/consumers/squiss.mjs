// squiss-ts with maxInFlight = C. Defaults otherwise (receiveBatchSize 10, deleteBatchSize 10), except
// deleteWaitMs: its default of 2,000 ms only delays the last partial delete batch, which would add up to
// 2 s to every drain and measure the timer rather than the library.
import { Squiss } from 'squiss-ts';
import { handle, makeAggregatedClient, onStop, opts } from './common.mjs';

const squiss = new Squiss({
  SQS: makeAggregatedClient(),
  queueUrl: opts.queueUrl,
  maxInFlight: opts.cap,
  receiveWaitTimeSecs: 20,
  deleteWaitMs: 50,
});
squiss.on('message', (message) => {
  try {
    const r = handle(message.raw.Body);
    if (r && typeof r.then === 'function') r.then(() => message.del(), () => message.release());
    else message.del();
  } catch {
    message.release();
  }
});
squiss.on('error', (err) => process.stderr.write(`squiss error: ${err?.message ?? err}\n`));
squiss.on('delError', (err) => process.stderr.write(`squiss delError: ${JSON.stringify(err)}\n`));
await squiss.start();

onStop(() => squiss.stop(false, 1000));
