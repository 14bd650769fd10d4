// Hardhat 2 on Node 20, compiling offline with the npm `solc` package (solcjs).
// Compiler version and settings come from contracts/solc-settings.json, the file the Python
// chain layer reads too, so both produce the same bytecode.
require("@nomicfoundation/hardhat-ethers");
require("@nomicfoundation/hardhat-chai-matchers");
const { subtask } = require("hardhat/config");
const { TASK_COMPILE_SOLIDITY_GET_SOLC_BUILD } = require("hardhat/builtin-tasks/task-names");
const solcSettings = require("./contracts/solc-settings.json");

subtask(TASK_COMPILE_SOLIDITY_GET_SOLC_BUILD, async (args, hre, runSuper) => {
  if (args.solcVersion !== solcSettings.version) return runSuper();
  const solc = require("solc");
  return {
    compilerPath: require.resolve("solc/soljson.js"),
    isSolcJs: true,
    version: args.solcVersion,
    longVersion: solc.version(),
  };
});

/** @type import('hardhat/config').HardhatUserConfig */
module.exports = {
  solidity: { version: solcSettings.version, settings: solcSettings.settings },
  paths: {
    sources: "./contracts",
    tests: "./tests/contracts",
    cache: "./.cache/hardhat",
    artifacts: "./.cache/hardhat-artifacts",
  },
  networks: { hardhat: { hardfork: "cancun" } },
  mocha: { timeout: 60000 },
};
