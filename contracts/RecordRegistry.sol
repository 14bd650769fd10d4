// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AnchorLedger} from "./AnchorLedger.sol";
import {IRecordRegistry} from "./interfaces/IRecordRegistry.sol";

abstract contract RecordRegistry is AnchorLedger, IRecordRegistry {
    mapping(bytes32 recordId => Record) private _records;

    modifier onlyIssuerOf(bytes32 category) {
        _checkRole(issuerRole(category));
        _;
    }

    /// @inheritdoc IRecordRegistry
    function issueRecords(bytes32 category, bytes32 root, bytes32[] calldata recordIds)
        external
        onlyIssuerOf(category)
    {
        uint256 n = recordIds.length;
        _anchor(root, uint32(n));
        for (uint256 i = 0; i < n; ) {
            Record storage r = _records[recordIds[i]];
            if (r.status != RecordStatus.None) revert RecordAlreadyIssued(recordIds[i]);
            r.category = category;
            r.status = RecordStatus.Valid;
            r.issuedAt = uint64(block.timestamp);
            unchecked {
                ++i;
            }
        }
        emit RecordsIssued(category, root, msg.sender, uint32(n));
    }

    /// @inheritdoc IRecordRegistry
    function setRecordStatus(bytes32 category, bytes32 recordId, RecordStatus status, bytes32 reasonCode)
        external
        onlyIssuerOf(category)
    {
        Record storage r = _records[recordId];
        if (r.status == RecordStatus.None) revert RecordNotIssued(recordId);
        if (r.category != category) revert RecordCategoryMismatch(recordId, category, r.category);
        RecordStatus previous = r.status;
        if (status == RecordStatus.None || status == previous) revert InvalidRecordStatus(recordId, previous, status);
        r.status = status;
        emit RecordStatusChanged(recordId, category, previous, status, reasonCode);
    }

    /// @inheritdoc IRecordRegistry
    function recordOf(bytes32 recordId) external view returns (Record memory) {
        return _records[recordId];
    }
}
