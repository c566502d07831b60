// Issue 17: `dlq redrive` of an ordered handler's FIFO DLQ. Expected: the copy keeps its group and
// gets a deduplication id of its own (SQS refuses a FIFO send without a group; the original
// deduplication id may still be in the source queue's 5-minute window). Broke: copies had neither.
import t from 'tap';
import { copyEntry } from '../../dist/dlq/ops.js';

t.test('a FIFO DLQ message is copied with its group and a deduplication id of its own', async (t) => {
  const e = copyEntry({ MessageId: 'm-1', Body: '{}', Attributes: { MessageGroupId: 'order-7', MessageDeduplicationId: 'ev-1', SequenceNumber: '1' } }, '0');
  t.equal(e.MessageGroupId, 'order-7');
  t.equal(e.MessageDeduplicationId, 'm-1');
});

t.test('a standard queue message keeps a fair-queue group, without a deduplication id; none without a group', async (t) => {
  const fair = copyEntry({ MessageId: 'm-2', Body: '{}', Attributes: { MessageGroupId: 'tenant-1' } }, '0');
  t.equal(fair.MessageGroupId, 'tenant-1');
  t.equal(fair.MessageDeduplicationId, undefined);
  const plain = copyEntry({ MessageId: 'm-3', Body: '{}', Attributes: {} }, '0');
  t.equal(plain.MessageGroupId, undefined);
  t.equal(plain.MessageDeduplicationId, undefined);
});
