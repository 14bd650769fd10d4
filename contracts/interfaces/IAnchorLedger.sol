// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Qiyema anchor ledger
/// @notice Witnesses batches of salted leaves (fingerprints of materials and records) by their
/// Merkle root: one transaction per batch whatever its size. Pair hashing is OpenZeppelin
/// `MerkleProof`'s (commutative keccak256), so this contract can check a proof when a single
/// leaf is revoked. A notary revokes the leaves of a batch by index (`revokeLeaves`: a bitmap;
/// each leaf commits to its own index, docs/proof-format.md), or one leaf by its Merkle proof
/// (`revokeLeaf`), which is kept by the leaf itself: sorted-pair hashing carries no position, so
/// a proof can only ever bind the leaf it proves (since 1.6.0; before, a proof of one leaf could
/// set another index's bit). A verifier reads both in one call. Only notaries write.
interface IAnchorLedger {
    /// @notice The on-chain record of one batch, packed in a single storage slot.
    struct Anchor {
        address anchorer;
        uint32 leafCount;
        uint32 anchoredAt; // block time (seconds; uint32 lasts to 2106)
        uint32 anchoredBlock; // the block it was anchored in: roles are judged at this block
    }

    /// @notice Everything a verifier asks about one leaf, read in one call at one block.
    struct LeafStatus {
        address anchorer; // zero if the root was never anchored
        uint32 leafCount;
        uint64 anchoredAt;
        uint64 anchoredBlock;
        bool revoked;
        bool anchorerHeldRole; // the anchorer held the role asked about at the anchoring block
        bool anchorerRetired; // ... and no longer holds it (retired or compromised since)
        bool anchorerCompromised; // its key was declared compromised in that role ...
        uint64 compromisedFromBlock; // ... from this block on (0: everything it wrote)
        uint8 recordStatus; // a record batch's leaf: IRecordRegistry.RecordStatus (0 for a material's)
        uint64 blockNumber; // the block the answer was read at
        uint64 blockTimestamp;
    }

    /// @notice `root` was anchored before.
    error RootAlreadyAnchored(bytes32 root);
    /// @notice `root` was never anchored.
    error RootNotAnchored(bytes32 root);
    /// @notice A batch must hold at least one leaf and the root must not be zero.
    error InvalidBatch(bytes32 root, uint32 leafCount);
    /// @notice `proof` does not lead from `leaf` to `root`.
    error InvalidProof(bytes32 root, bytes32 leaf);
    /// @notice The leaf at `index` of `root` is already revoked.
    error LeafAlreadyRevoked(bytes32 root, uint256 index);
    /// @notice `index` is not below the batch's leaf count.
    error LeafIndexOutOfRange(bytes32 root, uint256 index, uint32 leafCount);
    /// @notice `leaf` of `root` is already revoked by its proof.
    error LeafAlreadyRevokedByProof(bytes32 root, bytes32 leaf);
    /// @notice A batch query needs as many indexes (and leaves) as roots.
    error LengthMismatch(uint256 roots, uint256 indexes);

    /// @notice A batch root was anchored.
    event BatchAnchored(bytes32 indexed root, address indexed anchorer, uint32 leafCount);
    /// @notice One leaf of an anchored batch was revoked, proven by its Merkle path (kept by leaf).
    event LeafRevoked(bytes32 indexed root, bytes32 indexed leaf, bytes32 reasonCode);
    /// @notice Several leaves of one batch were revoked in one call.
    event LeavesRevoked(bytes32 indexed root, uint256[] indexes, bytes32 reasonCode);

    /// @notice Anchor the Merkle root of a batch of `leafCount` leaves. Notary only.
    function anchor(bytes32 root, uint32 leafCount) external;

    /// @notice Revoke exactly `leaf` of an anchored batch, proven by its Merkle path. Notary only.
    function revokeLeaf(bytes32 root, bytes32 leaf, bytes32[] calldata proof, bytes32 reasonCode) external;

    /// @notice Revoke many leaves of one batch by index (the notary vouches for the indexes, as
    /// it vouched for the batch). Reverts as a whole if any is out of range or already revoked.
    function revokeLeaves(bytes32 root, uint256[] calldata indexes, bytes32 reasonCode) external;

    /// @notice The record of a batch (`anchoredAt == 0` if never anchored).
    function anchorOf(bytes32 root) external view returns (Anchor memory);

    /// @notice Whether `root` is anchored.
    function isAnchored(bytes32 root) external view returns (bool);

    /// @notice Whether the leaf at `index` of `root` was revoked by index.
    function isRevoked(bytes32 root, uint256 index) external view returns (bool);

    /// @notice Whether `leaf` of `root` was revoked by its proof.
    function isLeafRevoked(bytes32 root, bytes32 leaf) external view returns (bool);

    /// @notice A leaf's whole status in one call: its batch's anchor, whether it was revoked
    /// (by index, or `leaf` by its proof),
    /// whether the anchorer held `role` (the notary role for materials, the category's issuer
    /// role for records) at the block it anchored, whether that key was retired or declared
    /// compromised since, a record's status (for a batch of records), and the block it was read
    /// at, so a verdict rests on one block.
    function leafStatus(bytes32 root, uint256 index, bytes32 leaf, bytes32 role)
        external
        view
        returns (LeafStatus memory);

    /// @notice `leafStatus` for many leaves at once (batch verification), all at one block.
    function leafStatuses(bytes32[] calldata roots, uint256[] calldata indexes, bytes32[] calldata leaves,
        bytes32 role)
        external
        view
        returns (LeafStatus[] memory statuses);
}
