// What every test page does once its SDK is set up: a shopper identifies, views a product and a
// page. The page's URL names the ingest to use, the write key and the user:
//   ?ingest=http://127.0.0.1:8080&key=wk_...&user=u-1
// The test reads window.storefront: `done` once every call was made, `errors` the SDK reported.
window.storefront = { done: false, errors: [] };

function storefrontParams() {
  const query = new URLSearchParams(location.search);
  return { ingest: query.get('ingest'), key: query.get('key'), user: query.get('user') };
}

// `sdk` is analytics.js's or RudderStack's analytics object: both have these three calls.
async function shop(sdk, user) {
  await sdk.identify(user, { email: user + '@shop.example', name: 'Ada Lovelace' });
  await sdk.track('Product Viewed', {
    product_id: 'sku-42', name: 'Linen shirt', price: 39.5, currency: 'EUR',
  });
  await sdk.page('Shop', 'Linen shirt');
  window.storefront.done = true;
}

function storefrontFailed(error) {
  window.storefront.errors.push(String(error && (error.reason || error.message || error)));
}
window.addEventListener('unhandledrejection', (event) => storefrontFailed(event.reason));
