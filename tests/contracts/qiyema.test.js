// Contract tests: every write's happy path, every role refusal, every custom error, events,
// and a gas table printed at the end.
const { expect } = require("chai");
const hre = require("hardhat");
const { ethers } = hre;
const { loadFixture } = require("@nomicfoundation/hardhat-network-helpers");

const Status = { None: 0, Active: 1, Abnormal: 2, Revoked: 3, Deregistered: 4 };
const gasTable = [];

async function gas(label, txPromise) {
  const tx = await txPromise;
  const receipt = await tx.wait();
  gasTable.push([label, Number(receipt.gasUsed)]);
  return receipt;
}

const usccHash = (uscc) => ethers.keccak256(ethers.toUtf8Bytes(`qiyema.uscc.v1:${uscc}`));
const b32 = (s) => ethers.encodeBytes32String(s);
// Interfaces that extend another declare only these functions themselves (ERC-165 ids leave out inherited ones).
const ownFunctions = { IRoleRegistry: ["REGISTRAR_ROLE", "NOTARY_ROLE", "issuerRole", "declareCompromised", "roleTerm", "heldRoleAt", "designateSuccessor", "successorOf", "isSameWriter"], IQiyema: ["version"] };

// OpenZeppelin-compatible Merkle tree: commutative keccak256 pair hashing, odd node promoted.
function merkle(leaves) {
  const hashPair = (a, b) =>
    BigInt(a) < BigInt(b) ? ethers.keccak256(ethers.concat([a, b])) : ethers.keccak256(ethers.concat([b, a]));
  const layers = [leaves.slice()];
  while (layers[layers.length - 1].length > 1) {
    const prev = layers[layers.length - 1];
    const next = [];
    for (let i = 0; i < prev.length; i += 2) next.push(i + 1 < prev.length ? hashPair(prev[i], prev[i + 1]) : prev[i]);
    layers.push(next);
  }
  const proof = (index) => {
    const path = [];
    for (let l = 0; l < layers.length - 1; l++) {
      const sibling = index ^ 1;
      if (sibling < layers[l].length) path.push(layers[l][sibling]);
      index >>= 1;
    }
    return path;
  };
  return { root: layers[layers.length - 1][0], proof };
}

async function deploy() {
  const [governor, registrar, notary, bank, inspector, stranger, issuerFood] = await ethers.getSigners();
  const Qiyema = await ethers.getContractFactory("Qiyema");
  const q = await Qiyema.deploy(governor.address);
  await q.waitForDeployment();
  await q.grantRole(await q.REGISTRAR_ROLE(), registrar.address);
  await q.grantRole(await q.NOTARY_ROLE(), notary.address);
  return { q, governor, registrar, notary, bank, inspector, stranger, issuerFood };
}

describe("RoleRegistry", function () {
  it("makes the deployer-named governor admin of every role", async function () {
    const { q, governor } = await loadFixture(deploy);
    expect(await q.hasRole(await q.GOVERNOR_ROLE(), governor.address)).to.equal(true);
    for (const r of ["REGISTRAR_ROLE", "NOTARY_ROLE"]) {
      expect(await q.getRoleAdmin(await q[r]())).to.equal(await q.GOVERNOR_ROLE());
    }
    expect(await q.getRoleAdmin(await q.issuerRole(b32("permit.food")))).to.equal(await q.GOVERNOR_ROLE());
  });

  it("has only roles that gate a write: no bank or inspector role without powers", async function () {
    const { q } = await loadFixture(deploy);
    expect(q.BANK_ROLE).to.equal(undefined);
    expect(q.INSPECTOR_ROLE).to.equal(undefined);
  });

  it("grants and revokes roles with events, governor only", async function () {
    const { q, governor, bank, stranger } = await loadFixture(deploy);
    const BANK = await q.issuerRole(b32("receipt.bank"));  // any role: here an issuer category's
    await expect(gas("grantRole", q.grantRole(BANK, bank.address)))
      .to.emit(q, "RoleGranted").withArgs(BANK, bank.address, governor.address);
    expect(await q.hasRole(BANK, bank.address)).to.equal(true);
    await expect(q.connect(stranger).grantRole(BANK, stranger.address))
      .to.be.revertedWithCustomError(q, "AccessControlUnauthorizedAccount")
      .withArgs(stranger.address, await q.GOVERNOR_ROLE());
    await expect(q.connect(bank).revokeRole(BANK, bank.address))
      .to.be.revertedWithCustomError(q, "AccessControlUnauthorizedAccount");
    await expect(gas("revokeRole", q.revokeRole(BANK, bank.address)))
      .to.emit(q, "RoleRevoked").withArgs(BANK, bank.address, governor.address);
    expect(await q.hasRole(BANK, bank.address)).to.equal(false);
  });

  it("derives one issuer role per category, and they are distinct", async function () {
    const { q, issuerFood } = await loadFixture(deploy);
    const food = await q.issuerRole(b32("permit.food"));
    const metrology = await q.issuerRole(b32("permit.metrology"));
    expect(food).to.not.equal(metrology);
    expect(food).to.equal(
      ethers.keccak256(ethers.AbiCoder.defaultAbiCoder().encode(["bytes32", "bytes32"], [b32("qiyema.issuer"), b32("permit.food")]))
    );
    await q.grantRole(food, issuerFood.address);
    expect(await q.hasRole(food, issuerFood.address)).to.equal(true);
    expect(await q.hasRole(metrology, issuerFood.address)).to.equal(false);
  });

  it("reports the role-registry interface", async function () {
    const { q } = await loadFixture(deploy);
    expect(await q.supportsInterface("0x7965db0b")).to.equal(true); // IAccessControl
    expect(await q.supportsInterface("0xffffffff")).to.equal(false);
  });

  it("answers ERC-165 for each of its interfaces and says its version", async function () {
    const { q } = await loadFixture(deploy);
    for (const name of ["IRoleRegistry", "IEnterpriseRegistry", "IAnchorLedger", "IRecordRegistry", "IQiyema"]) {
      const artifact = await hre.artifacts.readArtifact(name);
      const iface = new ethers.Interface(artifact.abi);
      // ERC-165: the XOR of the selectors the interface itself declares (not those it inherits)
      let id = 0n;
      for (const f of iface.fragments.filter(f => f.type === "function")) {
        if (!ownFunctions[name] || ownFunctions[name].includes(f.name)) id ^= BigInt(f.selector);
      }
      expect(await q.supportsInterface(ethers.toBeHex(id, 4)), name).to.equal(true);
    }
    expect(await q.version()).to.equal("1.6.0");
  });
});

