// The benchmark's messages: what an SNS subscription delivers to SQS (not raw delivery): the notification
// envelope with the CloudEvent in Message and the `event-type` attribute in MessageAttributes;
// ~300 bytes of event data.
import { randomBytes, randomUUID } from 'node:crypto';

export const TOPIC = 'bench-events';
export const TOPIC_ARN = `arn:aws:sns:us-east-1:000000000000:${TOPIC}`;
export const EVENT_TYPE = 'ORDER_PLACED';
const SIGNATURE = randomBytes(256).toString('base64'); // as long as a real SignatureVersion 1 signature

export function eventData(i) {
  return {
    orderId: `ord_${String(i).padStart(10, '0')}`,
    customer: { id: `cus_${randomBytes(6).toString('hex')}`, email: `customer${i}@example.com`, tier: 'gold' },
    items: [
      { sku: 'SKU-12345-XL', qty: 2, priceCents: 1999 },
      { sku: 'SKU-67890-M', qty: 1, priceCents: 4999 },
    ],
    currency: 'EUR',
    totalCents: 8997,
    note: 'Leave the parcel at the reception desk, please ring twice',
  };
}

export function cloudEvent(id, data) {
  return JSON.stringify({
    specversion: '1.0',
    id,
    source: 'orders-service',
    type: EVENT_TYPE,
    time: new Date().toISOString(),
    datacontenttype: 'application/json',
    data,
  });
}

export function snsEnvelope(message) {
  return JSON.stringify({
    Type: 'Notification',
    MessageId: randomUUID(),
    TopicArn: TOPIC_ARN,
    Message: message,
    Timestamp: new Date().toISOString(),
    SignatureVersion: '1',
    Signature: SIGNATURE,
    SigningCertURL: 'https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000000000000000000000.pem',
    UnsubscribeURL: `https://sns.us-east-1.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=${TOPIC_ARN}:${randomUUID()}`,
    MessageAttributes: { 'event-type': { Type: 'String', Value: EVENT_TYPE } },
  });
}

/** Message i of a preload: { id, body }. */
export function preloadMessage(i) {
  const id = randomUUID();
  return { id, body: snsEnvelope(cloudEvent(id, eventData(i))) };
}
