// Where this device's crypto state lives in the browser: the library's two
// IndexedDB databases per store, the store's key and the inbox position in
// localStorage. Free of the library, so logging out can delete a store
// without loading it.

/** The IndexedDB databases the library makes for a store name. */
export const STORE_DATABASES = ['::matrix-sdk-crypto', '::matrix-sdk-crypto-meta'];

/** The localStorage entry of a store's key. */
export const keyEntry = (name: string) => `hark:${name}:key`;

/** The localStorage entry of the last inbox id handed to the machine (acknowledged at the next read). */
export const ackEntry = (name: string) => `hark:${name}:inbox-ack`;

/**
 * Delete an IndexedDB database. `blocked`: what to do while another
 * connection (another tab) holds it open: `fail` at once, or `wait` until
 * it closes (the browser deletes it then).
 */
export function deleteDatabase(name: string, blocked: 'fail' | 'wait'): Promise<void> {
  return new Promise((resolve, reject) => {
    const request = indexedDB.deleteDatabase(name);
    request.onsuccess = () => resolve();
    request.onerror = () => reject(request.error ?? new Error(`could not delete ${name}`));
    if (blocked === 'fail') request.onblocked = () => reject(new Error('the encryption store is open in another tab'));
  });
}

/**
 * Forget a store for good (logging out): its key first, which alone makes
 * it unreadable, then its databases (once no connection holds them).
 */
export async function deleteStore(name: string): Promise<void> {
  localStorage.removeItem(keyEntry(name));
  localStorage.removeItem(ackEntry(name));
  await Promise.all(STORE_DATABASES.map((suffix) => deleteDatabase(`${name}${suffix}`, 'wait')));
}
