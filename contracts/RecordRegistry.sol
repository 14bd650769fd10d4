// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {AnchorLedger} from "./AnchorLedger.sol";
import {IRecordRegistry} from "./interfaces/IRecordRegistry.sol";

abstract contract RecordRegistry is AnchorLedger, IRecordRegistry {
    mapping(bytes32 root => bytes32 category) private _categories;
    /// @dev Two bits a record, 128 records a word: 0 as issued (Valid), 1 Suspended, 2 Revoked.
    mapping(bytes32 root => mapping(uint256 word => uint256 bits)) private _statuses;

    /// @inheritdoc IRecordRegistry
    function issueRecords(bytes32 category, bytes32 root, uint32 count) external {
        _checkRole(issuerRole(category));
        _issue(category, root, count);
    }

    /// @inheritdoc IRecordRegistry
    function issueRecordBatches(bytes32 category, bytes32[] calldata roots, uint32[] calldata counts) external {
        if (roots.length == 0 || roots.length != counts.length) revert BatchListMismatch(roots.length, counts.length);
        _checkRole(issuerRole(category));
        for (uint256 i = 0; i < roots.length; ++i) {
            _issue(category, roots[i], counts[i]);
        }
    }

    function _issue(bytes32 category, bytes32 root, uint32 count) private {
        _anchor(root, count);
        _categories[root] = category;
        emit RecordsIssued(category, root, msg.sender, count);
    }

    /// @inheritdoc IRecordRegistry
    function setRecordStatus(bytes32 root, uint256 index, RecordStatus status, bytes32 reasonCode) external {
        bytes32 category = _categories[root];
        if (category == bytes32(0)) revert RecordNotIssued(root, index);
        _checkRole(issuerRole(category));
        Anchor memory a = anchorOf(root);
        if (index >= a.leafCount) revert RecordNotIssued(root, index);
        if (!isSameWriter(a.anchorer, msg.sender)) revert NotBatchIssuer(root, a.anchorer, msg.sender);
        uint256 word = _statuses[root][index >> 7];
        uint256 shift = (index & 0x7f) << 1;
        RecordStatus previous = RecordStatus(((word >> shift) & 3) + 1);
        if (status == RecordStatus.None || status == previous) {
            revert InvalidRecordStatus(root, index, previous, status);
        }
        _statuses[root][index >> 7] = (word & ~(uint256(3) << shift)) | (uint256(uint8(status) - 1) << shift);
        emit RecordStatusChanged(root, index, category, previous, status, reasonCode);
    }

    function _recordStatusOf(bytes32 root, uint256 index, uint32 leafCount) internal view virtual override returns (uint8) {
        if (_categories[root] == bytes32(0) || index >= leafCount) return 0;
        return uint8(((_statuses[root][index >> 7] >> ((index & 0x7f) << 1)) & 3) + 1);
    }

    /// @inheritdoc IRecordRegistry
    function recordStatus(bytes32 root, uint256 index)
        external
        view
        returns (bytes32 category, RecordStatus status, uint64 issuedAt)
    {
        category = _categories[root];
        Anchor memory a = anchorOf(root);
        if (category == bytes32(0) || index >= a.leafCount) return (category, RecordStatus.None, 0);
        status = RecordStatus(((_statuses[root][index >> 7] >> ((index & 0x7f) << 1)) & 3) + 1);
        issuedAt = a.anchoredAt;
    }
}