describe("EnterpriseRegistry", function () {
  const A = usccHash("91350100M000100Y43");
  const B = usccHash("91110000600037341L");

  it("registers an enterprise as Active with its signer and block time", async function () {
    const { q, registrar, stranger } = await loadFixture(deploy);
    await expect(gas("register", q.connect(registrar).register(A, stranger.address)))
      .to.emit(q, "EnterpriseRegistered").withArgs(A, stranger.address);
    const e = await q.enterpriseOf(A);
    expect(e.status).to.equal(Status.Active);
    expect(e.codeSigner).to.equal(stranger.address);
    expect(e.registeredAt).to.be.greaterThan(0n);
    expect(await q.enterpriseCount()).to.equal(1n);
  });

  it("refuses every write to accounts without the registrar role", async function () {
    const { q, registrar, notary, stranger } = await loadFixture(deploy);
    const REG = await q.REGISTRAR_ROLE();
    await q.connect(registrar).register(A, ethers.ZeroAddress);
    for (const signer of [notary, stranger]) {
      await expect(q.connect(signer).register(B, ethers.ZeroAddress))
        .to.be.revertedWithCustomError(q, "AccessControlUnauthorizedAccount").withArgs(signer.address, REG);
      await expect(q.connect(signer).registerBatch([B]))
        .to.be.revertedWithCustomError(q, "AccessControlUnauthorizedAccount").withArgs(signer.address, REG);
      await expect(q.connect(signer).setStatus(A, Status.Abnormal, b32("x")))
        .to.be.revertedWithCustomError(q, "AccessControlUnauthorizedAccount").withArgs(signer.address, REG);
      await expect(q.connect(signer).rotateCodeSigner(A, signer.address))
        .to.be.revertedWithCustomError(q, "AccessControlUnauthorizedAccount").withArgs(signer.address, REG);
    }
  });

  it("refuses duplicates and the zero hash", async function () {
    const { q, registrar } = await loadFixture(deploy);
    await q.connect(registrar).register(A, ethers.ZeroAddress);
    await expect(q.connect(registrar).register(A, ethers.ZeroAddress))
      .to.be.revertedWithCustomError(q, "EnterpriseAlreadyRegistered").withArgs(A);
    await expect(q.connect(registrar).register(ethers.ZeroHash, ethers.ZeroAddress))
      .to.be.revertedWithCustomError(q, "InvalidUsccHash");
  });

  it("registers a batch in one transaction, all or nothing", async function () {
    const { q, registrar } = await loadFixture(deploy);
    const hashes = Array.from({ length: 100 }, (_, i) => usccHash(`batch-${i}`));
    await expect(gas("registerBatch(100)", q.connect(registrar).registerBatch(hashes)))
      .to.emit(q, "EnterpriseRegistered").withArgs(hashes[99], ethers.ZeroAddress);
    expect(await q.enterpriseCount()).to.equal(100n);
    const statuses = await q.statusesOf([hashes[0], hashes[99], A]);
    expect(statuses.map(Number)).to.deep.equal([Status.Active, Status.Active, Status.None]);
    await expect(q.connect(registrar).registerBatch([A, hashes[5]]))
      .to.be.revertedWithCustomError(q, "EnterpriseAlreadyRegistered").withArgs(hashes[5]);
    expect((await q.enterpriseOf(A)).status).to.equal(Status.None); // the whole batch rolled back
    await expect(q.connect(registrar).registerBatch([])).to.be.revertedWithCustomError(q, "EmptyBatch");
  });

  it("changes status with an event and enforces the lifecycle", async function () {
    const { q, registrar } = await loadFixture(deploy);
    await expect(q.connect(registrar).setStatus(A, Status.Abnormal, b32("x")))
      .to.be.revertedWithCustomError(q, "EnterpriseNotRegistered").withArgs(A);
    await q.connect(registrar).register(A, ethers.ZeroAddress);
    await expect(gas("setStatus", q.connect(registrar).setStatus(A, Status.Abnormal, b32("annual-report"))))
      .to.emit(q, "EnterpriseStatusChanged").withArgs(A, Status.Active, Status.Abnormal, b32("annual-report"));
    await expect(q.connect(registrar).setStatus(A, Status.Abnormal, b32("again")))
      .to.be.revertedWithCustomError(q, "InvalidStatusChange").withArgs(A, Status.Abnormal, Status.Abnormal);
    await expect(q.connect(registrar).setStatus(A, Status.None, b32("x")))
      .to.be.revertedWithCustomError(q, "InvalidStatusChange").withArgs(A, Status.Abnormal, Status.None);
    await q.connect(registrar).setStatus(A, Status.Deregistered, b32("closed"));
    expect((await q.enterpriseOf(A)).status).to.equal(Status.Deregistered);
    await expect(q.connect(registrar).setStatus(A, Status.Active, b32("x")))
      .to.be.revertedWithCustomError(q, "EnterpriseIsDeregistered").withArgs(A);
    await expect(q.connect(registrar).rotateCodeSigner(A, registrar.address))
      .to.be.revertedWithCustomError(q, "EnterpriseIsDeregistered").withArgs(A);
  });

  it("rotates the code-signing key with an event", async function () {
    const { q, registrar, stranger, bank } = await loadFixture(deploy);
    await expect(q.connect(registrar).rotateCodeSigner(A, bank.address))
      .to.be.revertedWithCustomError(q, "EnterpriseNotRegistered").withArgs(A);
    await q.connect(registrar).register(A, stranger.address);
    await expect(gas("rotateCodeSigner", q.connect(registrar).rotateCodeSigner(A, bank.address)))
      .to.emit(q, "CodeSignerRotated").withArgs(A, stranger.address, bank.address);
    expect((await q.enterpriseOf(A)).codeSigner).to.equal(bank.address);
  });
});

