module.exports = async function globalTeardown() {
  await globalThis.__ONCE_EMULATORS__?.stop();
};
