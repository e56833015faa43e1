#!/usr/bin/env node
// Compiles the demo contracts with solcjs (standard JSON) and writes one
// <ContractName>.json per contract: {contractName, abi, bytecode,
// methodIdentifiers, events, compiler}. `events` maps each event signature to
// its topic0 (keccak256), so tests need no keccak of their own.
//
// usage: node compile.js SOLC_PREFIX EVM_VERSION OUT_DIR FILE.sol...
//   SOLC_PREFIX  the `npm ci --prefix` directory holding node_modules/solc
'use strict';
const fs = require('fs');
const path = require('path');

const [solcPrefix, evmVersion, outDir, ...files] = process.argv.slice(2);
if (!solcPrefix || !evmVersion || !outDir || files.length === 0) {
  console.error('usage: node compile.js SOLC_PREFIX EVM_VERSION OUT_DIR FILE.sol...');
  process.exit(2);
}
const solc = require(path.join(path.resolve(solcPrefix), 'node_modules', 'solc'));
const { keccak256 } = require(path.join(path.resolve(solcPrefix), 'node_modules', 'js-sha3'));

const sources = {};
for (const f of files) sources[path.basename(f)] = { content: fs.readFileSync(f, 'utf8') };

const input = {
  language: 'Solidity',
  sources,
  settings: {
    evmVersion,
    optimizer: { enabled: true, runs: 200 },
    outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object', 'evm.methodIdentifiers'] } },
  },
};
const output = JSON.parse(solc.compile(JSON.stringify(input)));

let failed = false;
for (const e of output.errors || []) {
  console.error(e.formattedMessage || e.message);
  if (e.severity === 'error') failed = true;
}
if (failed) process.exit(1);

// Canonical ABI type, expanding tuples: (uint256,address)[] etc.
function canonical(p) {
  if (p.type.startsWith('tuple')) {
    return '(' + p.components.map(canonical).join(',') + ')' + p.type.slice('tuple'.length);
  }
  return p.type;
}

fs.mkdirSync(outDir, { recursive: true });
let count = 0;
for (const [file, contracts] of Object.entries(output.contracts || {})) {
  for (const [name, c] of Object.entries(contracts)) {
    const events = {};
    for (const item of c.abi) {
      if (item.type !== 'event') continue;
      const sig = `${item.name}(${item.inputs.map(canonical).join(',')})`;
      events[sig] = '0x' + keccak256(sig);
    }
    const artifact = {
      contractName: name,
      sourceFile: file,
      abi: c.abi,
      bytecode: '0x' + c.evm.bytecode.object,
      methodIdentifiers: c.evm.methodIdentifiers,
      events,
      compiler: { solc: solc.version(), evmVersion, optimizerRuns: 200 },
    };
    fs.writeFileSync(path.join(outDir, `${name}.json`), JSON.stringify(artifact, null, 2) + '\n');
    count++;
  }
}
console.error(`compiled ${count} contracts with solc ${solc.version()} (evm ${evmVersion})`);