describe("AnchorLedger", function () {
  const leaves = Array.from({ length: 5 }, (_, i) => ethers.keccak256(ethers.toUtf8Bytes(`leaf-${i}`)));

  it("anchors a root with anchorer, count and time readable", async function () {
    const { q, notary } = await loadFixture(deploy);
    const { root } = merkle(leaves);
    expect(await q.isAnchored(root)).to.equal(false);
    await expect(gas("anchor", q.connect(notary).anchor(root, leaves.length)))
      .to.emit(q, "BatchAnchored").withArgs(root, notary.address, leaves.length);
    expect(await q.isAnchored(root)).to.equal(true);
    const a = await q.anchorOf(root);
    expect(a.anchorer).to.equal(notary.address);
    expect(a.leafCount).to.equal(5n);
    const block = await ethers.provider.getBlock("latest");
    expect(a.anchoredAt).to.equal(BigInt(block.timestamp));
  });

  it("computes leaves exactly as the Python proof format v1 does (test vector)", async function () {
    const coder = ethers.AbiCoder.defaultAbiCoder();
    const inner = ethers.keccak256(coder.encode(
      ["bytes32", "bytes32", "bytes32", "bytes32", "uint32", "uint64", "uint32", "bytes32"],
      [b32("qiyema.leaf.v1"), "0xe3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
       ethers.hexlify(Uint8Array.from({ length: 32 }, (_, i) => i)), b32("lease_contract"), 1, 1893456000, 0,
       "0x" + "ab".repeat(32)]));
    expect(ethers.keccak256(inner)).to.equal("0x04ed9115ab81289acf14ec68944647fb36332e606874eb4b2489f0bfab1e6231");
  });

  it("keeps one batch transaction under 50,000 gas", async function () {
    const { q, notary } = await loadFixture(deploy);
    const receipt = await gas("anchor(4096 leaves)", q.connect(notary).anchor(ethers.id("big"), 4096));
    expect(receipt.gasUsed).to.be.lessThanOrEqual(50000n);
  });

  it("refuses writes without the notary role", async function () {
    const { q, registrar, stranger, notary } = await loadFixture(deploy);
    const NOTARY = await q.NOTARY_ROLE();
    const { root, proof } = merkle(leaves);
    for (const signer of [registrar, stranger]) {
      await expect(q.connect(signer).anchor(root, 5))
        .to.be.revertedWithCustomError(q, "AccessControlUnauthorizedAccount").withArgs(signer.address, NOTARY);
    }
    await q.connect(notary).anchor(root, 5);
    await expect(q.connect(stranger).revokeLeaf(root, leaves[0], proof(0), b32("x")))
      .to.be.revertedWithCustomError(q, "AccessControlUnauthorizedAccount").withArgs(stranger.address, NOTARY);
    await expect(q.connect(stranger).revokeLeaves(root, [0], b32("x")))
      .to.be.revertedWithCustomError(q, "AccessControlUnauthorizedAccount").withArgs(stranger.address, NOTARY);
  });

  it("refuses a duplicate root and an empty batch", async function () {
    const { q, notary } = await loadFixture(deploy);
    const { root } = merkle(leaves);
    await q.connect(notary).anchor(root, 5);
    await expect(q.connect(notary).anchor(root, 5)).to.be.revertedWithCustomError(q, "RootAlreadyAnchored").withArgs(root);
    await expect(q.connect(notary).anchor(ethers.id("x"), 0)).to.be.revertedWithCustomError(q, "InvalidBatch").withArgs(ethers.id("x"), 0);
    await expect(q.connect(notary).anchor(ethers.ZeroHash, 3)).to.be.revertedWithCustomError(q, "InvalidBatch").withArgs(ethers.ZeroHash, 3);
  });

  it("revokes exactly the leaf its Merkle proof proves, kept by leaf, with an event", async function () {
    const { q, notary } = await loadFixture(deploy);
    const { root, proof } = merkle(leaves);
    const NOTARY = await q.NOTARY_ROLE();
    await expect(q.connect(notary).revokeLeaf(root, leaves[2], proof(2), b32("withdrawn")))
      .to.be.revertedWithCustomError(q, "RootNotAnchored").withArgs(root);
    await q.connect(notary).anchor(root, 5);
    await expect(gas("revokeLeaf", q.connect(notary).revokeLeaf(root, leaves[2], proof(2), b32("withdrawn"))))
      .to.emit(q, "LeafRevoked").withArgs(root, leaves[2], b32("withdrawn"));
    expect(await q.isLeafRevoked(root, leaves[2])).to.equal(true);
    expect(await q.isLeafRevoked(root, leaves[3])).to.equal(false);
    expect((await q.leafStatus(root, 2, leaves[2], NOTARY)).revoked).to.equal(true);
    await expect(q.connect(notary).revokeLeaf(root, leaves[2], proof(2), b32("again")))
      .to.be.revertedWithCustomError(q, "LeafAlreadyRevokedByProof").withArgs(root, leaves[2]);
    // the last, odd leaf is promoted unhashed and still provable
    await gas("revokeLeaf (another leaf)", q.connect(notary).revokeLeaf(root, leaves[4], proof(4), b32("expired")));
    expect((await q.leafStatus(root, 4, leaves[4], NOTARY)).revoked).to.equal(true);
  });

  it("never revokes another leaf than the one proven, whatever index a verifier asks with", async function () {
    // The attack on 1.5.0: revokeLeaf(root, 3, leaf0, proof0) passed the proof of leaf 0 and set
    // the bit of index 3, so a genuine, never-withdrawn leaf 3 verified INVALID `revoked`.
    const { q, notary } = await loadFixture(deploy);
    const { root, proof } = merkle(leaves);
    const NOTARY = await q.NOTARY_ROLE();
    await q.connect(notary).anchor(root, 5);
    await q.connect(notary).revokeLeaf(root, leaves[0], proof(0), b32("x"));
    for (const i of [1, 2, 3, 4]) {
      expect((await q.leafStatus(root, i, leaves[i], NOTARY)).revoked).to.equal(false);
      expect(await q.isRevoked(root, i)).to.equal(false);
    }
    // Leaf 0 asked with a mismatched index still reads revoked: the revocation follows the leaf.
    expect((await q.leafStatus(root, 3, leaves[0], NOTARY)).revoked).to.equal(true);
    const many = await q.leafStatuses([root, root], [0, 3], [leaves[0], leaves[3]], NOTARY);
    expect(many.map((x) => x.revoked)).to.deep.equal([true, false]);
    await expect(q.leafStatuses([root, root], [0, 3], [leaves[0]], NOTARY))
      .to.be.revertedWithCustomError(q, "LengthMismatch").withArgs(2, 1);
  });

  it("refuses a revocation whose proof does not lead to the root", async function () {
    const { q, notary } = await loadFixture(deploy);
    const { root, proof } = merkle(leaves);
    await q.connect(notary).anchor(root, 5);
    const outsider = ethers.id("not in the batch");
    await expect(q.connect(notary).revokeLeaf(root, outsider, proof(0), b32("x")))
      .to.be.revertedWithCustomError(q, "InvalidProof").withArgs(root, outsider);
    await expect(q.connect(notary).revokeLeaf(root, leaves[0], proof(1), b32("x")))
      .to.be.revertedWithCustomError(q, "InvalidProof").withArgs(root, leaves[0]);
    expect(await q.isLeafRevoked(root, leaves[0])).to.equal(false);
  });

  it("revokes many leaves in one call, all or nothing", async function () {
    const { q, notary } = await loadFixture(deploy);
    const root = ethers.id("batch of 1024");
    await q.connect(notary).anchor(root, 1024);
    const indexes = Array.from({ length: 100 }, (_, i) => i * 10);
    await expect(gas("revokeLeaves(100)", q.connect(notary).revokeLeaves(root, indexes, b32("court-order"))))
      .to.emit(q, "LeavesRevoked").withArgs(root, indexes, b32("court-order"));
    for (const i of [0, 10, 990]) expect(await q.isRevoked(root, i)).to.equal(true);
    expect(await q.isRevoked(root, 11)).to.equal(false);
    await expect(q.connect(notary).revokeLeaves(root, [11, 20], b32("x")))
      .to.be.revertedWithCustomError(q, "LeafAlreadyRevoked").withArgs(root, 20);
    expect(await q.isRevoked(root, 11)).to.equal(false); // rolled back
    await expect(q.connect(notary).revokeLeaves(root, [1024], b32("x")))
      .to.be.revertedWithCustomError(q, "LeafIndexOutOfRange").withArgs(root, 1024, 1024);
    await expect(q.connect(notary).revokeLeaves(ethers.id("nope"), [1], b32("x")))
      .to.be.revertedWithCustomError(q, "RootNotAnchored");
  });

  it("answers a leaf's whole status in one call, at the block it was read", async function () {
    const { q, notary, governor } = await loadFixture(deploy);
    const root = ethers.id("batch of 8");
    await q.connect(notary).anchor(root, 8);
    const anchoredIn = (await ethers.provider.getBlock("latest")).number;
    await q.connect(notary).revokeLeaves(root, [3], b32("withdrawn"));
    const NOTARY = await q.NOTARY_ROLE();
    const s = await q.leafStatus(root, 3, ethers.ZeroHash, NOTARY);
    const block = await ethers.provider.getBlock("latest");
    expect(s.anchorer).to.equal(notary.address);
    expect(s.leafCount).to.equal(8n);
    expect(s.anchoredBlock).to.equal(BigInt(anchoredIn));
    expect(s.revoked).to.equal(true);
    expect(s.anchorerHeldRole).to.equal(true);
    expect(s.anchorerRetired).to.equal(false);
    expect(s.anchorerCompromised).to.equal(false);
    expect(s.recordStatus).to.equal(0n); // a material's batch: no record status
    expect(s.blockNumber).to.equal(BigInt(block.number));
    expect(s.blockTimestamp).to.equal(BigInt(block.timestamp));
    expect((await q.leafStatus(root, 4, ethers.ZeroHash, NOTARY)).revoked).to.equal(false);
    // Another role, a root never anchored: nothing held, nothing anchored.
    expect((await q.leafStatus(root, 4, ethers.ZeroHash, await q.REGISTRAR_ROLE())).anchorerHeldRole).to.equal(false);
    const none = await q.leafStatus(ethers.id("nope"), 0, ethers.ZeroHash, NOTARY);
    expect(none.anchoredAt).to.equal(0n);
    expect(none.anchorerHeldRole).to.equal(false);
    // The notary retired: what it anchored before still counts, and the view says it retired.
    await q.connect(governor).revokeRole(NOTARY, notary.address);
    const many = await q.leafStatuses([root, root, ethers.id("nope")], [3, 4, 0], [ethers.ZeroHash, ethers.ZeroHash, ethers.ZeroHash], NOTARY);
    expect(many.map((x) => x.revoked)).to.deep.equal([true, false, false]);
    expect(many.map((x) => x.anchorerHeldRole)).to.deep.equal([true, true, false]);
    expect(many.map((x) => x.anchorerRetired)).to.deep.equal([true, true, false]);
    await expect(q.leafStatuses([root], [1, 2], [ethers.ZeroHash], NOTARY))
      .to.be.revertedWithCustomError(q, "LengthMismatch").withArgs(1, 2);
  });
});

