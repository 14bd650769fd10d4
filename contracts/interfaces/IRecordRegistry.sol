// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Qiyema record registry
/// @notice Licences, e-permits, regulatory and credit records, inspections and bank receipts.
/// Each record is a salted leaf of a Merkle batch of one category; the batch is issued in one
/// transaction by an account holding that category's issuer role, which anchors its root in the
/// anchor ledger with the issuer as anchorer. The chain keeps one slot per batch, not per record:
/// a record is named by its batch's root and its index there, and its status is two bits of a
/// word shared by 128 records (as issued, suspended or revoked). A batch stays bound to its
/// category, so the issuer of one category can never change a record of another.
interface IRecordRegistry {
    enum RecordStatus {
        None,
        Valid,
        Suspended,
        Revoked
    }

    /// @notice No batch of records was issued with `root`, or it has no record `index`.
    error RecordNotIssued(bytes32 root, uint256 index);
    /// @notice The status of record `index` of `root` cannot go from `current` to `requested`.
    error InvalidRecordStatus(bytes32 root, uint256 index, RecordStatus current, RecordStatus requested);
    /// @notice `issueRecordBatches` was given `roots` roots and `counts` counts (they must pair up, at least one).
    error BatchListMismatch(uint256 roots, uint256 counts);
    /// @notice Only the account that issued batch `root` (or its designated successor) changes its records.
    error NotBatchIssuer(bytes32 root, address issuer, address caller);

    /// @notice A batch of `count` records of one category was issued; its root is anchored.
    event RecordsIssued(bytes32 indexed category, bytes32 indexed root, address indexed issuer, uint32 count);
    /// @notice A record's status changed (suspended, revoked, restored).
    event RecordStatusChanged(
        bytes32 indexed root,
        uint256 indexed index,
        bytes32 indexed category,
        RecordStatus previous,
        RecordStatus current,
        bytes32 reasonCode
    );

    /// @notice Issue the `count` records of `category` whose leaves form the tree of `root`
    /// (they stay off chain: salted, the proof bundle carries them). Issuer of `category` only.
    function issueRecords(bytes32 category, bytes32 root, uint32 count) external;

    /// @notice Issue several batches of `category` in one transaction: batch `i` has root
    /// `roots[i]` and `counts[i]` records, each anchored and announced (`RecordsIssued`) as by
    /// `issueRecords`. All or none: a root already anchored reverts the whole call. An authority
    /// importing millions of records pays one transaction (and one block) per several batches.
    function issueRecordBatches(bytes32 category, bytes32[] calldata roots, uint32[] calldata counts) external;

    /// @notice Suspend, revoke or restore (Valid) record `index` of batch `root`. Only the
    /// account that issued the batch, or its designated successor (a rotated key of the same
    /// organisation), while it holds the batch's category's issuer role (since 1.6.0: before,
    /// any issuer of the category could, another district's authority included).
    function setRecordStatus(bytes32 root, uint256 index, RecordStatus status, bytes32 reasonCode) external;

    /// @notice Record `index` of batch `root`: its category, status (`None` if never issued) and
    /// the time its batch was issued.
    function recordStatus(bytes32 root, uint256 index)
        external
        view
        returns (bytes32 category, RecordStatus status, uint64 issuedAt);
}
