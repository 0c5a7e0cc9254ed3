// @segment/analytics-node as a Node.js backend uses it, pointed at Retain ingest:
//   INGEST=http://127.0.0.1:8080 WRITE_KEY=wk_... USER_ID=u-1 node analytics-node.mjs
// Exits non-zero if the SDK reports any delivery error.
import { Analytics } from '@segment/analytics-node';

const { INGEST, WRITE_KEY, USER_ID } = process.env;
const analytics = new Analytics({ writeKey: WRITE_KEY, host: INGEST });
const errors = [];
analytics.on('error', (error) => errors.push(error));

const user = USER_ID;
analytics.identify({ userId: user, traits: { email: `${user}@shop.example`, name: 'Ada Lovelace' } });
analytics.track({
  userId: user,
  event: 'Product Viewed',
  properties: { product_id: 'sku-42', name: 'Linen shirt', price: 39.5, currency: 'EUR' },
});
analytics.page({ userId: user, category: 'Shop', name: 'Linen shirt' });
await analytics.closeAndFlush({ timeout: 20000 });

if (errors.length) {
  console.error('delivery failed:', errors.map((e) => e.reason ?? e.code ?? e));
  process.exit(1);
}
console.log('delivered');