describe("Role history", function () {
  it("keeps each account's term: granted, retired, and judged at the block it wrote", async function () {
    const { q, governor, notary, stranger } = await loadFixture(deploy);
    const NOTARY = await q.NOTARY_ROLE();
    const granted = (await q.roleTerm(NOTARY, notary.address)).grantedBlock;
    expect(granted).to.be.greaterThan(0n);
    expect(await q.heldRoleAt(NOTARY, notary.address, granted - 1n)).to.equal(false);
    expect(await q.heldRoleAt(NOTARY, notary.address, granted)).to.equal(true);
    await q.connect(notary).anchor(ethers.id("before"), 1);
    await expect(q.connect(governor).revokeRole(NOTARY, notary.address)).to.emit(q, "RoleRevoked");
    const term = await q.roleTerm(NOTARY, notary.address);
    const retired = BigInt((await ethers.provider.getBlock("latest")).number);
    expect(term.retiredBlock).to.equal(retired);
    expect(await q.heldRoleAt(NOTARY, notary.address, retired)).to.equal(true); // writes before the revocation in it
    expect(await q.heldRoleAt(NOTARY, notary.address, retired + 1n)).to.equal(false);
    expect((await q.leafStatus(ethers.id("before"), 0, ethers.ZeroHash, NOTARY)).anchorerHeldRole).to.equal(true);
    // A retired key writes nothing more, and its term is not reopened.
    await expect(q.connect(notary).anchor(ethers.id("after"), 1))
      .to.be.revertedWithCustomError(q, "AccessControlUnauthorizedAccount");
    await expect(q.connect(governor).grantRole(NOTARY, notary.address))
      .to.be.revertedWithCustomError(q, "RoleTermEnded").withArgs(NOTARY, notary.address);
    expect((await q.roleTerm(NOTARY, stranger.address)).grantedBlock).to.equal(0n);
  });

  it("declares a key compromised from a block: the view says so for what it anchored", async function () {
    const { q, governor, notary, stranger } = await loadFixture(deploy);
    const NOTARY = await q.NOTARY_ROLE();
    await q.connect(notary).anchor(ethers.id("early"), 1);
    const early = BigInt((await ethers.provider.getBlock("latest")).number);
    await q.connect(notary).anchor(ethers.id("late"), 1);
    const late = BigInt((await ethers.provider.getBlock("latest")).number);
    await expect(q.connect(stranger).declareCompromised(NOTARY, notary.address, late, b32("leak")))
      .to.be.revertedWithCustomError(q, "AccessControlUnauthorizedAccount");
    await expect(q.connect(governor).declareCompromised(NOTARY, stranger.address, 0, b32("leak")))
      .to.be.revertedWithCustomError(q, "RoleNeverHeld").withArgs(NOTARY, stranger.address);
    await expect(q.connect(governor).declareCompromised(NOTARY, notary.address, late + 100n, b32("leak")))
      .to.be.revertedWithCustomError(q, "InvalidCompromiseBlock");
    await expect(gas("declareCompromised", q.connect(governor).declareCompromised(NOTARY, notary.address, late, b32("leak"))))
      .to.emit(q, "RoleCompromised").withArgs(NOTARY, notary.address, late, b32("leak"))
      .and.to.emit(q, "RoleRevoked");
    expect(await q.hasRole(NOTARY, notary.address)).to.equal(false);
    const [a, b] = await q.leafStatuses([ethers.id("early"), ethers.id("late")], [0, 0], [ethers.ZeroHash, ethers.ZeroHash], NOTARY);
    expect([a.anchoredBlock, b.anchoredBlock]).to.deep.equal([early, late]);
    expect([a.anchorerCompromised, b.anchorerCompromised]).to.deep.equal([true, true]);
    expect(a.compromisedFromBlock).to.equal(late);
    // Only ever earlier: a later or equal start is refused; "all" (0) is accepted.
    await expect(q.connect(governor).declareCompromised(NOTARY, notary.address, late, b32("x")))
      .to.be.revertedWithCustomError(q, "InvalidCompromiseBlock");
    await q.connect(governor).declareCompromised(NOTARY, notary.address, 0, b32("all"));
    expect((await q.roleTerm(NOTARY, notary.address)).compromisedFromBlock).to.equal(0n);
    await expect(q.connect(governor).grantRole(NOTARY, notary.address))
      .to.be.revertedWithCustomError(q, "RoleTermEnded");
  });
});

