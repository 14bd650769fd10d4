// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title Qiyema record registry
/// @notice Licences, e-permits, regulatory and credit records, inspections and bank receipts.
/// Each record is a salted leaf (its id); a batch of one category is issued in one transaction
/// by an account holding that category's issuer role, and its root is anchored in the anchor
/// ledger with the issuer as anchorer. Every record stays bound to its category, so the issuer
/// of one category can never change a record of another.
interface IRecordRegistry {
    enum RecordStatus {
        None,
        Valid,
        Suspended,
        Revoked
    }

    struct Record {
        bytes32 category;
        RecordStatus status;
        uint64 issuedAt;
    }

    /// @notice `recordId` was issued before.
    error RecordAlreadyIssued(bytes32 recordId);
    /// @notice `recordId` was never issued.
    error RecordNotIssued(bytes32 recordId);
    /// @notice `recordId` belongs to `expected`, not to `category`.
    error RecordCategoryMismatch(bytes32 recordId, bytes32 category, bytes32 expected);
    /// @notice The status cannot go from `current` to `requested`.
    error InvalidRecordStatus(bytes32 recordId, RecordStatus current, RecordStatus requested);

    /// @notice A batch of records of one category was issued; its root is anchored.
    event RecordsIssued(bytes32 indexed category, bytes32 indexed root, address indexed issuer, uint32 count);
    /// @notice A record's status changed (suspended, revoked, restored).
    event RecordStatusChanged(
        bytes32 indexed recordId,
        bytes32 indexed category,
        RecordStatus previous,
        RecordStatus current,
        bytes32 reasonCode
    );

    /// @notice Issue records of `category` whose leaves form the tree of `root`. Issuer of
    /// `category` only. `recordIds` are the leaves themselves (salted, they reveal nothing).
    function issueRecords(bytes32 category, bytes32 root, bytes32[] calldata recordIds) external;

    /// @notice Suspend, revoke or restore (Valid) a record. Issuer of its category only.
    function setRecordStatus(bytes32 category, bytes32 recordId, RecordStatus status, bytes32 reasonCode) external;

    /// @notice The record (status `None` if never issued).
    function recordOf(bytes32 recordId) external view returns (Record memory);
}
