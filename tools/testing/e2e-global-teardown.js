module.exports = async function globalTeardown() {
  await globalThis.__ONCE_E2E__?.stop();
};