describe("RecordRegistry", function () {
  const RS = { None: 0, Valid: 1, Suspended: 2, Revoked: 3 };
  const ids = Array.from({ length: 3 }, (_, i) => ethers.keccak256(ethers.toUtf8Bytes(`record-${i}`)));

  async function withIssuers() {
    const f = await deploy();
    const FOOD = b32("permit.food"), METRO = b32("permit.metrology");
    await f.q.grantRole(await f.q.issuerRole(FOOD), f.issuerFood.address);
    await f.q.grantRole(await f.q.issuerRole(METRO), f.inspector.address); // the metrology authority here
    return { ...f, FOOD, METRO };
  }

  it("lets only the batch's own issuer (or its designated successor) change its records", async function () {
    // The attack on 1.5.0: another district's food authority holds the same category role and
    // revoked this district's permit; setRecordStatus checked the category only.
    const { q, governor, issuerFood, stranger, bank, FOOD } = await loadFixture(withIssuers);
    const otherDistrict = stranger;
    await q.grantRole(await q.issuerRole(FOOD), otherDistrict.address);
    const { root } = merkle(ids);
    await q.connect(issuerFood).issueRecords(FOOD, root, 3);
    await expect(q.connect(otherDistrict).setRecordStatus(root, 0, RS.Revoked, b32("hostile")))
      .to.be.revertedWithCustomError(q, "NotBatchIssuer").withArgs(root, issuerFood.address, otherDistrict.address);
    expect((await q.recordStatus(root, 0)).status).to.equal(RS.Valid);
    // A key rotation: the governor names the organisation's next key, which then holds the role.
    const next = bank;
    await expect(q.connect(issuerFood).designateSuccessor(issuerFood.address, next.address))
      .to.be.revertedWithCustomError(q, "AccessControlUnauthorizedAccount");
    await expect(gas("designateSuccessor", q.connect(governor).designateSuccessor(issuerFood.address, next.address)))
      .to.emit(q, "SuccessorDesignated").withArgs(issuerFood.address, next.address);
    await expect(q.connect(governor).designateSuccessor(issuerFood.address, otherDistrict.address))
      .to.be.revertedWithCustomError(q, "InvalidSuccessor").withArgs(issuerFood.address, otherDistrict.address);
    expect(await q.isSameWriter(issuerFood.address, next.address)).to.equal(true);
    expect(await q.isSameWriter(next.address, issuerFood.address)).to.equal(false); // one way only
    await expect(q.connect(next).setRecordStatus(root, 1, RS.Suspended, b32("x")))
      .to.be.revertedWithCustomError(q, "AccessControlUnauthorizedAccount"); // the role is still needed
    await q.grantRole(await q.issuerRole(FOOD), next.address);
    await expect(q.connect(next).setRecordStatus(root, 1, RS.Suspended, b32("rectify")))
      .to.emit(q, "RecordStatusChanged");
    await expect(q.connect(otherDistrict).setRecordStatus(root, 1, RS.Valid, b32("x")))
      .to.be.revertedWithCustomError(q, "NotBatchIssuer");
  });

  it("issues a batch of records of one category, anchored with the issuer as anchorer", async function () {
    const { q, issuerFood, FOOD } = await loadFixture(withIssuers);
    const { root } = merkle(ids);
    await expect(gas("issueRecords(3)", q.connect(issuerFood).issueRecords(FOOD, root, 3)))
      .to.emit(q, "RecordsIssued").withArgs(FOOD, root, issuerFood.address, 3)
      .and.to.emit(q, "BatchAnchored").withArgs(root, issuerFood.address, 3);
    const r = await q.recordStatus(root, 1);
    expect(r.category).to.equal(FOOD);
    expect(r.status).to.equal(RS.Valid);
    expect((await q.recordStatus(root, 3)).status).to.equal(RS.None); // beyond the batch
    expect((await q.recordStatus(ethers.id("other root"), 0)).status).to.equal(RS.None);
    expect((await q.anchorOf(root)).anchorer).to.equal(issuerFood.address);
    await expect(q.connect(issuerFood).issueRecords(FOOD, root, 3))
      .to.be.revertedWithCustomError(q, "RootAlreadyAnchored").withArgs(root);
  });

  it("costs one batch, not one slot a record: 1,024 records in one transaction", async function () {
    const { q, issuerFood, FOOD } = await loadFixture(withIssuers);
    const tx = await q.connect(issuerFood).issueRecords(FOOD, ethers.id("a batch of 1024"), 1024);
    const used = (await tx.wait()).gasUsed;
    gasTable.push(["issueRecords(1024)", Number(used)]);
    gasTable.push(["  … per record", Number(used / 1024n)]);
    expect(used / 1024n).to.be.at.most(100n);
  });

  it("issues several batches in one transaction, each anchored and announced, all or none", async function () {
    const { q, issuerFood, stranger, FOOD } = await loadFixture(withIssuers);
    const roots = [0, 1, 2, 3, 4, 5, 6, 7].map((i) => ethers.id(`multi ${i}`));
    const counts = roots.map(() => 1024);
    await expect(q.connect(stranger).issueRecordBatches(FOOD, roots, counts))
      .to.be.revertedWithCustomError(q, "AccessControlUnauthorizedAccount");
    await expect(q.connect(issuerFood).issueRecordBatches(FOOD, roots, counts.slice(1)))
      .to.be.revertedWithCustomError(q, "BatchListMismatch").withArgs(8, 7);
    await expect(q.connect(issuerFood).issueRecordBatches(FOOD, [], []))
      .to.be.revertedWithCustomError(q, "BatchListMismatch").withArgs(0, 0);
    const tx = await q.connect(issuerFood).issueRecordBatches(FOOD, roots, counts);
    const used = (await tx.wait()).gasUsed;
    gasTable.push(["issueRecordBatches(8 × 1024)", Number(used)]);
    gasTable.push(["  … per record", Number(used / 8192n)]);
    expect(used / 8192n).to.be.at.most(100n);
    for (const root of roots) {
      await expect(tx).to.emit(q, "RecordsIssued").withArgs(FOOD, root, issuerFood.address, 1024);
      expect((await q.recordStatus(root, 1023)).status).to.equal(RS.Valid);
      expect((await q.anchorOf(root)).anchorer).to.equal(issuerFood.address);
    }
    // One root already anchored: nothing of the call is issued.
    const fresh = ethers.id("multi fresh");
    await expect(q.connect(issuerFood).issueRecordBatches(FOOD, [fresh, roots[3]], [5, 5]))
      .to.be.revertedWithCustomError(q, "RootAlreadyAnchored").withArgs(roots[3]);
    expect((await q.recordStatus(fresh, 0)).status).to.equal(RS.None);
  });

  it("refuses an issuer of another category, the notary and strangers", async function () {
    const { q, issuerFood, inspector, notary, stranger, FOOD, METRO } = await loadFixture(withIssuers);
    const { root } = merkle(ids);
    for (const signer of [inspector, notary, stranger]) {
      await expect(q.connect(signer).issueRecords(FOOD, root, 3))
        .to.be.revertedWithCustomError(q, "AccessControlUnauthorizedAccount")
        .withArgs(signer.address, await q.issuerRole(FOOD));
    }
    await q.connect(issuerFood).issueRecords(FOOD, root, 3);
    // The metrology issuer cannot touch a food record: the batch's own category decides.
    await expect(q.connect(inspector).setRecordStatus(root, 0, RS.Revoked, b32("x")))
      .to.be.revertedWithCustomError(q, "AccessControlUnauthorizedAccount")
      .withArgs(inspector.address, await q.issuerRole(FOOD));
    expect(METRO).to.not.equal(FOOD);
  });

  it("suspends, revokes and restores with events, and refuses no-op changes and unknown records", async function () {
    const { q, issuerFood, FOOD } = await loadFixture(withIssuers);
    const { root } = merkle(ids);
    await expect(q.connect(issuerFood).setRecordStatus(root, 0, RS.Suspended, b32("x")))
      .to.be.revertedWithCustomError(q, "RecordNotIssued").withArgs(root, 0);
    await q.connect(issuerFood).issueRecords(FOOD, root, 3);
    await expect(q.connect(issuerFood).setRecordStatus(root, 3, RS.Suspended, b32("x")))
      .to.be.revertedWithCustomError(q, "RecordNotIssued").withArgs(root, 3);
    await expect(gas("setRecordStatus (first in its word)",
      q.connect(issuerFood).setRecordStatus(root, 0, RS.Suspended, b32("inspection"))))
      .to.emit(q, "RecordStatusChanged").withArgs(root, 0, FOOD, RS.Valid, RS.Suspended, b32("inspection"));
    expect((await q.recordStatus(root, 0)).status).to.equal(RS.Suspended);
    expect((await q.recordStatus(root, 1)).status).to.equal(RS.Valid); // its neighbour in the word
    await gas("setRecordStatus (word already written)", q.connect(issuerFood).setRecordStatus(root, 2, RS.Revoked, b32("r")));
    await q.connect(issuerFood).setRecordStatus(root, 0, RS.Valid, b32("restored"));
    expect((await q.recordStatus(root, 0)).status).to.equal(RS.Valid);
    expect((await q.recordStatus(root, 2)).status).to.equal(RS.Revoked);
    // The one-call view answers a record's status too, with its category's issuer role.
    const views = await q.leafStatuses([root, root, root], [0, 2, 3], [ethers.ZeroHash, ethers.ZeroHash, ethers.ZeroHash], await q.issuerRole(FOOD));
    expect(views.map((v) => v.recordStatus)).to.deep.equal([BigInt(RS.Valid), BigInt(RS.Revoked), 0n]);
    expect(views[0].anchorerHeldRole).to.equal(true);
    await expect(q.connect(issuerFood).setRecordStatus(root, 2, RS.Revoked, b32("again")))
      .to.be.revertedWithCustomError(q, "InvalidRecordStatus").withArgs(root, 2, RS.Revoked, RS.Revoked);
    await expect(q.connect(issuerFood).setRecordStatus(root, 1, RS.None, b32("x")))
      .to.be.revertedWithCustomError(q, "InvalidRecordStatus").withArgs(root, 1, RS.Valid, RS.None);
  });
});

after(function () {
  const width = Math.max(...gasTable.map(([l]) => l.length));
  console.log("\n  Gas per write");
  const seen = new Set();
  for (const [label, used] of gasTable) {
    if (seen.has(label)) continue;
    seen.add(label);
    console.log(`    ${label.padEnd(width)}  ${String(used).padStart(9)}`);
  }
});
